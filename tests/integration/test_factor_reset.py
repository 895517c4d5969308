"""An admin resets the second factors of a user who lost them (issue 15 point 2): the console's
"Reset second factors" and ``idp user reset-mfa``. Every factor and backup code goes through
its method's removal hook, hardware tokens are freed, sessions and device trust end, the next
sign-in must enrol, the user is told and the reset is audited. The console asks the admin's
own fresh strongest factor first (S10, S28)."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import requests

from idp_core import account_deletion, accounts
from idp_core.adaptive import devices
from idp_core.audit import AuditContext
from idp_core.clock import FakeClock
from idp_core.errors import BadRequest, NotFound
from idp_core.mail import Mailer
from idp_core.mfa import backup_codes, factors, tokens
from idp_core.mfa import methods as registry
from idp_core.mfa.methods import CodeCheck, Tier
from idp_core.models import AuditEvent, Factor, OathToken, Session, User
from tests.helpers.adaptive import trusted_device
from tests.helpers.cli import idp, ok
from tests.helpers.mfa import emails_to, give_totp, location_path, make_factor, prove_second_factor
from tests.helpers.sso import PASSWORD, Sso, csrf_token, is_signed_in, signed_in

pytestmark = pytest.mark.sso_setup("password_only")

ALICE_EMAIL = "alice@example.com"
TOKEN_CSV = f"TK0001,{base64.b32encode(b'T' * 20).decode()},totp,6,30\n"


@dataclass
class KeyMethod:
    """A method the reset does not know by name (one added later, say smart cards): the reset
    must free what it holds through the registry's hook."""

    kind = "smart-card"
    label = "Smart card"
    tier = Tier.AUTHENTICATOR
    enrolment = None
    channel = None
    prompt = "Insert your smart card."
    inputmode = "text"
    freed: list[str] = field(default_factory=list)

    def clean_code(self, code: str) -> str:
        return code

    def is_usable(self, factor: Factor) -> bool:
        return True

    def verify(self, factor: Factor, code: str, check: CodeCheck) -> None:
        raise AssertionError("no smart card is checked in these tests")

    def removed(self, factor: Factor) -> bool:
        self.freed.append(factor.factor_id)
        return False


@pytest.fixture
def key_method() -> Iterator[KeyMethod]:
    method = KeyMethod()
    registry.register(method)  # type: ignore[arg-type]  # A kind MethodKind may not have yet.
    yield method
    registry.unregister(method.kind)


def alice_with_everything(sso: Sso, clock: FakeClock) -> dict[str, Any]:
    """alice with an authenticator app, backup codes, a hardware token, a smart card, a
    session and a trusted device."""
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD, email=ALICE_EMAIL), clock=clock)
    secret = give_totp(sso, "alice")
    codes = backup_codes.generate("alice", clock=clock)
    kms, key_id = boto3.client("kms"), sso.settings.require_data_key()
    tokens.import_csv(TOKEN_CSV, kms=kms, key_id=key_id, clock=clock)
    tokens.assign("TK0001", "alice", kms=kms, key_id=key_id, clock=clock)
    key = make_factor("alice", "smart-card", clock)
    device = trusted_device("alice", clock)
    browser = signed_in(sso, "alice")
    return {"secret": secret, "codes": codes, "key": key, "device": device, "browser": browser}


def events(event_type: str) -> list[AuditEvent]:
    return [event for event in AuditEvent.scan() if event.type == event_type]


def test_attack_a_reset_leaves_nothing_that_signs_in_as_the_user(
    sso: Sso, clock: FakeClock, key_method: KeyMethod
) -> None:
    # Given alice, whose phone, backup codes, token and key were stolen with a signed-in laptop,
    alice = alice_with_everything(sso, clock)
    assert devices.is_trusted(alice["device"], User.get("alice"), clock.now())
    # when an admin resets her second factors,
    reset = account_deletion.reset_second_factors("alice", context=AuditContext(actor="root"), clock=clock)
    # then none of them is left, the token is free, the key went through its method's hook,
    assert list(Factor.query("alice")) == []
    assert OathToken.get("TK0001").assigned_to is None
    assert key_method.freed == [alice["key"].factor_id]
    # and the session and the device's trust are over.
    assert not is_signed_in(sso, alice["browser"])
    assert list(Session.by_user.query("alice")) == []
    assert not devices.is_trusted(alice["device"], User.get("alice"), clock.now())
    assert reset.removed == {"sessions": 1, "transactions": 0, "factors": 4, "tokens_freed": 1}


def test_the_next_sign_in_must_set_up_a_factor_whatever_the_settings_say(sso: Sso, clock: FakeClock) -> None:
    # The module's settings let users without a factor in (enrol_at_sign_in off).
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    give_totp(sso, "alice")
    account_deletion.reset_second_factors("alice", clock=clock)
    browser = sso.browser()
    answer = sso.sign_in(browser, "alice")
    assert answer.status_code == 303 and location_path(answer) == "/me/mfa"
    # The half-way session reaches nothing else (S11, S14).
    assert location_path(sso.get(browser, "/me")) == "/me/mfa"
    # A user nobody reset is let in by the same settings.
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD), clock=clock)
    assert location_path(sso.sign_in(sso.browser(), "bob")) == "/me"


@pytest.mark.parametrize("first_factor", ["totp", "backup"])
def test_the_first_new_factor_answers_the_reset(sso: Sso, clock: FakeClock, first_factor: str) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    give_totp(sso, "alice")
    account_deletion.reset_second_factors("alice", clock=clock)
    if first_factor == "totp":
        give_totp(sso, "alice")
    else:
        backup_codes.generate("alice", clock=clock)
    assert User.get("alice").must_enrol is None
    # Removing it later is under the MFA settings again, like for anyone.
    [factor] = Factor.query("alice")
    factors.remove_factor("alice", factor.factor_id, clock=clock)
    assert location_path(sso.sign_in(sso.browser(), "alice")) == "/me"


def test_the_user_is_told_and_the_reset_is_audited(sso: Sso, clock: FakeClock) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD, email=ALICE_EMAIL), clock=clock)
    give_totp(sso, "alice")
    before = len(emails_to(ALICE_EMAIL))  # moto's SES keeps the mails of earlier tests
    account_deletion.reset_second_factors(
        "alice", context=AuditContext(actor="root"), clock=clock, mailer=Mailer.for_settings(sso.settings)
    )
    [mail] = emails_to(ALICE_EMAIL)[before:]
    assert mail.subject == "Your second factors were reset"
    assert "signed out everywhere" in mail.body
    [event] = events("user.mfa_reset")
    assert (event.outcome, event.actor, event.subject) == ("success", "root", "alice")
    assert event.details is not None
    assert (event.details["factors"], event.details["notified"]) == ("1", "True")


def test_a_reset_that_stops_half_way_leaves_the_user_no_weaker_and_a_retry_finishes(
    sso: Sso, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    give_totp(sso, "alice")
    browser = signed_in(sso, "alice")

    def fails(key: str) -> dict[str, int]:
        raise RuntimeError("DynamoDB went away")

    # Given a reset that fails when it comes to the factors,
    with monkeypatch.context() as patch:
        patch.setattr(account_deletion, "_remove_factors", fails)
        with pytest.raises(RuntimeError):
            account_deletion.reset_second_factors("alice", clock=clock)
    # then the sessions are over, the factor still guards the account (the password alone
    # does not open it, not even to enrol a factor of the thief's),
    assert not is_signed_in(sso, browser)
    assert [factor.kind for factor in Factor.query("alice")] == ["totp"]
    assert location_path(sso.sign_in(sso.browser(), "alice")) == "/me"
    assert events("user.mfa_reset") == []
    # and the reset again finishes the job.
    account_deletion.reset_second_factors("alice", clock=clock)
    assert list(Factor.query("alice")) == []
    assert len(events("user.mfa_reset")) == 1


def test_an_admin_cannot_reset_their_own_factors_and_an_unknown_user_is_named(
    sso: Sso, clock: FakeClock
) -> None:
    accounts.create_user(accounts.NewUser("root", password=PASSWORD, is_admin=True), clock=clock)
    give_totp(sso, "root")
    with pytest.raises(BadRequest, match="own account"):
        account_deletion.reset_second_factors("root", context=AuditContext(actor="root"), clock=clock)
    assert len(list(Factor.query("root"))) == 1
    with pytest.raises(NotFound, match="nobody"):
        account_deletion.reset_second_factors("nobody", clock=clock)


# ---------------------------------------------------------------- the console


def _reset_in_console(sso: Sso, admin: requests.Session, confirm: bool = True) -> requests.Response:
    page = sso.get(admin, "/admin/users/alice")
    assert page.status_code == 200, page.text[:300]
    assert "Reset second factors" in page.text
    form = {"csrf_token": csrf_token(page.text), **({"confirm": "yes"} if confirm else {})}
    return sso.post(admin, "/admin/users/alice/reset-mfa", form)


@pytest.mark.usefixtures("root")
def test_the_console_resets_a_users_factors(sso: Sso, clock: FakeClock, admin: requests.Session) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD, email=ALICE_EMAIL), clock=clock)
    give_totp(sso, "alice")
    before = len(emails_to(ALICE_EMAIL))
    answer = _reset_in_console(sso, admin)
    assert answer.status_code == 303, answer.text[:300]
    notice = sso.get(admin, location_path(answer) + "?notice=mfa-reset")
    assert "second factors were removed" in notice.text
    assert list(Factor.query("alice")) == []
    assert len(emails_to(ALICE_EMAIL)) == before + 1
    [event] = events("user.mfa_reset")
    assert event.actor == "root"


@pytest.mark.usefixtures("root")
def test_the_console_asks_to_confirm_and_removes_nothing_without(
    sso: Sso, clock: FakeClock, admin: requests.Session
) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    give_totp(sso, "alice")
    answer = _reset_in_console(sso, admin, confirm=False)
    assert answer.status_code == 400 and "Tick the box" in answer.text
    assert len(list(Factor.query("alice"))) == 1


def test_attack_an_admin_without_a_fresh_strongest_factor_cannot_reset(
    sso: Sso, clock: FakeClock, root: User
) -> None:
    # Given an admin whose authenticator code is 11 minutes old (the console itself still opens),
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    give_totp(sso, "alice")
    secret = give_totp(sso, "root")
    admin = signed_in(sso, "root")
    prove_second_factor(sso, admin, secret)
    clock.advance(11 * 60)
    # when someone at their desk resets alice's factors,
    answer = _reset_in_console(sso, admin)
    # then the admin is sent to prove their factor again, and nothing was removed.
    assert answer.status_code == 303 and location_path(answer) == "/mfa"
    assert len(list(Factor.query("alice"))) == 1
    assert events("user.mfa_reset") == []
    # Once proven afresh, the same reset goes through.
    prove_second_factor(sso, admin, secret, next_page="/admin/users/alice")
    assert _reset_in_console(sso, admin).status_code == 303
    assert list(Factor.query("alice")) == []


# ---------------------------------------------------------------- the CLI


@pytest.mark.usefixtures("with_data_key")
def test_idp_user_reset_mfa(capsys: pytest.CaptureFixture[str]) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD))
    backup_codes.generate("alice")
    out = ok(capsys, "user", "reset-mfa", "alice")
    assert out.startswith("Reset the second factors of alice (")
    assert "1 sign-in method(s) removed" in out and "next sign-in" in out
    assert list(Factor.query("alice")) == []
    assert User.get("alice").must_enrol is True
    code, _, err = idp(capsys, "user", "reset-mfa", "nobody")
    assert code == 2 and err == "idp: There is no user 'nobody'.\n"


# ---------------------------------------------------------------- the challenge page


def test_the_challenge_shows_a_user_who_lost_their_device_the_way_back_in(sso: Sso, clock: FakeClock) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    give_totp(sso, "alice")
    browser = signed_in(sso, "alice")
    # Without backup codes, only an administrator can help.
    page = html.unescape(sso.get(browser, "/mfa").text)
    assert "Lost your device?\nAsk an administrator to reset your second factors." in page
    # With them, the page links to them.
    backup_codes.generate("alice", clock=clock)
    backup = next(f for f in Factor.query("alice") if f.kind == "backup")
    page = html.unescape(sso.get(browser, "/mfa").text)
    link = f'href="/mfa?factor={backup.factor_id}">Use one of your backup codes</a>'
    assert link + ": they are your way back in." in page
    assert "Ask an administrator" not in page
    chosen = html.unescape(sso.get(browser, f"/mfa?factor={backup.factor_id}").text)
    assert "Your backup codes are your way back in: type one of them." in chosen
