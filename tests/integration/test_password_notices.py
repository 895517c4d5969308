"""A password change (the user's own at /me/password, or an admin's reset) e-mails the user a
notice once the change is written (S8, S25; issue 11 point 4). The notice holds no password,
code or link; a notice that cannot be sent is audited and never undoes the change."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from botocore.exceptions import ClientError

from idp_core import accounts, password_change
from idp_core.audit import AuditContext
from idp_core.clock import FakeClock
from idp_core.config import MessagingConfig
from idp_core.mail import Mailer
from idp_core.models import AuditEvent, Session, User
from idp_core.scope import RequestScope
from tests.helpers.mfa import emails_to
from tests.helpers.sso import EMAIL_SENDER, PASSWORD, Sso, csrf_token, signed_in

NEW_PASSWORD = "a brand new passphrase 42"


pytestmark = pytest.mark.sso_setup("password_only")


def new_address() -> str:
    # moto's SES keeps every message of the process: each test has its own recipient.
    return f"user-{secrets.token_hex(4)}@example.com"


def change_own_password(sso: Sso, username: str) -> None:
    browser = signed_in(sso, username)
    page = sso.get(browser, "/me/password")
    form = {
        "csrf_token": csrf_token(page.text),
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "repeat_password": NEW_PASSWORD,
    }
    changed = sso.post(browser, "/me/password", form)
    assert changed.status_code == 303, changed.text[:500]


def notices(event_outcome: str) -> list[AuditEvent]:
    return [e for e in AuditEvent.scan() if e.type == "notice.sent" and e.outcome == event_outcome]


def assert_holds_no_secret(body: str) -> None:
    for secret in (PASSWORD, NEW_PASSWORD, "http://", "https://"):
        assert secret not in body


def test_attack_a_password_changed_with_a_stolen_session_goes_unnoticed(sso: Sso, clock: FakeClock) -> None:
    # Whoever holds alice's session changes her password; alice must hear of it at once.
    address = new_address()
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD, email=address), clock=clock)
    change_own_password(sso, "alice")
    [message] = emails_to(address)
    assert message.source == EMAIL_SENDER
    assert message.subject == "Your password was changed"
    assert message.body.startswith("The password of your account alice was changed at ")
    assert "from the address 127.0.0.1" in message.body
    assert "If you did not make this change, contact your administrator at once" in message.body
    assert_holds_no_secret(message.body)
    [event] = notices("success")
    assert event.subject == "alice"


def test_an_admin_reset_e_mails_the_user(sso: Sso, clock: FakeClock) -> None:
    address = new_address()
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email=address), clock=clock)
    accounts.reset_password(
        "bob",
        NEW_PASSWORD,
        context=AuditContext(actor="root"),
        clock=clock,
        mailer=Mailer.for_settings(sso.settings),
    )
    [message] = emails_to(address)
    assert message.subject == "Your password was reset"
    assert message.body.startswith("An administrator reset the password of your account bob at ")
    assert "You were signed out everywhere" in message.body
    assert_holds_no_secret(message.body)


def test_the_console_reset_e_mails_the_user(sso: Sso, clock: FakeClock) -> None:
    from tests.helpers.mfa import give_totp, prove_second_factor

    address = new_address()
    accounts.create_user(accounts.NewUser("root", password=PASSWORD, is_admin=True), clock=clock)
    accounts.create_user(accounts.NewUser("carol", password=PASSWORD, email=address), clock=clock)
    secret = give_totp(sso, "root")
    admin = signed_in(sso, "root")
    prove_second_factor(sso, admin, secret)
    page = sso.get(admin, "/admin/users/carol")
    form = {"csrf_token": csrf_token(page.text), "password": NEW_PASSWORD}
    assert sso.post(admin, "/admin/users/carol/password", form).status_code == 303
    assert [message.subject for message in emails_to(address)] == ["Your password was reset"]


def test_a_user_without_an_address_changes_the_password_without_a_notice(sso: Sso, clock: FakeClock) -> None:
    accounts.create_user(accounts.NewUser("dave", password=PASSWORD), clock=clock)
    change_own_password(sso, "dave")
    assert sso.sign_in(sso.browser(), "dave", NEW_PASSWORD).status_code == 303
    assert notices("success") == [] and notices("failure") == []


class RefusingSes:
    def send_email(self, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "MessageRejected", "Message": "no"}}, "SendEmail")


def test_a_notice_ses_refuses_is_audited_and_the_change_stands(sso: Sso, clock: FakeClock) -> None:
    accounts.create_user(accounts.NewUser("erin", password=PASSWORD, email=new_address()), clock=clock)
    erin = User.get("erin")
    session = Session("current", username="erin")
    refusing = Mailer(ses=RefusingSes, messaging=MessagingConfig(email_sender=EMAIL_SENDER))
    password_change.change_password(
        erin,
        session,
        RequestScope(sso.settings, clock=clock),
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        repeated_password=NEW_PASSWORD,
        mailer=refusing,
    )
    [failed] = notices("failure")
    assert failed.details is not None and failed.details["error"] == "ClientError"
    assert sso.sign_in(sso.browser(), "erin", NEW_PASSWORD).status_code == 303
    [changed] = [e for e in AuditEvent.scan() if e.type == "password.changed"]
    assert changed.outcome == "success"

    accounts.reset_password("erin", PASSWORD, clock=clock, mailer=refusing)
    assert len(notices("failure")) == 2
    assert sso.sign_in(sso.browser(), "erin", PASSWORD).status_code == 303
