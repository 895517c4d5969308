"""Welcome e-mails to the users a directory creates here (the product guide's "Send welcome
e-mails after registration").

A user created by an import or by "Sync users" at sign-in, who has an e-mail address,
gets one plain-text e-mail through SES from the configured sender, sent after the user is
written. It says the account is ready, the username, and that they sign in with their
directory password and then set up a second factor. It carries no code, password or
other secret: only the address of the sign-in page.

Like a security notice, the e-mail is a side effect of a change that has already
happened: no configured sender, or SES refusing, never undoes the creation nor fails the
import; the run's counts and the audit trail say what was not sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from idp_core import audit, aws, observability
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import MessagingConfig, WithMessaging
from idp_core.directories.settings import DirectorySettings
from idp_core.mail import Mailer, mask_email, send_text_email
from idp_core.models import User

SUBJECT = "Your sign-in account is ready"
NO_SENDER = "welcome e-mails are on but no e-mail sender is configured"
LOGIN_PATH = "/login"


def _no_ses() -> Any:
    raise RuntimeError("no e-mail sender is configured, so no SES client is made")


@dataclass(frozen=True)
class WelcomeMail:
    """How welcome e-mails leave (the SES mailer of the alerts and notices) and the base URL
    of the sign-in service; the callers build it from their settings."""

    mailer: Mailer = field(default_factory=lambda: Mailer(ses=_no_ses, messaging=MessagingConfig()))
    base_url: str | None = None

    @classmethod
    def for_settings(cls, settings: WithMessaging, *, base_url: str | None = None) -> WelcomeMail:
        """From the function's (or the CLI's) settings; ``base_url`` overrides the configured
        public base URL, e.g. with the URL a request came in on."""
        chosen = (base_url or settings.public_base_url or "").rstrip("/")
        return cls(mailer=Mailer.for_settings(settings), base_url=chosen or None)

    @property
    def sender(self) -> str | None:
        return self.mailer.messaging.email_sender


# Callers that pass nothing send nothing: the run reports that no sender is configured.
NO_WELCOME_MAIL = WelcomeMail()


def message(user: User, base_url: str | None) -> tuple[str, str]:
    """The subject and text of ``user``'s welcome e-mail."""
    where = f"at {base_url}{LOGIN_PATH}" if base_url else "on your organisation's sign-in page"
    text = (
        f"Hello {user.display_name or user.display_username},\n\n"
        "Your account on this sign-in service is ready.\n\n"
        f"Username: {user.display_username}\n\n"
        f"Sign in {where} with your username and the password of your company directory "
        "account (the one you already use). After your first sign-in you will set up "
        "two-factor authentication.\n\n"
        "This e-mail contains no password or code, and nobody will ever ask you for your "
        "password by e-mail. If you did not expect this account, tell your administrator."
    )
    return SUBJECT, text


class WelcomeSender:
    """Sends the welcome e-mails of one run (an import, or one sign-in) and counts them."""

    def __init__(self, settings: DirectorySettings, mail: WelcomeMail) -> None:
        self.on = settings.welcome_emails
        self.mail = mail
        self.sent = 0
        self.failed = 0
        self._ses: Any = None

    @property
    def missing_sender(self) -> bool:
        """True when welcome e-mails are on but cannot leave: no sender is configured."""
        return self.on and not self.mail.sender

    def send(self, user: User) -> None:
        """Welcome ``user``, just written; a user without an address gets nothing."""
        sender = self.mail.sender
        if not self.on or not sender or not user.email:
            return
        subject, text = message(user, self.mail.base_url)
        try:
            if self._ses is None:
                self._ses = self.mail.mailer.ses()
            send_text_email(self._ses, sender, [str(user.email)], subject, text)
        except (BotoCoreError, ClientError) as exc:
            self.failed += 1
            observability.count("DeliveryFailed")
            observability.logger.error(
                "the welcome e-mail to %s was not sent: %s",
                mask_email(str(user.email)),
                aws.failure_reason(exc, hide=[str(user.email)]),
                extra={"failed": "ses SendEmail", "user": user.username},
            )
        else:
            self.sent += 1


def welcome_after_sign_in(
    user: User,
    settings: DirectorySettings,
    mail: WelcomeMail,
    *,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """The welcome e-mail of a user "Sync users" just created at sign-in, with one audit
    event saying whether it left; nothing when the directory's welcome e-mails are off."""
    sender = WelcomeSender(settings, mail)
    if not sender.on:
        return
    sender.send(user)
    details: dict[str, object] = {"directory": settings.name, "sent": sender.sent, "failed": sender.failed}
    if sender.missing_sender:
        details["reason"] = NO_SENDER
    elif not user.email:
        details["reason"] = "the user has no e-mail address"
    outcome = "success" if sender.sent else "failure" if sender.failed else "skipped"
    audit.record(
        audit.EventType.DIRECTORY_WELCOME,
        outcome,
        context=context,
        subject=user.username,
        details=details,
        clock=clock,
    )
