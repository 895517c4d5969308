"""Sign-in through the local gateway: the pipeline, enumeration resistance (S5), no
records for unknown names (S3), redirects (S17) and app launch (S3)."""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from idp_core import accounts, apps
from idp_core.config import Tables
from idp_core.models import AuditEvent, Session, User
from tests.helpers.sso import PASSWORD, Sso, csrf_token, event

FULLWIDTH_ALICE = "\uff21\uff4c\uff49\uff43\uff45"  # NFKC folds it to "Alice"


# The password step alone; second factors are tested in test_mfa_*.
pytestmark = pytest.mark.sso_setup("password_only")


@pytest.fixture
def alice(tables: Tables) -> User:
    return accounts.create_user(accounts.NewUser("Alice", password=PASSWORD))


def test_login_page_has_labelled_fields_and_sign_in_button(sso: Sso) -> None:
    page = sso.get(sso.browser(), "/login")
    assert page.status_code == 200
    assert '<label for="username">Username</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert '<button type="submit">Sign in</button>' in page.text
    assert 'id="username"' in page.text and 'id="password"' in page.text


def test_right_password_signs_in_and_lands_on_my_apps(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    response = sso.sign_in(browser, "alice")
    assert response.status_code == 303
    assert response.headers["Location"] == "/me"
    page = sso.get(browser, "/me")
    assert page.status_code == 200
    assert "Alice" in page.text and "Sign out" in page.text


def test_root_sends_signed_out_visitors_to_login(sso: Sso) -> None:
    response = sso.get(sso.browser(), "/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"


def test_unknown_user_and_wrong_password_get_the_same_status_and_body(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    token = sso.login_form_token(browser)
    wrong = sso.post(
        browser, "/login", {"csrf_token": token, "username": "alice", "password": "not it at all"}
    )
    unknown = sso.post(
        browser, "/login", {"csrf_token": token, "username": "alice", "password": "not it at all"}
    )
    nobody = sso.post(
        browser, "/login", {"csrf_token": token, "username": "bob", "password": "not it at all"}
    )
    assert wrong.status_code == unknown.status_code == nobody.status_code == 401
    assert "The username or password is incorrect." in wrong.text
    assert 'role="alert"' in wrong.text
    # Only the echoed username differs; with the same name typed, the bodies are identical.
    assert wrong.text == unknown.text
    assert nobody.text == wrong.text.replace('value="alice"', 'value="bob"')


def test_disabled_account_gets_the_same_answer_as_a_wrong_password(sso: Sso, alice: User) -> None:
    accounts.set_user_disabled("alice", True)
    browser = sso.browser()
    right = sso.sign_in(browser, "alice")
    wrong = sso.sign_in(browser, "alice", "not it at all")
    assert right.status_code == wrong.status_code == 401
    assert right.text == wrong.text
    assert list(Session.scan()) == []


def test_unknown_usernames_create_no_records(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    for name in ("bob", "BOB", "someone.else@example.com", "not a valid name!"):
        assert sso.sign_in(browser, name, "whatever password").status_code == 401
    assert [user.username for user in User.scan()] == ["alice"]
    assert list(Session.scan()) == []
    failures = [event for event in AuditEvent.scan() if event.type == "auth.failure"]
    assert len(failures) == 4
    assert all(event.subject is None for event in failures)


def test_username_variants_sign_in_to_the_same_account(sso: Sso, alice: User) -> None:
    for variant in ("ALICE", FULLWIDTH_ALICE, " alice "):
        response = sso.sign_in(sso.browser(), variant)
        assert response.status_code == 303, variant


def test_sign_in_continues_to_a_same_site_next_page(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    response = sso.get(browser, "/me")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert urlsplit(location).path == "/login"
    assert parse_qs(urlsplit(location).query) == {"next": ["/me"]}
    signed_in = sso.sign_in(browser, "alice", next="/me?tab=apps")
    assert signed_in.headers["Location"] == "/me?tab=apps"


OFF_SITE_TARGETS = (
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "/\r\nSet-Cookie:x=y",
    "evil.example",
)


def test_open_redirects_are_refused(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    for target in OFF_SITE_TARGETS:
        page = sso.get(browser, "/login", params={"next": target})
        assert page.status_code == 400, target
        assert "must be a page of this site" in page.text
        response = sso.sign_in(browser, "alice", next=target)
        assert response.status_code == 400, target
    assert list(Session.scan()) == []


# A page name outside Latin-1, one inside it, and escapes the user typed (kept as they are).
NON_ASCII_NEXT = "/me/\u65e5\u672c?tab=caf\u00e9&x=%41"
NON_ASCII_LOCATION = "/me/%E6%97%A5%E6%9C%AC?tab=caf%C3%A9&x=%41"


def test_attack_a_non_ascii_next_is_percent_encoded_over_http(sso: Sso, alice: User) -> None:
    """A Location header is ASCII: a raw one made the gateway drop the connection."""
    browser = sso.browser()

    signed_in = sso.sign_in(browser, "alice", next=NON_ASCII_NEXT)
    again = sso.get(browser, "/login", params={"next": NON_ASCII_NEXT})  # already signed in

    for response in (signed_in, again):
        assert response.status_code == 303
        assert response.raw.headers["Location"] == NON_ASCII_LOCATION


def test_attack_a_next_with_cr_lf_splits_no_header_over_http(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    for target in ("/me\r\nSet-Cookie: session=attacker", "/me\nLocation: https://evil.example/"):
        refused = sso.sign_in(browser, "alice", next=target)
        assert refused.status_code == 400 and "must be a page of this site" in refused.text
        assert "Location" not in refused.headers
        assert "attacker" not in refused.headers.get("Set-Cookie", "")
    # Escaped CR LF is text of the path, and stays escaped in the Location.
    escaped = sso.sign_in(browser, "alice", next="/me/%0D%0ASet-Cookie:%20session=attacker")
    assert escaped.status_code == 303
    assert escaped.raw.headers["Location"] == "/me/%0D%0ASet-Cookie:%20session=attacker"
    assert "attacker" not in escaped.headers["Set-Cookie"]


def _sign_in_event(sso: Sso, target: str) -> dict[str, object]:
    """POST /login straight to the handler, as API Gateway sends it."""
    page = sso.invoke(event("GET", "/login"))
    token = csrf_token(str(page["body"]))
    body = urlencode({"csrf_token": token, "username": "alice", "password": PASSWORD, "next": target})
    headers = {"Cookie": f"idp_csrf={token}", "Content-Type": "application/x-www-form-urlencoded"}
    return sso.invoke(event("POST", "/login", headers=headers, body=body.encode(), stage="local"))


def test_attack_a_non_ascii_or_cr_lf_next_through_the_handler(sso: Sso, alice: User) -> None:
    signed_in = _sign_in_event(sso, NON_ASCII_NEXT)
    split = _sign_in_event(sso, "/me\r\nSet-Cookie: session=attacker")

    assert signed_in["statusCode"] == 303
    assert signed_in["multiValueHeaders"]["Location"] == [NON_ASCII_LOCATION]  # type: ignore[index]
    assert split["statusCode"] == 400
    assert "Location" not in (split["multiValueHeaders"] or {})  # type: ignore[operator]


def test_launch_requires_sign_in_and_continues_to_the_app_after_it(sso: Sso, tables: Tables) -> None:
    accounts.create_group("devs")
    accounts.create_user(accounts.NewUser("carol", password=PASSWORD, groups=["devs"]))
    apps.create_aws_app(
        "prod",
        apps.AwsAppChoices(account_id="123456789012", roles=[("Developer", "devs")]),
        mfa_required=False,
    )
    browser = sso.browser()
    console = "https://console.aws.amazon.com/ec2/home"
    response = sso.get(browser, "/apps/prod/launch", params={"RelayState": console})
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"app": ["prod"], "RelayState": [console]}

    login_page = sso.get(browser, "/login?" + location.query)
    assert 'name="app" value="prod"' in login_page.text
    # The answer to the password is the launch itself: the page that posts the SAMLResponse.
    launch = sso.sign_in(browser, "carol", app="prod", RelayState=console)
    assert launch.status_code == 200, launch.text
    assert 'name="SAMLResponse"' in launch.text
    assert 'action="https://signin.aws.amazon.com/saml"' in launch.text
    csp = launch.headers["Content-Security-Policy"]
    assert "form-action 'self' https://signin.aws.amazon.com" in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in launch.text


def test_my_apps_lists_the_apps_with_launch_links(sso: Sso) -> None:
    accounts.create_group("devs")
    accounts.create_user(accounts.NewUser("carol", password=PASSWORD, groups=["devs"]))
    apps.create_aws_app(
        "prod",
        apps.AwsAppChoices(
            account_id="123456789012", roles=[("Developer", "devs")], display_name="Production"
        ),
        mfa_required=False,
    )
    apps.create_aws_app(
        "other",
        apps.AwsAppChoices(account_id="123456789012", roles=[("Developer", "devs")]),
        mfa_required=False,
    )
    apps.set_app_disabled("other", True)
    browser = sso.browser()
    sso.sign_in(browser, "carol")
    page = sso.get(browser, "/me")
    assert 'href="/apps/prod/launch"' in page.text and "Production" in page.text
    assert "/apps/other/launch" not in page.text


def test_launch_refuses_a_user_locked_after_sign_in(sso: Sso) -> None:
    accounts.create_group("devs")
    accounts.create_user(accounts.NewUser("carol", password=PASSWORD, groups=["devs"]))
    apps.create_aws_app(
        "prod",
        apps.AwsAppChoices(account_id="123456789012", roles=[("Developer", "devs")]),
        mfa_required=False,
    )
    browser = sso.browser()
    sso.sign_in(browser, "carol")
    User("carol").update(actions=[User.locked.set(True)])
    response = sso.get(browser, "/apps/prod/launch")
    assert response.status_code == 403
    assert "This account is locked." in response.text
    assert not [event for event in AuditEvent.scan() if event.type == "saml.assertion_issued"]


def test_unknown_app_is_a_clear_404(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    sso.sign_in(browser, "alice")
    response = sso.get(browser, "/apps/nope/launch")
    assert response.status_code == 404
    assert "There is no app 'nope'." in html.unescape(response.text)


def test_metadata_names_the_entity_and_the_signing_certificate(sso: Sso) -> None:
    response = sso.get(sso.browser(), "/saml/metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{sso.url}/saml/metadata"' in response.text
    assert "X509Certificate>" in response.text
