"""An admin resets a user's password (the console's form, ``idp user set-password``): like a
change by the user, it ends every session of the user and the trust of their devices, and
is audited (S15, S25; issue 11 point 4)."""

from __future__ import annotations

import pytest

from idp_core import accounts
from idp_core.adaptive import devices
from idp_core.audit import AuditContext
from idp_core.clock import FakeClock
from idp_core.errors import BadRequest
from idp_core.models import AuditEvent, User
from tests.helpers.adaptive import trusted_device
from tests.helpers.mfa import give_totp, prove_second_factor
from tests.helpers.sso import PASSWORD, Sso, csrf_token, is_signed_in, signed_in

NEW_PASSWORD = "a brand new passphrase 42"


pytestmark = pytest.mark.sso_setup("password_only")


def events(event_type: str) -> list[AuditEvent]:
    return [event for event in AuditEvent.scan() if event.type == event_type]


def test_attack_a_stolen_session_survives_an_admin_password_reset(sso: Sso, clock: FakeClock) -> None:
    # Given an attacker who signed in with alice's stolen password, and a device they trusted,
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    attacker = signed_in(sso, "alice")
    device = trusted_device("alice", clock)
    assert devices.is_trusted(device, User.get("alice"), clock.now())
    # when alice calls the helpdesk and an admin resets her password,
    accounts.reset_password("alice", NEW_PASSWORD, context=AuditContext(actor="root"), clock=clock)
    # then the attacker's session is over and the device is no longer trusted.
    assert not is_signed_in(sso, attacker)
    assert not devices.is_trusted(device, User.get("alice"), clock.now())
    assert sso.sign_in(sso.browser(), "alice", PASSWORD).status_code == 401
    assert sso.sign_in(sso.browser(), "alice", NEW_PASSWORD).status_code == 303


def test_a_reset_is_audited_with_the_admin_and_the_sessions_it_ended(sso: Sso, clock: FakeClock) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    signed_in(sso, "alice")
    signed_in(sso, "alice")
    accounts.reset_password("alice", NEW_PASSWORD, context=AuditContext(actor="root"), clock=clock)
    [event] = events("user.password_reset")
    assert (event.outcome, event.actor, event.subject) == ("success", "root", "alice")
    assert event.details is not None and event.details["sessions_ended"] == "2"


def test_an_unfit_password_is_refused_and_ends_nothing(sso: Sso, clock: FakeClock) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    browser = signed_in(sso, "alice")
    before = User.get("alice").attribute_values
    with pytest.raises(BadRequest):
        accounts.reset_password("alice", "short", clock=clock)
    assert User.get("alice").attribute_values == before and is_signed_in(sso, browser)
    assert events("user.password_reset") == []


def test_the_console_reset_ends_the_sessions_of_the_user(sso: Sso, clock: FakeClock) -> None:
    accounts.create_user(accounts.NewUser("root", password=PASSWORD, is_admin=True), clock=clock)
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    secret = give_totp(sso, "root")
    admin = signed_in(sso, "root")
    prove_second_factor(sso, admin, secret)
    alice = signed_in(sso, "alice")
    page = sso.get(admin, "/admin/users/alice")
    answer = sso.post(
        admin, "/admin/users/alice/password", {"csrf_token": csrf_token(page.text), "password": NEW_PASSWORD}
    )
    assert answer.status_code == 303, answer.text[:500]
    assert not is_signed_in(sso, alice) and is_signed_in(sso, admin)
    assert int(User.get("alice").trust_epoch) == 1
