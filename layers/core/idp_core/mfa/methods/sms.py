"""Codes by text message, sent by Amazon SNS to mobile numbers in the allowed countries (S9, S31)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idp_core import phone
from idp_core.mfa import DestinationRefused, policy
from idp_core.mfa.methods.base import MethodKind
from idp_core.mfa.methods.sent import SentCodeMethod

if TYPE_CHECKING:
    from idp_core.config import MessagingConfig
    from idp_core.mfa.policy import MfaSettings
    from idp_core.models import Factor


class TextMessages:
    name = "sms"
    destination_attribute = "phone"
    sent_words = "codes were sent"
    destination_words = "this phone number"
    metric = "CodeSentSms"
    provider_call = "sns Publish"

    def destination(self, factor: Factor) -> str | None:
        return factor.phone or None

    def mask(self, destination: str) -> str:
        return phone.mask_phone(destination)

    def normalize(self, raw: str, settings: MfaSettings, messaging: MessagingConfig) -> str:
        return phone.normalize(raw, allowed_countries=policy.sms_countries(settings, messaging))

    def check_destination(self, destination: str, settings: MfaSettings, messaging: MessagingConfig) -> None:
        country = phone.country_of(destination)
        if country is None or country not in policy.sms_countries(settings, messaging):
            shown = country or "an unknown country"
            raise DestinationRefused(
                f"Text messages to numbers in {shown} are not allowed here; "
                "choose another method or ask an administrator.",
                reason="country",
            )
        try:
            phone.ensure_mobile(destination)
        except phone.NotAMobileNumber as exc:
            raise DestinationRefused(
                f"Text messages go only to mobile numbers, and the number of this method is {exc.kind}; "
                "choose another method or ask an administrator.",
                reason="number_type",
            ) from exc

    def deliver(
        self, destination: str, text: str, *, issuer: str, messaging: MessagingConfig, sns: Any, ses: Any
    ) -> None:
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if messaging.sms_sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": messaging.sms_sender_id,
            }
        if messaging.sms_origination_number:
            attributes["AWS.MM.SMS.OriginationNumber"] = {
                "DataType": "String",
                "StringValue": messaging.sms_origination_number,
            }
        sns.publish(PhoneNumber=destination, Message=text, MessageAttributes=attributes)


METHOD: SentCodeMethod = SentCodeMethod(MethodKind.SMS, "Text message (SMS)", TextMessages())
