"""Security notices (S8): the user is told by e-mail when a factor, phone or e-mail changes."""

from __future__ import annotations

import secrets
from typing import Any

import boto3
import pytest

from idp_core.audit import recent
from idp_core.clock import FakeClock
from idp_core.config import MessagingConfig, Tables
from idp_core.mail import change_text, mask_email, notify
from idp_core.models import User
from tests.helpers.mfa import emails_to

SENDER = "security@idp.example.com"
MESSAGING = MessagingConfig(email_sender=SENDER)


@pytest.fixture
def ses(tables: Tables) -> Any:
    client = boto3.client("ses", region_name="us-east-1")
    client.verify_email_identity(EmailAddress=SENDER)
    return client


def make_user(clock: FakeClock, email: str | None) -> User:
    user = User(
        username="alice",
        display_username="Alice",
        email=email,
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    user.save()
    return user


def test_a_factor_change_is_e_mailed_from_the_configured_sender(ses: Any, clock: FakeClock) -> None:
    address = f"alice-{secrets.token_hex(4)}@example.com"
    user = make_user(clock, address)
    text = change_text("A text message (SMS) method was added to your account")
    assert notify(user, "A sign-in method was added", text, ses=ses, messaging=MESSAGING, clock=clock)

    [message] = emails_to(address)
    assert message.source == SENDER
    assert message.subject == "A sign-in method was added"
    assert message.body.startswith("A text message (SMS) method was added to your account.")
    assert "If you did not make this change, contact your administrator" in message.body
    [event] = [e for e in recent(clock=clock) if e.type == "notice.sent"]
    assert event.outcome == "success" and event.subject == "alice"
    assert event.details is not None and event.details["to"] == mask_email(address)


def test_an_address_change_can_notify_the_old_and_the_new_address(ses: Any, clock: FakeClock) -> None:
    old, new = (f"{name}-{secrets.token_hex(4)}@example.com" for name in ("old", "new"))
    user = make_user(clock, new)
    notify(
        user,
        "Your e-mail address changed",
        change_text("Your e-mail address changed"),
        ses=ses,
        messaging=MESSAGING,
        clock=clock,
        to=[old, new],
    )
    assert len(emails_to(old)) == 1 and len(emails_to(new)) == 1


def test_a_user_without_an_address_gets_no_notice_and_no_error(ses: Any, clock: FakeClock) -> None:
    user = make_user(clock, None)
    assert notify(user, "Changed", "text", ses=ses, messaging=MESSAGING, clock=clock) is False
    assert [e for e in recent(clock=clock) if e.type == "notice.sent"] == []


def test_without_a_configured_sender_the_change_stands_and_the_audit_says_why(
    ses: Any, clock: FakeClock
) -> None:
    address = f"alice-{secrets.token_hex(4)}@example.com"
    user = make_user(clock, address)
    assert notify(user, "Changed", "text", ses=ses, messaging=MessagingConfig(), clock=clock) is False
    assert emails_to(address) == []
    [event] = [e for e in recent(clock=clock) if e.type == "notice.sent"]
    assert event.outcome == "skipped"


def test_a_refusal_by_ses_is_audited_and_not_raised(tables: Tables, clock: FakeClock) -> None:
    address = f"alice-{secrets.token_hex(4)}@example.com"
    user = make_user(clock, address)
    unverified = MessagingConfig(email_sender=f"unverified-{secrets.token_hex(4)}@elsewhere.example")
    ses = boto3.client("ses", region_name="us-east-1")
    assert notify(user, "Changed", "text", ses=ses, messaging=unverified, clock=clock) is False
    [event] = [e for e in recent(clock=clock) if e.type == "notice.sent"]
    assert event.outcome == "failure"
    assert event.details is not None and event.details["error"] == "MessageRejected"
