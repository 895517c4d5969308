"""The edits admins do every day, in the console (issue 15 point 3): an app's settings, a
user's details, sign-out everywhere and hardware tokens. Each edit goes through the same
validation as creation, is audited with what changed, and refuses non-admins, forms without
the session's CSRF token and input that creation would refuse, writing nothing."""

from __future__ import annotations

import html
from typing import Any

import pytest
import requests

from idp_core import accounts, apps
from idp_core.models import App, AuditEvent, User
from tests.helpers.console import submit
from tests.helpers.sso import PASSWORD, Sso, csrf_token, signed_in

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
    return apps.create_aws_app("sandbox", account_id=ACCOUNT, roles=[("Dev", "ops")], mfa_required=False)


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
    accounts.create_user("bob", password=PASSWORD)
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
    accounts.create_user("bob", password=PASSWORD, groups=["ops"])
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
    assert sorted(e.details.as_dict()["disabled"] for e in events("app.updated")) == [
        "False -> True",
        "True -> False",
    ]
