"""The edits admins do every day, in the console (issue 15 point 3): an app's settings, a
user's details, sign-out everywhere and hardware tokens. Each edit goes through the same
validation as creation, is audited with what changed, and refuses non-admins, forms without
the session's CSRF token and input that creation would refuse, writing nothing."""

from __future__ import annotations

import base64
import html
import secrets
from typing import Any

import pytest
import requests

from idp_core import accounts, apps
from idp_core.mfa import factors
from idp_core.models import App, AuditEvent, OathToken, User
from tests.helpers.audit import APP_STATUS_EVENTS, audit_trail, what_was_recorded
from tests.helpers.cli import act_on, idp_from_env
from tests.helpers.console import submit
from tests.helpers.mfa import emails_to
from tests.helpers.sso import PASSWORD, Sso, csrf_token, is_signed_in, signed_in

pytestmark = pytest.mark.sso_setup("password_only")

ACCOUNT = "123456789012"


def events(event_type: str) -> list[AuditEvent]:
    return [event for event in AuditEvent.scan() if event.type == event_type]


def app_state(name: str) -> dict[str, Any]:
    return App.get(name).serialize()


@pytest.fixture
def sandbox(sso: Sso) -> App:
    """An app ``sandbox`` that gives the group ops the role Dev, and no second factor needed."""
    accounts.create_group("ops")
    accounts.create_group("auditors")
    return apps.create_aws_app(
        "sandbox", apps.AwsAppChoices(account_id=ACCOUNT, roles=[("Dev", "ops")]), mfa_required=False
    )


# ---------------------------------------------------------------- apps


def test_admin_edits_an_apps_roles_duration_and_relay_state(
    sso: Sso, admin: requests.Session, sandbox: App
) -> None:
    form = sso.get(admin, "/admin/apps/sandbox/edit")
    assert form.status_code == 200
    # The form starts from the app's current settings.
    assert 'name="role_1" value="Dev"' in form.text and 'value="ops" selected' in form.text
    assert 'name="session_duration" value="3600"' in form.text

    saved = submit(
        sso,
        admin,
        "/admin/apps/sandbox/edit",
        {
            "account_id": ACCOUNT,
            "display_name": "Sandbox account",
            "role_1": "Dev",
            "group_1": "ops",
            "role_2": "ReadOnly",
            "group_2": "auditors",
            "session_duration": "7200",
            "relay_state": "https://console.aws.amazon.com/s3/home",
        },
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["Location"] == "/admin/apps/sandbox?notice=app-updated"
    app = App.get("sandbox")
    assert [(m.role, m.group) for m in app.roles] == [("Dev", "ops"), ("ReadOnly", "auditors")]
    assert (app.session_duration, app.relay_state, app.display_name) == (
        7200,
        "https://console.aws.amazon.com/s3/home",
        "Sandbox account",
    )
    assert "The app&#39;s settings were saved." in sso.get(admin, saved.headers["Location"]).text
    [event] = events("app.updated")
    assert event.actor == "root" and event.subject == "sandbox"
    changed = event.details.as_dict()
    assert changed["changed"] == "display_name,roles,session_duration,relay_state"
    assert changed["session_duration"] == "3600 -> 7200"
    assert changed["roles"] == "Dev=ops -> Dev=ops;ReadOnly=auditors"


def test_an_unchanged_edit_writes_no_event(sso: Sso, admin: requests.Session, sandbox: App) -> None:
    saved = submit(
        sso,
        admin,
        "/admin/apps/sandbox/edit",
        {"account_id": ACCOUNT, "role_1": "Dev", "group_1": "ops", "session_duration": "3600"},
    )
    assert saved.status_code == 303
    assert events("app.updated") == []


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"role_1": "arn:aws:iam::999999999999:role/Dev", "group_1": "ops"}, "is not in the app's account"),
        ({"role_1": "Dev", "group_1": "nobody"}, "nobody"),
        ({}, "An AWS app needs at least one role mapping"),
        ({"role_1": "Dev", "group_1": "ops", "session_duration": "60"}, "must be between 900 and 43200"),
        ({"role_1": "Dev", "group_1": "ops", "relay_state": "http://evil.example"}, "must be an https URL"),
        ({"role_1": "Dev", "group_1": "ops", "account_id": "12345"}, "An AWS account id is 12 digits"),
    ],
)
def test_attack_an_edit_that_makes_the_app_invalid_is_refused_as_creation_is(
    sso: Sso, admin: requests.Session, sandbox: App, form: dict[str, str], message: str
) -> None:
    before = app_state("sandbox")
    refused = submit(sso, admin, "/admin/apps/sandbox/edit", {"account_id": ACCOUNT, **form})
    assert refused.status_code == 400
    assert message in html.unescape(refused.text)
    # The refused form comes back with what the admin typed.
    assert 'action="/admin/apps/sandbox/edit"' in refused.text
    assert app_state("sandbox") == before and events("app.updated") == []
    # Creation refuses the same input with the same sentence.
    created = submit(sso, admin, "/admin/apps", {"name": "other", "account_id": ACCOUNT, **form})
    assert created.status_code == 400 and message in html.unescape(created.text)


def test_attack_a_non_admin_cannot_edit_an_app(sso: Sso, root: User, sandbox: App) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    bob = signed_in(sso, "bob")
    token = csrf_token(sso.get(bob, "/me").text)
    before = app_state("sandbox")
    assert sso.get(bob, "/admin/apps/sandbox/edit").status_code == 403
    refused = sso.post(
        bob,
        "/admin/apps/sandbox/edit",
        {"csrf_token": token, "account_id": ACCOUNT, "role_1": "Admin", "group_1": "ops"},
    )
    assert refused.status_code == 403
    assert app_state("sandbox") == before


def test_attack_an_app_edit_without_the_sessions_csrf_token_is_refused(
    sso: Sso, admin: requests.Session, sandbox: App
) -> None:
    before = app_state("sandbox")
    data = {"account_id": ACCOUNT, "role_1": "Admin", "group_1": "ops"}
    assert sso.post(admin, "/admin/apps/sandbox/edit", data).status_code == 403
    stale = {**data, "csrf_token": "a-token-of-an-earlier-session"}
    assert sso.post(admin, "/admin/apps/sandbox/edit", stale).status_code == 403
    assert app_state("sandbox") == before and events("app.updated") == []


def test_a_disabled_app_refuses_launches_with_a_clear_page(sso: Sso, root: User, sandbox: App) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, groups=["ops"]))
    bob = signed_in(sso, "bob")
    assert "SAMLResponse" in sso.get(bob, "/apps/sandbox/launch").text

    apps.update_aws_app("sandbox", apps.AwsAppChoices(), disabled=True)
    refused = sso.get(bob, "/apps/sandbox/launch")
    assert refused.status_code == 403
    text = html.unescape(refused.text)
    assert "The app 'sandbox' is disabled: an administrator turned its sign-ins off." in text
    assert 'role="alert"' in refused.text and "SAMLResponse" not in text
    # The user's page no longer offers it either.
    assert "/apps/sandbox/launch" not in sso.get(bob, "/me").text
    [refusal] = events("saml.assertion_refused")
    assert refusal.details.as_dict()["rule"] == "app-disabled"

    apps.update_aws_app("sandbox", apps.AwsAppChoices(), disabled=False)
    assert "SAMLResponse" in sso.get(bob, "/apps/sandbox/launch").text
    assert [event.type for event in audit_trail(APP_STATUS_EVENTS)] == ["app.disabled", "app.enabled"]
    assert events("app.updated") == []


@pytest.mark.parametrize(
    ("button", "option", "event_type"),
    [("disable", "--disable", "app.disabled"), ("enable", "--enable", "app.enabled")],
)
def test_the_console_and_the_cli_audit_an_apps_status_change_alike(
    sso: Sso,
    admin: requests.Session,
    sandbox: App,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    button: str,
    option: str,
    event_type: str,
) -> None:
    """One change, one event type, whoever makes it: an operator filtering the trail on
    app.disabled must find the CLI's changes as well as the console's."""
    act_on(sso.settings, monkeypatch)
    made_by = {}
    for how in ("console", "cli"):
        apps.update_aws_app("sandbox", apps.AwsAppChoices(), disabled=button == "enable")
        before = {event.event_id for event in audit_trail()}
        if how == "console":
            assert submit(sso, admin, f"/admin/apps/sandbox/{button}").status_code == 303
        else:
            code, _, err = idp_from_env(capsys, "app", "update", "sandbox", option)
            assert (code, err) == (0, "")
        made_by[how] = [event for event in audit_trail() if event.event_id not in before]
        assert App.get("sandbox").disabled == (button == "disable")

    assert what_was_recorded(made_by["console"]) == what_was_recorded(made_by["cli"])
    assert what_was_recorded(made_by["cli"]) == [(event_type, "success", "sandbox", {})]
    assert made_by["console"][0].actor == "root" and made_by["cli"][0].actor.startswith("cli:")


# ---------------------------------------------------------------- users


# A change of what a user may reach, each as the console's button and as the CLI's option.
USER_ACCESS_CHANGES = [
    (
        "disable",
        ["--disable"],
        accounts.UserChanges(disabled=False),
        ("user.disabled", {"sessions_ended": "0"}),
    ),
    ("enable", ["--enable"], accounts.UserChanges(disabled=True), ("user.enabled", {})),
    (
        "grant-admin",
        ["--admin"],
        accounts.UserChanges(is_admin=False),
        ("user.admin_changed", {"admin": "True"}),
    ),
    (
        "revoke-admin",
        ["--no-admin"],
        accounts.UserChanges(is_admin=True),
        ("user.admin_changed", {"admin": "False"}),
    ),
]


@pytest.mark.parametrize(("button", "options", "before", "recorded"), USER_ACCESS_CHANGES)
def test_the_console_and_the_cli_audit_a_users_access_change_alike(
    sso: Sso,
    admin: requests.Session,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    button: str,
    options: list[str],
    before: accounts.UserChanges,
    recorded: tuple[str, dict[str, str]],
) -> None:
    """As for apps: an operator filtering the trail on user.disabled or user.admin_changed
    finds the CLI's changes (``idp user update``) as well as the console's buttons'."""
    act_on(sso.settings, monkeypatch)
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    made_by = {}
    for how in ("console", "cli"):
        accounts.update_user("bob", before)
        seen = {event.event_id for event in audit_trail()}
        if how == "console":
            assert submit(sso, admin, f"/admin/users/bob/{button}").status_code == 303
        else:
            code, _, err = idp_from_env(capsys, "user", "update", "bob", *options)
            assert (code, err) == (0, "")
        made_by[how] = [event for event in audit_trail() if event.event_id not in seen]

    event_type, details = recorded
    assert what_was_recorded(made_by["console"]) == what_was_recorded(made_by["cli"])
    assert what_was_recorded(made_by["cli"]) == [(event_type, "success", "bob", details)]


@pytest.fixture
def old_address() -> str:
    """A new address per test: moto's SES keeps the messages of every test of the process."""
    return f"bob@{secrets.token_hex(4)}.example"


def user_state(username: str) -> dict[str, Any]:
    return User.get(username).serialize()


def details_form(sso: Sso, admin: requests.Session, username: str, **fields: str) -> dict[str, str]:
    """The user page's details form as the page fills it in, with ``fields`` typed over it."""
    page = sso.get(admin, f"/admin/users/{username}").text
    seen_at = page.split('name="seen_at" value="', 1)[1].split('"', 1)[0]
    user = User.get(username)
    return {
        "seen_at": seen_at,
        "email": user.email or "",
        "phone": user.phone or "",
        "display_name": user.display_name or "",
        **fields,
    }


def test_admin_changes_a_users_email_and_phone_and_the_old_address_hears_of_it(
    sso: Sso, admin: requests.Session, old_address: str
) -> None:
    new_address = old_address.replace("bob@", "bob.new@")
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email=old_address, display_name="Bob"))
    form = details_form(sso, admin, "bob", email=new_address, phone="+44 7400 123456")
    saved = submit(sso, admin, "/admin/users/bob/details", form)
    assert saved.status_code == 303, saved.text
    assert saved.headers["Location"] == "/admin/users/bob?notice=user-updated"
    bob = User.get("bob")
    assert (bob.email, bob.phone, bob.display_name) == (new_address, "+447400123456", "Bob")
    page = html.unescape(sso.get(admin, saved.headers["Location"]).text)
    assert "The user's details were saved." in page and "+447400123456" in page

    [notice] = emails_to(old_address)
    assert notice.subject == "The e-mail address and phone number of your account changed"
    assert "An administrator changed the e-mail address and phone number of your account bob" in notice.body
    assert new_address not in notice.body and "7400" not in notice.body
    assert len(emails_to(new_address)) == 1
    [event] = events("user.updated")
    details = event.details.as_dict()
    assert event.actor == "root" and event.subject == "bob"
    assert details["changed"] == "email,phone" and details["notice"] == "sent"
    assert details["email"] == f"b***@{old_address.split('@')[1]} -> b***@{old_address.split('@')[1]}"
    assert "7400123456" not in str(details)


def test_attack_clearing_the_email_still_tells_the_old_address(
    sso: Sso, admin: requests.Session, old_address: str
) -> None:
    """An attacker who removes the address (so that nothing more reaches the user) is told on."""
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email=old_address))
    saved = submit(sso, admin, "/admin/users/bob/details", details_form(sso, admin, "bob", email=""))
    assert saved.status_code == 303
    assert User.get("bob").email is None
    [notice] = emails_to(old_address)
    assert "e-mail address" in notice.subject


def test_attack_a_stale_user_form_does_not_overwrite_a_later_change(
    sso: Sso, admin: requests.Session, old_address: str
) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email=old_address))
    stale = details_form(sso, admin, "bob", email="mallory@evil.example")
    sso.clock.advance(5)
    accounts.update_user("bob", accounts.UserChanges(display_name="Bob Jones"), clock=sso.clock)
    before = user_state("bob")
    refused = submit(sso, admin, "/admin/users/bob/details", stale)
    assert refused.status_code == 409
    assert "was changed after you opened the page" in html.unescape(refused.text)
    assert user_state("bob") == before and emails_to(old_address) == []


def test_attack_user_details_without_the_sessions_csrf_token_are_refused(
    sso: Sso, admin: requests.Session, old_address: str
) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email=old_address))
    form = details_form(sso, admin, "bob", email="mallory@evil.example")
    before = user_state("bob")
    assert sso.post(admin, "/admin/users/bob/details", form).status_code == 403
    assert sso.post(admin, "/admin/users/bob/details", {**form, "csrf_token": "forged"}).status_code == 403
    assert user_state("bob") == before and emails_to(old_address) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not an address"}, "is not a valid e-mail address"),
        ({"phone": "12"}, "is not a valid phone number"),
        ({"phone": "+44 7400 123456; DROP"}, "may contain only digits"),
        ({"display_name": "Bob\u0007"}, "printable characters"),
        ({"seen_at": "yesterday"}, "The form is damaged"),
    ],
)
def test_bad_user_details_are_refused_with_a_sentence_and_write_nothing(
    sso: Sso, admin: requests.Session, fields: dict[str, str], message: str, old_address: str
) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email=old_address))
    before = user_state("bob")
    refused = submit(sso, admin, "/admin/users/bob/details", details_form(sso, admin, "bob", **fields))
    assert refused.status_code == 400
    assert message in html.unescape(refused.text)
    assert user_state("bob") == before and events("user.updated") == []


def test_a_directory_users_email_belongs_to_the_directory(sso: Sso, admin: requests.Session) -> None:
    accounts.create_user(
        accounts.NewUser("dora", email="dora@corp.example", display_name="Dora", source="ldap:corp")
    )
    page = sso.get(admin, "/admin/users/dora").text
    assert 'name="email" value="dora@corp.example" autocomplete="off" readonly' in page
    before = user_state("dora")
    refused = submit(
        sso, admin, "/admin/users/dora/details", details_form(sso, admin, "dora", email="x@evil.example")
    )
    assert refused.status_code == 400
    assert (
        "The e-mail address of 'dora' come from the user store ldap:corp, which owns them: change them "
        "there" in html.unescape(refused.text)
    )
    assert user_state("dora") == before
    # The phone number is not the directory's: it may change.
    saved = submit(
        sso, admin, "/admin/users/dora/details", details_form(sso, admin, "dora", phone="+44 7400 123456")
    )
    assert saved.status_code == 303 and User.get("dora").phone == "+447400123456"


# ---------------------------------------------------------------- sign out everywhere


def test_admin_signs_a_user_out_everywhere(sso: Sso, admin: requests.Session) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    laptop, phone = signed_in(sso, "bob"), signed_in(sso, "bob")
    done = submit(sso, admin, "/admin/users/bob/sign-out")
    assert done.status_code == 303
    assert done.headers["Location"] == "/admin/users/bob?notice=signed-out"
    assert not is_signed_in(sso, laptop) and not is_signed_in(sso, phone)
    [event] = events("user.signed_out_everywhere")
    assert (event.actor, event.subject, event.details.as_dict()) == ("root", "bob", {"sessions_ended": "2"})
    # The admin's own session is untouched.
    assert sso.get(admin, "/admin/users").status_code == 200


def test_an_admin_who_signs_themselves_out_everywhere_goes_to_sign_in(
    sso: Sso, admin: requests.Session
) -> None:
    done = submit(sso, admin, "/admin/users/root/sign-out")
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")
    assert sso.get(admin, "/admin/users").status_code == 303


def test_a_user_signs_out_everywhere_from_their_page(sso: Sso, root: User) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    laptop, phone = signed_in(sso, "bob"), signed_in(sso, "bob")
    page = sso.get(laptop, "/me")
    assert "Sign out everywhere" in page.text
    done = sso.post(laptop, "/me/sign-out-everywhere", {"csrf_token": csrf_token(page.text)})
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")
    assert not is_signed_in(sso, laptop) and not is_signed_in(sso, phone)
    [event] = events("user.signed_out_everywhere")
    assert (event.actor, event.subject) == ("bob", "bob")


def test_attack_a_cross_site_post_cannot_sign_a_user_out_everywhere(sso: Sso, root: User) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    laptop = signed_in(sso, "bob")
    assert sso.post(laptop, "/me/sign-out-everywhere", {}).status_code == 403
    assert sso.post(laptop, "/me/sign-out-everywhere", {"csrf_token": "forged"}).status_code == 403
    assert is_signed_in(sso, laptop) and events("user.signed_out_everywhere") == []


# ---------------------------------------------------------------- hardware tokens

TOKEN_SECRET = b"B" * 20
TOKEN_CSV = (
    "serial,secret,kind,digits,period\n"
    f"TOTP-1,{base64.b32encode(TOKEN_SECRET).decode()},totp,6,30\n"
    f"HOTP-1,{base64.b32encode(b'A' * 20).decode()},hotp,6,\n"
)


def tokens_state() -> list[dict[str, Any]]:
    return sorted((t.serialize() for t in OathToken.scan()), key=str)


def test_admin_imports_assigns_and_takes_back_a_token(sso: Sso, admin: requests.Session) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    imported = submit(sso, admin, "/admin/mfa/tokens/import", {"csv": TOKEN_CSV})
    assert imported.status_code == 303, imported.text
    assert imported.headers["Location"] == "/admin/mfa/tokens?notice=imported"
    assert {t.serial for t in OathToken.scan()} == {"TOTP-1", "HOTP-1"}
    # The CSV's secret is sealed, never stored or shown as it came.
    assert base64.b32encode(TOKEN_SECRET).decode() not in str(tokens_state())

    assigned = submit(sso, admin, "/admin/mfa/tokens/assign", {"serial": "TOTP-1", "username": "Bob"})
    assert assigned.status_code == 303, assigned.text
    [factor] = factors.list_factors("bob")
    assert (factor.kind, factor.status, factor.token_serial) == ("token", "active", "TOTP-1")
    listing = html.unescape(sso.get(admin, "/admin/mfa/tokens").text)
    assert "Take back from bob" in listing

    bob = signed_in(sso, "bob")
    taken = submit(sso, admin, "/admin/mfa/tokens/unassign", {"serial": "TOTP-1", "username": "bob"})
    assert taken.status_code == 303
    assert taken.headers["Location"] == "/admin/mfa/tokens?notice=unassigned"
    assert factors.list_factors("bob") == [] and OathToken.get("TOTP-1").assigned_to is None
    # Losing a factor ends the user's sessions (S15).
    assert not is_signed_in(sso, bob)
    [event] = events("mfa.token.unassigned")
    assert (event.actor, event.subject) == ("root", "bob")
    assert event.details.as_dict() == {"serial": "TOTP-1", "factors_removed": "1"}


def test_attack_a_crafted_form_cannot_take_another_users_token(sso: Sso, admin: requests.Session) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    accounts.create_user(accounts.NewUser("carol", password=PASSWORD))
    submit(sso, admin, "/admin/mfa/tokens/import", {"csv": TOKEN_CSV})
    submit(sso, admin, "/admin/mfa/tokens/assign", {"serial": "TOTP-1", "username": "carol"})
    before, carols = tokens_state(), factors.list_factors("carol")
    # Bob's "take back" form, its serial changed to Carol's token.
    crafted = submit(sso, admin, "/admin/mfa/tokens/unassign", {"serial": "TOTP-1", "username": "bob"})
    assert crafted.status_code == 400
    assert "Token TOTP-1 is not assigned to bob." in html.unescape(crafted.text)
    assert tokens_state() == before
    assert [f.factor_id for f in factors.list_factors("carol")] == [f.factor_id for f in carols]
    assert events("mfa.token.unassigned") == []


def test_a_bad_token_file_is_refused_with_its_lines_and_imports_nothing(
    sso: Sso, admin: requests.Session
) -> None:
    refused = submit(
        sso, admin, "/admin/mfa/tokens/import", {"csv": TOKEN_CSV + "BAD-1,not*base32,totp,6,30\n"}
    )
    assert refused.status_code == 400
    assert "Nothing was imported: line 4: token BAD-1: the secret is not valid base32." in html.unescape(
        refused.text
    )
    assert tokens_state() == []


def test_attack_token_pages_refuse_non_admins_and_forms_without_the_csrf_token(
    sso: Sso, admin: requests.Session
) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    submit(sso, admin, "/admin/mfa/tokens/import", {"csv": TOKEN_CSV})
    before = tokens_state()
    bob = signed_in(sso, "bob")
    token = csrf_token(sso.get(bob, "/me").text)
    assert sso.get(bob, "/admin/mfa/tokens").status_code == 403
    for path, data in (
        ("/admin/mfa/tokens/import", {"csv": TOKEN_CSV.replace("-1", "-2")}),
        ("/admin/mfa/tokens/assign", {"serial": "TOTP-1", "username": "bob"}),
        ("/admin/mfa/tokens/unassign", {"serial": "TOTP-1", "username": "bob"}),
    ):
        assert sso.post(bob, path, {"csrf_token": token, **data}).status_code == 403, path
        assert sso.post(admin, path, data).status_code == 403, path
        assert sso.post(admin, path, {**data, "csrf_token": "forged"}).status_code == 403, path
    assert tokens_state() == before and factors.list_factors("bob") == []


# ---------------------------------------------------------------- who may edit


def test_attack_a_non_admin_cannot_change_a_user_or_sign_them_out(sso: Sso, root: User) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    accounts.create_user(accounts.NewUser("carol", password=PASSWORD, email="carol@example.com"))
    carol = signed_in(sso, "carol")
    bob = signed_in(sso, "bob")
    token = csrf_token(sso.get(bob, "/me").text)
    before = user_state("carol")
    details = {"csrf_token": token, "email": "bob@evil.example", "seen_at": str(User.get("carol").updated_at)}
    assert sso.post(bob, "/admin/users/carol/details", details).status_code == 403
    assert sso.post(bob, "/admin/users/carol/sign-out", {"csrf_token": token}).status_code == 403
    assert user_state("carol") == before and is_signed_in(sso, carol)
    assert events("user.updated") == [] and events("user.signed_out_everywhere") == []


def test_attack_an_admin_session_without_a_fresh_second_factor_must_prove_one_again(
    sso: Sso, admin: requests.Session, sandbox: App
) -> None:
    """The edit pages ask for the admin's strongest factor proven in the last 15 minutes, as the
    rest of the console does: a session left open (or stolen) an hour ago cannot edit."""
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email="bob@example.com"))
    form = details_form(sso, admin, "bob", email="mallory@evil.example")
    token = csrf_token(sso.get(admin, "/admin").text)
    sso.clock.advance(16 * 60)
    before_user, before_app = user_state("bob"), app_state("sandbox")
    page = sso.get(admin, "/admin/apps/sandbox/edit")
    assert page.status_code == 303 and page.headers["Location"].startswith("/mfa?")
    for path, data in (
        ("/admin/users/bob/details", form),
        ("/admin/users/bob/sign-out", {}),
        ("/admin/apps/sandbox/edit", {"account_id": ACCOUNT, "role_1": "Admin", "group_1": "ops"}),
        ("/admin/mfa/tokens/import", {"csv": TOKEN_CSV}),
    ):
        refused = sso.post(admin, path, {**data, "csrf_token": token})
        assert refused.status_code == 303 and refused.headers["Location"].startswith("/mfa?"), path
    assert user_state("bob") == before_user and app_state("sandbox") == before_app
    assert tokens_state() == []


def test_the_sms_set_up_offers_the_contact_number_an_admin_keeps(sso: Sso, root: User) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    accounts.update_user("bob", accounts.UserChanges(phone="+44 7400 123456"))
    bob = signed_in(sso, "bob")
    page = sso.get(bob, "/me/mfa/sms/new")
    assert page.status_code == 200, page.text[:300]
    assert 'value="+447400123456"' in page.text
