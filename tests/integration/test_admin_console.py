"""The admin console through the local gateway: building users, groups and AWS apps,
admin-only access, CSRF (S16), clear 400s that write nothing (S26), audit actors (S25)
and the guard that keeps an admin from locking themselves out."""

from __future__ import annotations

import re
from typing import Any

import lxml.html
import pytest
import requests

from idp_core import accounts
from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.models import App, AuditEvent, Group, User
from tests.helpers.console import page_token, submit, text_of
from tests.helpers.mfa import signed_in_admin
from tests.helpers.sso import PASSWORD, Sso, csrf_token, event, running_sso

ADMIN_GETS = [
    "/admin",
    "/admin/users",
    "/admin/users/new",
    "/admin/users/root",
    "/admin/groups",
    "/admin/apps",
    "/admin/apps/new",
    "/admin/apps/sandbox",
    "/admin/apps/sandbox/edit",
    "/admin/audit",
    "/admin/signing-key",
    "/admin/mfa/tokens",
]
ADMIN_POSTS = [
    "/admin/users",
    "/admin/users/root/disable",
    "/admin/users/root/enable",
    "/admin/users/root/password",
    "/admin/users/root/groups",
    "/admin/users/root/grant-admin",
    "/admin/users/root/revoke-admin",
    "/admin/users/root/unlock",
    "/admin/users/root/delete",
    "/admin/users/root/details",
    "/admin/users/root/sign-out",
    "/admin/groups",
    "/admin/groups/ops/disable",
    "/admin/groups/ops/enable",
    "/admin/apps",
    "/admin/apps/sandbox/disable",
    "/admin/apps/sandbox/enable",
    "/admin/apps/sandbox/delete",
    "/admin/apps/sandbox/edit",
]
ADMIN_EVENT_PREFIXES = ("user.", "group.", "app.")


# The users these tests create have no second factor; the admin has one (below).
pytestmark = pytest.mark.sso_setup("password_only")


def stored_state() -> dict[str, list[dict[str, Any]]]:
    """Everything the console can write, to show that a refused request wrote nothing."""
    return {
        "users": sorted((u.serialize() for u in User.scan()), key=str),
        "groups": sorted((g.serialize() for g in Group.scan()), key=str),
        "apps": sorted((a.serialize() for a in App.scan()), key=str),
        "events": [e.serialize() for e in AuditEvent.scan() if e.type.startswith(ADMIN_EVENT_PREFIXES)],
    }


# ---------------------------------------------------------------- the happy path


def test_admin_adds_a_group_a_user_in_it_and_an_aws_app_for_the_group(
    sso: Sso, admin: requests.Session
) -> None:
    created_group = submit(sso, admin, "/admin/groups", {"name": "Developers", "description": "Builders"})
    assert created_group.status_code == 303
    assert created_group.headers["Location"] == "/admin/groups?notice=group-created"
    groups_page = sso.get(admin, created_group.headers["Location"])
    assert "The group was created." in groups_page.text and "Developers" in groups_page.text

    created_user = submit(
        sso,
        admin,
        "/admin/users",
        {
            "username": "Bob",
            "email": "bob@example.com",
            "display_name": "Bob Builder",
            "password": PASSWORD,
            "group:developers": "on",
        },
    )
    assert created_user.status_code == 303
    assert created_user.headers["Location"] == "/admin/users/bob?notice=user-created"
    bob = User.get("bob")
    assert bob.group_names() == ["developers"] and not bob.is_admin and bob.email == "bob@example.com"
    detail = sso.get(admin, created_user.headers["Location"])
    assert detail.status_code == 200 and "The user was created." in detail.text

    created_app = submit(
        sso,
        admin,
        "/admin/apps",
        {
            "name": "prod",
            "display_name": "Production",
            "account_id": "123456789012",
            "role_1": "Developer",
            "group_1": "developers",
            "session_duration": "7200",
        },
    )
    assert created_app.status_code == 303, created_app.text
    assert created_app.headers["Location"] == "/admin/apps/prod?notice=app-created"
    app = App.get("prod")
    assert [(m.role, m.group) for m in app.roles] == [("Developer", "developers")]
    assert app.session_duration == 7200

    settings_page = text_of(sso.get(admin, "/admin/apps/prod"))
    assert "arn:aws:iam::123456789012:saml-provider/serverless-idp" in settings_page
    assert "arn:aws:iam::123456789012:role/Developer" in settings_page
    assert f"{sso.url}/saml/metadata" in settings_page
    assert (
        '"sts:AssumeRoleWithSAML"' in settings_page
        and '"SAML:aud": "https://signin.aws.amazon.com/saml"' in settings_page
    )

    listing = text_of(sso.get(admin, "/admin/users"))
    assert "Bob Builder" in listing and "bob@example.com" in listing and "developers" in listing

    # The new user signs in and sees the app the group gives them.
    bob_browser = sso.browser()
    assert sso.sign_in(bob_browser, "bob").status_code == 303
    assert "Production" in sso.get(bob_browser, "/me").text

    events = {e.type: e for e in AuditEvent.scan() if e.type.startswith(ADMIN_EVENT_PREFIXES)}
    assert set(events) == {"group.created", "user.created", "app.created"}
    assert all(e.actor == "root" and e.source_ip == "127.0.0.1" for e in events.values())


def test_admin_disables_and_re_enables_a_user(sso: Sso, admin: requests.Session) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    bob_browser = sso.browser()
    assert sso.sign_in(bob_browser, "bob").status_code == 303

    disabled = submit(sso, admin, "/admin/users/bob/disable")
    assert disabled.status_code == 303
    assert disabled.headers["Location"] == "/admin/users/bob?notice=user-disabled"
    assert User.get("bob").disabled
    # Disabling ended Bob's session and refuses a new sign-in.
    assert sso.get(bob_browser, "/me").status_code == 303
    assert sso.sign_in(bob_browser, "bob").status_code == 401
    assert "Disabled" in sso.get(admin, "/admin/users/bob").text

    enabled = submit(sso, admin, "/admin/users/bob/enable")
    assert enabled.status_code == 303
    assert not User.get("bob").disabled
    assert sso.sign_in(bob_browser, "bob").status_code == 303


def test_admin_manages_a_user_with_an_unusual_name_from_its_detail_page(
    sso: Sso, admin: requests.Session
) -> None:
    accounts.create_group("ops")
    accounts.create_user(accounts.NewUser("O'Brien@example.com", password=PASSWORD))
    listing = sso.get(admin, "/admin/users")
    assert 'href="/admin/users/o%27brien%40example.com"' in listing.text
    assert sso.get(admin, "/admin/users/o%27brien%40example.com").status_code == 200

    saved = submit(sso, admin, "/admin/users/o%27brien%40example.com/groups", {"group:ops": "on"})
    assert saved.status_code == 303
    assert saved.headers["Location"] == "/admin/users/o%27brien%40example.com?notice=groups-saved"
    assert User.get("o'brien@example.com").group_names() == ["ops"]

    assert submit(sso, admin, "/admin/users/o%27brien%40example.com/grant-admin").status_code == 303
    assert User.get("o'brien@example.com").is_admin
    assert submit(sso, admin, "/admin/users/o%27brien%40example.com/revoke-admin").status_code == 303
    assert not User.get("o'brien@example.com").is_admin


def test_admin_resets_a_password_and_unlocks_a_user(sso: Sso, admin: requests.Session) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    User.get("bob").update(actions=[User.locked.set(True), User.fail_password.set(100)])
    bob_row = sso.get(admin, "/admin/users").text.split(">bob</a></th>", 1)[1].split("</tr>", 1)[0]
    assert bob_row.strip().endswith("<td>Yes</td>")  # the Locked column

    assert (
        submit(sso, admin, "/admin/users/bob/password", {"password": "a brand new passphrase"}).status_code
        == 303
    )
    assert submit(sso, admin, "/admin/users/bob/unlock").status_code == 303
    bob = User.get("bob")
    assert not bob.locked and bob.total_failures() == 0
    assert sso.sign_in(sso.browser(), "bob", "a brand new passphrase").status_code == 303


def test_deleting_a_user_or_an_app_needs_the_confirm_box(sso: Sso, admin: requests.Session) -> None:
    accounts.create_group("ops")
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    unconfirmed = submit(sso, admin, "/admin/users/bob/delete")
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm" in unconfirmed.text
    assert User.get("bob")

    deleted = submit(sso, admin, "/admin/users/bob/delete", {"confirm": "yes"})
    assert deleted.status_code == 303 and deleted.headers["Location"] == "/admin/users?notice=user-deleted"
    assert accounts.find_user("bob") is None

    from idp_core import apps

    apps.create_aws_app("sandbox", apps.AwsAppChoices(account_id="123456789012", roles=[("Dev", "ops")]))
    assert submit(sso, admin, "/admin/apps/sandbox/delete").status_code == 400
    assert submit(sso, admin, "/admin/apps/sandbox/disable").status_code == 303
    assert App.get("sandbox").disabled
    assert submit(sso, admin, "/admin/apps/sandbox/enable").status_code == 303
    assert not App.get("sandbox").disabled
    assert submit(sso, admin, "/admin/apps/sandbox/delete", {"confirm": "yes"}).status_code == 303
    assert list(App.scan()) == []


def test_groups_list_counts_members_and_groups_can_be_disabled(sso: Sso, admin: requests.Session) -> None:
    accounts.create_group("ops")
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, groups=["ops"]))
    accounts.create_user(accounts.NewUser("carol", password=PASSWORD, groups=["ops"]))
    page = sso.get(admin, "/admin/groups")
    row = page.text.split('<th scope="row">ops</th>', 1)[1].split("</tr>", 1)[0]
    assert "<td>2</td>" in row

    assert submit(sso, admin, "/admin/groups/ops/disable").status_code == 303
    assert Group.get("ops").disabled
    assert submit(sso, admin, "/admin/groups/ops/enable").status_code == 303
    assert not Group.get("ops").disabled


def test_audit_page_shows_the_newest_admin_actions(sso: Sso, admin: requests.Session) -> None:
    submit(sso, admin, "/admin/groups", {"name": "ops"})
    page = sso.get(admin, "/admin/audit")
    assert page.status_code == 200
    assert "group.created" in page.text and "root" in page.text and "127.0.0.1" in page.text


def test_overview_counts_and_links(sso: Sso, admin: requests.Session) -> None:
    accounts.create_group("ops")
    page = sso.get(admin, "/admin")
    assert page.status_code == 200
    assert "<strong>1</strong> user</a>" in page.text and "<strong>1</strong> group</a>" in page.text
    assert 'href="/admin/users/new"' in page.text


def test_every_admin_page_labels_its_inputs_and_posts_carry_the_csrf_token(
    sso: Sso, admin: requests.Session
) -> None:
    from idp_core import apps

    accounts.create_group("ops")
    apps.create_aws_app("sandbox", apps.AwsAppChoices(account_id="123456789012", roles=[("Dev", "ops")]))
    token = page_token(sso, admin)
    for path in ADMIN_GETS:
        response = sso.get(admin, path)
        assert response.status_code == 200, path
        document = lxml.html.fromstring(response.text)
        labelled = {label.get("for") for label in document.iter("label")}
        for control in document.xpath("//input[not(@type='hidden')] | //select | //textarea"):
            assert control.get("id") in labelled, f"{path}: {lxml.html.tostring(control)!r} has no label"
        for form in document.xpath("//form[not(@role='search')]"):
            assert form.get("method") == "post", path
            assert form.xpath("input[@name='csrf_token']/@value") == [token], path
        for table in document.xpath("//table"):
            assert table.xpath(".//th[@scope='col']"), path


# ---------------------------------------------------------------- who may use the console


def test_signed_out_visitor_is_sent_to_sign_in_and_back(sso: Sso) -> None:
    response = sso.get(sso.browser(), "/admin/users")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=%2Fadmin%2Fusers"


def test_non_admin_gets_403_on_every_admin_page_and_post(sso: Sso, root: User) -> None:
    accounts.create_group("ops")
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    bob = sso.browser()
    assert sso.sign_in(bob, "bob").status_code == 303
    token = csrf_token(sso.get(bob, "/me").text)
    before = stored_state()
    for path in ADMIN_GETS:
        page = sso.get(bob, path)
        assert page.status_code == 403, path
        assert "This page is for administrators." in page.text and 'role="alert"' in page.text
    for path in ADMIN_POSTS:
        page = sso.post(bob, path, {"csrf_token": token, "name": "x", "confirm": "yes"})
        assert page.status_code == 403, path
    assert stored_state() == before


def test_post_without_a_valid_csrf_token_is_refused_and_writes_nothing(
    sso: Sso, admin: requests.Session
) -> None:
    accounts.create_group("ops")
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    before = stored_state()
    forms = {
        "/admin/groups": {"name": "evil"},
        "/admin/users": {"username": "mallory", "password": PASSWORD, "is_admin": "on"},
        "/admin/users/bob/disable": {},
        "/admin/users/bob/grant-admin": {},
        "/admin/users/bob/delete": {"confirm": "yes"},
        "/admin/groups/ops/disable": {},
    }
    for path, data in forms.items():
        missing = sso.post(admin, path, data)
        forged = sso.post(admin, path, {**data, "csrf_token": "not-the-session-token"})
        assert missing.status_code == forged.status_code == 403, path
        assert "did not come from this site" in missing.text
    assert stored_state() == before


def test_get_never_changes_state(sso: Sso, admin: requests.Session) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    before = stored_state()
    assert sso.get(admin, "/admin/users/bob/disable").status_code == 404
    assert sso.get(admin, "/admin/users/bob/delete").status_code == 404
    assert stored_state() == before


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("path", "data", "message", "kept"),
    [
        (
            "/admin/users",
            {"username": "dave", "display_name": "Dave D", "password": "short"},
            "at least 8",
            'value="Dave D"',
        ),
        (
            "/admin/users",
            {"username": "dave", "display_name": "x" * 129, "password": PASSWORD},
            "Display name must be at most 128 characters long.",
            None,
        ),
        (
            "/admin/users",
            {"username": "dave", "email": "not-an-address", "password": PASSWORD},
            "is not a valid e-mail address",
            'value="not-an-address"',
        ),
        (
            "/admin/users",
            {"username": "bad name!", "password": PASSWORD},
            "The username may contain only",
            'value="bad name!"',
        ),
        (
            "/admin/apps",
            {"name": "prod", "account_id": "12345", "role_1": "Dev", "group_1": "ops"},
            "An AWS account id is 12 digits",
            'value="12345"',
        ),
        (
            "/admin/apps",
            {"name": "prod", "account_id": "123456789012", "role_1": "Dev", "group_1": "ghosts"},
            "There is no group 'ghosts'",
            'value="Dev"',
        ),
        (
            "/admin/apps",
            {"name": "prod", "account_id": "123456789012", "role_1": "Dev"},
            "Role mapping row 1: choose the group",
            'value="Dev"',
        ),
        (
            "/admin/apps",
            {
                "name": "prod",
                "account_id": "123456789012",
                "role_1": "Dev",
                "group_1": "ops",
                "session_duration": "60",
            },
            "The session duration must be between 900 and 43200 seconds.",
            'value="60"',
        ),
        (
            "/admin/apps",
            {
                "name": "prod",
                "account_id": "123456789012",
                "role_1": "Dev",
                "group_1": "ops",
                "relay_state": "http://evil.example/",
            },
            "The relay state must be an https URL",
            None,
        ),
        ("/admin/groups", {"name": "ops"}, "The group 'ops' already exists.", None),
        ("/admin/groups", {"name": "big", "description": "d" * 257}, "Description must be at most 256", None),
        ("/admin/users/bob/password", {"password": "short"}, "at least 8", None),
    ],
)
def test_bad_input_is_a_clear_400_on_the_form_and_writes_nothing(
    sso: Sso, admin: requests.Session, path: str, data: dict[str, str], message: str, kept: str | None
) -> None:
    accounts.create_group("ops")
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    before = stored_state()
    response = submit(sso, admin, path, data)
    # A name that is taken is a conflict; everything else is a bad form.
    assert response.status_code == (409 if "already exists" in message else 400), response.text
    page = text_of(response)
    assert message in page
    assert 'role="alert"' in response.text
    if kept is not None:
        assert kept in page
    # A refused form never echoes a password back.
    assert not re.search(r'type="password"[^>]*value=', response.text)
    assert PASSWORD not in page
    assert stored_state() == before


def test_an_oversized_form_is_refused_before_anything_is_read(sso: Sso, admin: requests.Session) -> None:
    before = stored_state()
    response = submit(sso, admin, "/admin/groups", {"name": "ops", "description": "d" * 20000})
    assert response.status_code == 413
    assert stored_state() == before


def test_admin_cannot_disable_delete_or_demote_themselves(sso: Sso, admin: requests.Session) -> None:
    before = stored_state()
    for action, data, words in [
        ("disable", {}, "You cannot disable your own account."),
        ("delete", {"confirm": "yes"}, "You cannot delete your own account."),
        ("revoke-admin", {}, "You cannot revoke administrator rights from your own account."),
    ]:
        response = submit(sso, admin, f"/admin/users/ROOT/{action}", data)
        assert response.status_code == 400, action
        assert words in text_of(response) and 'role="alert"' in response.text
    assert stored_state() == before
    root = User.get("root")
    assert root.is_admin and not root.disabled


def test_unknown_user_or_app_is_a_clear_404(sso: Sso, admin: requests.Session) -> None:
    assert "There is no user 'nobody'." in text_of(sso.get(admin, "/admin/users/nobody"))
    assert sso.get(admin, "/admin/apps/nothing").status_code == 404
    assert submit(sso, admin, "/admin/users/nobody/disable").status_code == 404


# ---------------------------------------------------------------- behind an API Gateway stage


def test_links_forms_and_redirects_carry_the_stage_prefix(
    tables: Tables, clock: FakeClock, root: User
) -> None:
    with running_sso(tables, clock, public_base_url=False) as sso:
        browser = signed_in_admin(sso)
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        page = sso.invoke(event("GET", "/admin/groups", headers={"Cookie": cookie}))
        body = page["body"]
        assert page["statusCode"] == 200
        assert 'action="/prod/admin/groups"' in body and 'href="/prod/admin/users"' in body
        token = csrf_token(body)
        created = sso.invoke(
            event(
                "POST",
                "/admin/groups",
                headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
                body=f"csrf_token={token}&name=ops".encode(),
            )
        )
        assert created["statusCode"] == 303
        assert created["multiValueHeaders"]["Location"] == ["/prod/admin/groups?notice=group-created"]
        assert Group.get("ops")
