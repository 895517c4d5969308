"""Bad input gets a clear 4xx with a message, never a 500 or a trace, and writes nothing (S16, S26)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests

from idp_core.models import AuditEvent, Session, User
from idp_core.passwords import MAX_PASSWORD_CHARS
from tests.helpers.sso import PASSWORD, Sso

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
}


# The password step alone; second factors are tested in test_mfa_*.
pytestmark = pytest.mark.sso_setup("password_only")


def stored_state() -> tuple[list[dict], int, int]:
    users = [dict(user.attribute_values) for user in User.scan()]
    return users, len(list(Session.scan())), len(list(AuditEvent.scan()))


def login_post(sso: Sso, browser: requests.Session, body: bytes | str, headers: dict[str, str] | None = None):
    return browser.post(
        sso.url + "/login", data=body, headers=headers or FORM, allow_redirects=False, timeout=30
    )


def assert_security_headers(response: requests.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)
    csp = response.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ):
        assert directive in csp, (response.url, csp)
    if response.headers.get("Content-Type", "").startswith("text/html"):
        assert response.headers["Cache-Control"] == "no-store"


def test_login_post_without_a_valid_csrf_token_is_refused_and_writes_nothing(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    token = sso.login_form_token(browser)
    before = stored_state()
    credentials = {"username": "alice", "password": PASSWORD}
    cases = [
        (browser, credentials),  # no token in the form
        (browser, {**credentials, "csrf_token": "x" * 43}),  # a token that is not the cookie's
        (sso.browser(), {**credentials, "csrf_token": token}),  # the form's token without the cookie
    ]
    for client, form in cases:
        response = sso.post(client, "/login", form)
        assert response.status_code == 403
        assert "did not come from this site" in response.text
        assert "Set-Cookie" not in response.headers or "idp_session" not in response.headers["Set-Cookie"]
    assert stored_state() == before


def test_malformed_login_posts_get_clear_messages_and_write_nothing(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    token = sso.login_form_token(browser)
    before = stored_state()

    def form(**fields: str) -> str:
        return urlencode({"csrf_token": token, **fields})

    cases: list[tuple[str | bytes, dict[str, str], int, str]] = [
        (form(username="alice"), FORM, 400, "Password is required."),
        (form(username="", password=PASSWORD), FORM, 400, "Username is required."),
        (
            form(username="a" * 257, password=PASSWORD),
            FORM,
            400,
            "Username must be at most 256 characters long.",
        ),
        (
            form(username="alice", password="p" * (MAX_PASSWORD_CHARS + 1)),
            FORM,
            400,
            f"Password must be at most {MAX_PASSWORD_CHARS} characters long.",
        ),
        (form(username="alice", password=PASSWORD) + "&password=again", FORM, 400, "was sent more than once"),
        ("&".join(f"f{i}=1" for i in range(40)) + f"&csrf_token={token}", FORM, 400, "too many fields"),
        (f"csrf_token={token}&username=%FF%FE&password=x".encode(), FORM, 400, "not valid UTF-8"),
        (b"csrf_token=" + token.encode() + b"&username=\xff\xfe", FORM, 400, "not valid UTF-8"),
        ('{"username": "alice"}', {"Content-Type": "application/json"}, 415, "accepts only form posts"),
        (form(username="alice", password="x" * 17000), FORM, 413, "too large"),
        (form(username="alice", password=PASSWORD, app="Not An App!"), FORM, 400, "An app name is"),
        (form(username="alice", password=PASSWORD, RelayState="r" * 2049), FORM, 400, "RelayState must be"),
    ]
    for body, headers, status, message in cases:
        response = login_post(sso, browser, body, headers)
        assert response.status_code == status, (body[:80], response.text[-400:])
        assert message in response.text, (message, response.text[-400:])
        assert 'role="alert"' in response.text
        assert "Traceback" not in response.text
        assert_security_headers(response)
    assert stored_state() == before


def test_unknown_pages_and_bad_app_names_get_clear_answers(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    sso.sign_in(browser, "alice")
    before = stored_state()
    missing = sso.get(browser, "/no/such/page")
    assert missing.status_code == 404
    assert "There is no page at this address." in missing.text
    assert_security_headers(missing)
    bad_name = sso.get(browser, "/apps/Bad_Name/launch")
    assert bad_name.status_code == 400
    assert "An app name is" in bad_name.text
    unknown = sso.get(browser, "/apps/nope/launch")
    assert unknown.status_code == 404
    too_long = sso.get(browser, "/apps/nope/launch", params={"RelayState": "x" * 3000})
    assert too_long.status_code == 400
    sp_initiated = sso.get(browser, "/saml/sso", params={"SAMLRequest": "abc"})
    assert sp_initiated.status_code == 400
    assert "SAMLRequest is not valid base64" in sp_initiated.text
    assert stored_state()[0] == before[0]
    assert stored_state()[1] == before[1]


def test_an_unexpected_error_is_a_generic_500_without_details(
    sso: Sso, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp_core import saml_apps

    def broken(user: User) -> list:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(saml_apps, "apps_for_user", broken)
    browser = sso.browser()
    sso.sign_in(browser, "alice")
    response = sso.get(browser, "/me")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "internal detail" not in response.text and "Traceback" not in response.text
    assert_security_headers(response)


def test_every_response_carries_the_security_headers(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    responses = [
        sso.get(browser, "/"),
        sso.get(browser, "/login"),
        sso.get(browser, "/me"),
        sso.get(browser, "/static/idp.css"),
        sso.get(browser, "/saml/metadata"),
        sso.get(browser, "/nowhere"),
        sso.post(browser, "/login", {"username": "alice"}),
        sso.sign_in(browser, "alice", "wrong password!"),
        sso.sign_in(browser, "alice"),
        sso.get(browser, "/me"),
        sso.post(browser, "/logout", {}),
    ]
    for response in responses:
        assert_security_headers(response)
    assert "script-src" not in responses[9].headers["Content-Security-Policy"]
    # The sign-in page runs only this site's own security-key script, never an inline one.
    login_policy = responses[1].headers["Content-Security-Policy"]
    assert "script-src 'self';" in login_policy
    assert "nonce" not in login_policy and "unsafe" not in login_policy


def test_get_requests_change_nothing(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    before = stored_state()
    for path in ("/", "/login", "/me", "/logout", "/apps/nope/launch", "/saml/metadata"):
        sso.get(browser, path, params={"username": "alice", "password": PASSWORD})
    users, session_count, _ = stored_state()
    assert (users, session_count) == before[:2]
