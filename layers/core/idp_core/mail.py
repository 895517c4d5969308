"""E-mail: how messages leave (``Mailer``, one plain-text e-mail through SES), the security
notices (S8: the user hears of every change to a factor, phone, e-mail or password, and of
adaptive alerts), and the masking of addresses for audit events and pages.

Every function that sends mail (codes, notices, alerts, welcome e-mails) goes through here;
the module knows no second factor, directory or device, so any of them may import it.

A notice is a side effect of a change that has already happened: if it cannot be sent (no
address, no configured sender, SES refuses) the change stands, and the audit trail says
that the notice was not sent. Notices never contain codes, secrets or links.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from idp_core import audit, aws, observability
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock, readable_utc
from idp_core.config import MessagingConfig, WithMessaging
from idp_core.errors import BadRequest
from idp_core.models import User

FOOTER = (
    "\n\nIf you did not make this change, contact your administrator at once: "
    "someone else may be able to sign in as you."
)


@dataclass(frozen=True)
class Mailer:
    """How alerts and notices leave: the SES client (made only when a message is sent)."""

    ses: Callable[[], Any]
    messaging: MessagingConfig

    @classmethod
    def for_settings(cls, settings: WithMessaging) -> Mailer:
        return cls(ses=lambda: aws.client("ses"), messaging=settings.messaging)


def mask_email(address: str) -> str:
    """An e-mail address safe for audit events and pages: ``a***@example.com``."""
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def change_text(what: str) -> str:
    """A notice body, e.g. ``change_text("A text message (SMS) method was added to your account")``."""
    return what.rstrip(".") + "." + FOOTER


def send_text_email(ses: Any, sender: str, recipients: Sequence[str], subject: str, text: str) -> None:
    """One plain-text e-mail through SES from the configured sender (codes and notices)."""
    ses.send_email(
        Source=sender,
        Destination={"ToAddresses": list(recipients)},
        Message={
            "Subject": {"Data": subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
        },
    )


def notify(
    user: User,
    subject: str,
    text: str,
    *,
    ses: Any,
    messaging: MessagingConfig,
    clock: Clock = SYSTEM_CLOCK,
    to: Sequence[str] | None = None,
    context: AuditContext | None = None,
) -> bool:
    """E-mail ``user`` a notice; True when SES accepted it.

    ``to`` overrides the recipients (e.g. both the old and the new address when the e-mail
    address changes); by default it is the user's address. A user without an address gets
    no notice, and that is not an error.
    """
    recipients = sorted({address for address in (to if to is not None else [user.email]) if address})
    if not recipients:
        return False
    details: dict[str, object] = {"subject": subject, "to": ", ".join(mask_email(a) for a in recipients)}
    if not messaging.email_sender:
        audit.record(
            audit.EventType.NOTICE_SENT,
            "skipped",
            context=context,
            subject=user.username,
            details={**details, "reason": "no e-mail sender configured"},
            clock=clock,
        )
        return False
    try:
        send_text_email(ses, messaging.email_sender, recipients, subject, text)
    except (BotoCoreError, ClientError) as exc:
        observability.count("DeliveryFailed")
        observability.logger.error(
            "the notice %r to %s was not sent: %s",
            subject,
            details["to"],
            aws.failure_reason(exc, hide=recipients),
            extra={"failed": "ses SendEmail", "user": user.username},
        )
        audit.record(
            audit.EventType.NOTICE_SENT,
            "failure",
            context=context,
            subject=user.username,
            details={**details, "error": type(exc).__name__},
            clock=clock,
        )
        return False
    audit.record(
        audit.EventType.NOTICE_SENT,
        "success",
        context=context,
        subject=user.username,
        details=details,
        clock=clock,
    )
    return True


def password_changed(
    user: User, *, by_admin: bool, mailer: Mailer, context: AuditContext | None, clock: Clock = SYSTEM_CLOCK
) -> bool:
    """Tell ``user`` that their password changed: by themselves (``/me/password``) or by an
    administrator's reset. Called once the change is written; a notice that cannot be sent
    is audited by ``notify`` and changes nothing. It never holds the password."""
    when = readable_utc(clock.now())
    if by_admin:
        subject = "Your password was reset"
        what = (
            f"An administrator reset the password of your account {user.display_username} at {when}. "
            "You were signed out everywhere"
        )
    else:
        subject = "Your password was changed"
        source_ip = context.source_ip if context is not None else None
        where = f" from the address {source_ip}" if source_ip else ""
        what = (
            f"The password of your account {user.display_username} was changed at {when}{where}. "
            "Your other sessions were signed out"
        )
    return notify(
        user,
        subject,
        change_text(what),
        ses=mailer.ses(),
        messaging=mailer.messaging,
        context=context,
        clock=clock,
    )


def second_factors_reset(
    user: User, *, mailer: Mailer, context: AuditContext | None, clock: Clock = SYSTEM_CLOCK
) -> bool:
    """Tell ``user`` that an administrator removed all their second factors (S8): they were
    signed out everywhere and set up a new factor at their next sign-in."""
    what = (
        f"An administrator removed every second factor of your account {user.display_username} "
        f"at {readable_utc(clock.now())}: authenticator apps, phones, e-mail codes, backup codes, "
        "hardware tokens and security keys. You were signed out everywhere and will set up a new "
        "second factor at your next sign-in"
    )
    return notify(
        user,
        "Your second factors were reset",
        change_text(what),
        ses=mailer.ses(),
        messaging=mailer.messaging,
        context=context,
        clock=clock,
    )


def contact_changed(
    user: User,
    *,
    changed: Sequence[str],
    old_email: str | None,
    mailer: Mailer,
    context: AuditContext | None,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """Tell ``user`` that an administrator changed their e-mail address or phone number
    (``changed`` names them), at the address they had before: someone who took over an admin
    session to send the user's messages elsewhere cannot keep the user from hearing of it.
    The new address gets it too. The new values are not in it."""
    what = " and ".join(changed)
    text = change_text(
        f"An administrator changed the {what} of your account {user.display_username} at "
        f"{readable_utc(clock.now())}"
    )
    return notify(
        user,
        f"The {what} of your account changed",
        text,
        ses=mailer.ses(),
        messaging=mailer.messaging,
        to=[address for address in (old_email, user.email) if address],
        context=context,
        clock=clock,
    )


MAX_EMAIL_CHARS = 254
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def clean_email_address(raw: str) -> str:
    """An e-mail address to send codes to, or ``BadRequest`` with a sentence (S26)."""
    address = (raw or "").strip()
    if len(address) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(address) or not address.isprintable():
        raise BadRequest("Enter a valid e-mail address, e.g. name@example.com.")
    return address
