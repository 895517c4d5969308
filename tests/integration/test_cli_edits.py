"""The `idp` CLI's everyday edits (issue 15 point 3): `idp app update`, `idp user update`, user
search and paging, `idp user sign-out` and `idp token unassign`, against an embedded AWS through
the state file of `idp --local`. Bad input prints one sentence, exits 2 and writes nothing."""

from __future__ import annotations

import base64
from typing import Any

import boto3
import pytest

from idp_core import accounts, apps, sessions
from idp_core.mfa import factors, tokens
from idp_core.models import App, AuditEvent, OathToken, Session, User
from idp_local.state import LocalState
from tests.helpers.audit import APP_STATUS_EVENTS, audit_trail
from tests.helpers.cli import idp, listing, ok
from tests.helpers.scope import scope_at

ACCOUNT = "123456789012"
PASSWORD = "correct horse battery staple"


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one-line error of a command that must fail with exit status 2."""
    code, out, err = idp(capsys, *args)
    assert (code, out) == (2, ""), err
    assert err.startswith("idp: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def event_details(event_type: str) -> list[dict[str, Any]]:
    return [e.details.as_dict() if e.details else {} for e in AuditEvent.scan() if e.type == event_type]


@pytest.fixture
def sandbox(bound: LocalState) -> str:
    accounts.create_group("ops")
    accounts.create_group("auditors")
    apps.create_aws_app("sandbox", apps.AwsAppChoices(account_id=ACCOUNT, roles=[("Dev", "ops")]))
    return "sandbox"


# ---------------------------------------------------------------- apps


def test_app_update_changes_only_the_options_given(capsys: pytest.CaptureFixture[str], sandbox: str) -> None:
    out = ok(
        capsys,
        "app",
        "update",
        sandbox,
        "--role",
        "Dev=ops",
        "--role",
        "ReadOnly=auditors",
        "--session-duration",
        "7200",
        "--display-name",
        "Sandbox",
    )
    assert out == "Updated app sandbox: display_name, roles, session_duration.\n"
    [app] = listing(capsys, "app", "list")
    assert [(r["role"], r["group"]) for r in app["roles"]] == [("Dev", "ops"), ("ReadOnly", "auditors")]
    assert (app["session_duration"], app["display_name"]) == (7200, "Sandbox")
    assert app["relay_state"] == apps.AWS_CONSOLE_URL and app["account_id"] == ACCOUNT

    assert ok(capsys, "app", "update", sandbox, "--disable") == "Updated app sandbox: disabled.\n"
    assert App.get(sandbox).disabled
    assert ok(capsys, "app", "update", sandbox, "--enable") == "Updated app sandbox: disabled.\n"
    assert not App.get(sandbox).disabled
    assert "nothing changed" in ok(capsys, "app", "update", sandbox, "--session-duration", "7200")
    changes = event_details("app.updated")
    assert [change["changed"] for change in changes] == ["display_name,roles,session_duration"]
    # A change of status is an event of its own, as when the console's buttons make it.
    assert [event.type for event in audit_trail(APP_STATUS_EVENTS)] == ["app.disabled", "app.enabled"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "arn:aws:iam::999999999999:role/Dev=ops"], "is not in the app's account"),
        (["--account-id", "210987654321"], None),
        (["--role", "Dev=ghosts"], "no group 'ghosts'"),
        (["--session-duration", "43201"], "must be between 900 and 43200"),
        (["--relay-state", "javascript:alert(1)"], "must be an https URL"),
        (["--role", "Dev"], "ROLE_NAME=GROUP"),
        (["--enable", "--disable"], "not allowed with argument"),
    ],
)
def test_attack_app_update_refuses_what_creation_refuses_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], sandbox: str, args: list[str], message: str | None
) -> None:
    apps.update_aws_app(sandbox, apps.AwsAppChoices(roles=[("arn:aws:iam::123456789012:role/Dev", "ops")]))
    before = App.get(sandbox).serialize()
    events_before = event_details("app.updated")
    err = refused(capsys, "app", "update", sandbox, *args)
    # A new account id must suit the role ARNs the app keeps, as at creation.
    assert (message or "is not in the app's account") in err
    assert App.get(sandbox).serialize() == before
    assert event_details("app.updated") == events_before


def test_app_update_of_an_unknown_app_says_so(capsys: pytest.CaptureFixture[str], bound: LocalState) -> None:
    assert "There is no app 'ghost'" in refused(capsys, "app", "update", "ghost", "--disable")


# ---------------------------------------------------------------- users


def test_user_update_changes_details_groups_admin_and_status(
    capsys: pytest.CaptureFixture[str], bound: LocalState
) -> None:
    accounts.create_group("ops")
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email="bob@example.com"))
    out = ok(
        capsys,
        "user",
        "update",
        "bob",
        "--display-name",
        "Bob Jones",
        "--phone",
        "+1 202 555 0143",
        "--group",
        "ops",
        "--admin",
    )
    assert out.startswith("Updated user bob.\n")
    shown = listing(capsys, "user", "show", "bob")
    assert (shown["display_name"], shown["phone"], shown["groups"], shown["admin"]) == (
        "Bob Jones",
        "+12025550143",
        ["ops"],
        True,
    )
    ok(capsys, "user", "update", "bob", "--no-groups", "--no-admin", "--disable", "--email", "")
    shown = listing(capsys, "user", "show", "bob")
    assert (shown["groups"], shown["admin"], shown["disabled"], shown["email"]) == ([], False, True, None)
    ok(capsys, "user", "update", "bob", "--enable")
    assert listing(capsys, "user", "show", "bob")["disabled"] is False
    changes = sorted(details["changed"] for details in event_details("user.updated"))
    assert changes == ["email", "phone,display_name"]
    # A change of what the user may reach is its own event, as when the console makes it.
    assert event_details("user.admin_changed") == [{"admin": "True"}, {"admin": "False"}]
    assert event_details("user.groups_changed") == [{"groups": "ops"}, {"groups": ""}]
    assert event_details("user.disabled") == [{"sessions_ended": "0"}]
    assert event_details("user.enabled") == [{}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "bob at example"], "is not a valid e-mail address"),
        (["--phone", "555"], "is not a valid phone number"),
        (["--group", "ghosts"], "no group 'ghosts'"),
        (["--admin", "--no-admin"], "not allowed with argument"),
        (["--group", "ops", "--no-groups"], "not allowed with argument"),
    ],
)
def test_user_update_refuses_bad_input_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], bound: LocalState, args: list[str], message: str
) -> None:
    accounts.create_group("ops")
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email="bob@example.com"))
    before = User.get("bob").serialize()
    assert message in refused(capsys, "user", "update", "bob", *args)
    assert User.get("bob").serialize() == before
    assert event_details("user.updated") == []


def test_user_update_of_a_directory_users_email_says_the_directory_owns_it(
    capsys: pytest.CaptureFixture[str], bound: LocalState
) -> None:
    accounts.create_user(accounts.NewUser("dora", email="dora@corp.example", source="ldap:corp"))
    err = refused(capsys, "user", "update", "dora", "--email", "x@evil.example", "--display-name", "X")
    assert "The e-mail address and display name of 'dora' come from the user store ldap:corp" in err
    assert User.get("dora").email == "dora@corp.example"


def test_attack_an_email_change_by_the_cli_tells_the_old_address(
    capsys: pytest.CaptureFixture[str], bound: LocalState
) -> None:
    """The CLI sends the same notice as the console: the old address hears of the change, or
    the audit trail says why it could not (here: the local state names no e-mail sender)."""
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email="bob@example.com"))
    ok(capsys, "user", "update", "bob", "--email", "mallory@evil.example")
    [notice] = [e for e in AuditEvent.scan() if e.type == "notice.sent"]
    assert notice.subject == "bob"
    assert notice.details.as_dict()["to"] == "b***@example.com, m***@evil.example"
    [change] = event_details("user.updated")
    assert change["notice"] == ("sent" if notice.outcome == "success" else "not sent")


def test_user_sign_out_ends_every_session(capsys: pytest.CaptureFixture[str], bound: LocalState) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    for _ in range(2):
        sessions.start_session(sessions.NewSession("bob", factors={"password"}), scope_at())
    out = ok(capsys, "user", "sign-out", "bob")
    assert out == "Signed bob out everywhere: 2 session(s) ended.\n"
    assert list(Session.by_user.query("bob")) == []
    assert event_details("user.signed_out_everywhere") == [{"sessions_ended": "2"}]
    assert "There is no user 'ghost'" in refused(capsys, "user", "sign-out", "ghost")


# ---------------------------------------------------------------- hardware tokens


def test_token_unassign_takes_a_token_back_from_its_user(
    capsys: pytest.CaptureFixture[str], with_data_key: LocalState
) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    accounts.create_user(accounts.NewUser("carol", password=PASSWORD))
    kms = boto3.client("kms")
    secret = base64.b32encode(b"B" * 20).decode()
    tokens.import_csv(f"TOTP-1,{secret},totp,6,30\n", kms=kms, key_id=with_data_key.data_key_id)
    tokens.assign("TOTP-1", "bob", kms=kms, key_id=with_data_key.data_key_id)

    # Carol does not hold it: refused, and Bob keeps it.
    assert "Token TOTP-1 is not assigned to carol." in refused(capsys, "token", "unassign", "TOTP-1", "carol")
    assert OathToken.get("TOTP-1").assigned_to == "bob"
    assert "There is no token NOPE-1" in refused(capsys, "token", "unassign", "NOPE-1", "bob")

    out = ok(capsys, "token", "unassign", "TOTP-1", "Bob")
    assert out == "Took token TOTP-1 back from bob; it is free to assign again.\n"
    assert OathToken.get("TOTP-1").assigned_to is None
    assert factors.list_factors("bob") == []
    [listed] = listing(capsys, "token", "list")
    assert listed["assigned_to"] is None
