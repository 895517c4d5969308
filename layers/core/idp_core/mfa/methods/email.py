"""Codes by e-mail, sent by Amazon SES from the configured sender (S9)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idp_core import mail
from idp_core.config import ENV_EMAIL_SENDER, ConfigurationError
from idp_core.mfa.methods.base import MethodKind
from idp_core.mfa.methods.sent import SentCodeMethod

if TYPE_CHECKING:
    from idp_core.config import MessagingConfig
    from idp_core.mfa.policy import MfaSettings
    from idp_core.models import Factor


class EmailMessages:
    name = "email"
    destination_attribute = "email"
    sent_words = "codes were e-mailed"
    destination_words = "this address"
    metric = "CodeSentEmail"
    provider_call = "ses SendEmail"

    def destination(self, factor: Factor) -> str | None:
        return factor.email or None

    def mask(self, destination: str) -> str:
        return mail.mask_email(destination)

    def normalize(self, raw: str, settings: MfaSettings, messaging: MessagingConfig) -> str:
        return mail.clean_email_address(raw)

    def check_destination(self, destination: str, settings: MfaSettings, messaging: MessagingConfig) -> None:
        if not messaging.email_sender:
            raise ConfigurationError(f"the setting {ENV_EMAIL_SENDER} is required to send codes by e-mail")

    def deliver(
        self, destination: str, text: str, *, issuer: str, messaging: MessagingConfig, sns: Any, ses: Any
    ) -> None:
        subject = f"Your verification code for {issuer}"
        mail.send_text_email(ses, str(messaging.email_sender), [destination], subject, text)


METHOD: SentCodeMethod = SentCodeMethod(MethodKind.EMAIL, "E-mail", EmailMessages())
