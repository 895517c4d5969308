"""Phone numbers (for SMS codes, and a user's contact number): parsed and validated with
``phonenumbers``, stored in E.164.

A number is accepted only when it is a valid number of a country in the allowlist (S9), and
only when libphonenumber says it is a mobile number (S31): premium-rate and shared-cost
numbers are how SMS pumping earns money, and toll-free, VoIP, personal (forwarding), pager,
UAN and voicemail numbers, landlines and numbers of unknown type may not reach a phone in the
user's hand. The check runs at enrolment and again before every send, so a number stored
before it existed gets nothing either. (``phonenumberslite`` carries the type metadata; only
the carrier and geocoding data are left out.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from idp_core.errors import BadRequest

# phonenumbers (its metadata for every country) is imported by the three functions that parse
# a number, not with this module.
# No real number has more than 15 digits (E.164); the extra room is for spaces and brackets.
MAX_INPUT_CHARS = 32
# A number this short is masked whole: its last two digits would be half of it.
MAX_FULLY_MASKED_DIGITS = 4
EXAMPLE = "+44 7400 123456"
_ALLOWED_CHARACTERS = re.compile(r"[0-9+()\-. ]+")
# libphonenumber's number types (phonenumbers.PhoneNumberType, whose values its metadata
# fixes; a unit test holds them equal), written here so this module loads without it.
FIXED_LINE, MOBILE, FIXED_LINE_OR_MOBILE, TOLL_FREE, PREMIUM_RATE = 0, 1, 2, 3, 4
SHARED_COST, VOIP, PERSONAL_NUMBER, PAGER, UAN, VOICEMAIL = 5, 6, 7, 8, 9, 10
# Some countries (the US, Canada, India) cannot tell their landlines from their mobiles by
# the number; those are "fixed line or mobile" and may receive texts.
MOBILE_TYPES = frozenset({MOBILE, FIXED_LINE_OR_MOBILE})
REFUSED_TYPE_NAMES = {
    FIXED_LINE: "a landline number",
    TOLL_FREE: "a toll-free number",
    PREMIUM_RATE: "a premium-rate number",
    SHARED_COST: "a shared-cost number",
    VOIP: "a VoIP number",
    PERSONAL_NUMBER: "a personal (forwarding) number",
    PAGER: "a pager number",
    UAN: "a universal access number",
    VOICEMAIL: "a voicemail access number",
}
UNKNOWN_TYPE = "a number of unknown type"


class NotAMobileNumber(BadRequest):
    """S31: codes go only to numbers of a mobile type; ``kind`` names what the number is."""

    def __init__(self, shown: str, kind: str) -> None:
        super().__init__(
            f"{shown} is {kind}; codes are sent only to mobile phone numbers. "
            f"Enter a mobile number, e.g. {EXAMPLE}."
        )
        self.kind = kind


def _ensure_mobile_type(number: Any, shown: str) -> None:
    import phonenumbers

    kind = phonenumbers.number_type(number)
    if kind not in MOBILE_TYPES:
        raise NotAMobileNumber(shown, REFUSED_TYPE_NAMES.get(kind, UNKNOWN_TYPE))


def ensure_mobile(e164: str) -> None:
    """Raise ``NotAMobileNumber`` unless the stored number ``e164`` is a valid mobile number."""
    import phonenumbers

    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as exc:
        raise NotAMobileNumber("That number", UNKNOWN_TYPE) from exc
    if not phonenumbers.is_valid_number(number):
        raise NotAMobileNumber("That number", UNKNOWN_TYPE)
    _ensure_mobile_type(number, "That number")


def _not_a_number(shown: str) -> BadRequest:
    return BadRequest(f"{shown} is not a valid phone number; include the country code, e.g. {EXAMPLE}.")


def _parse(raw: str) -> tuple[Any, str]:
    """A valid number as libphonenumber parsed it, and the text shown in messages about it."""
    text = (raw or "").strip()
    if not text:
        raise BadRequest(f"Enter a phone number with its country code, e.g. {EXAMPLE}.")
    if len(text) > MAX_INPUT_CHARS:
        raise BadRequest(f"That is not a valid phone number; include the country code, e.g. {EXAMPLE}.")
    if not _ALLOWED_CHARACTERS.fullmatch(text):
        raise BadRequest(
            f"A phone number may contain only digits, spaces and the signs + - ( ) .; e.g. {EXAMPLE}."
        )
    import phonenumbers

    shown = f'"{text}"'
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise _not_a_number(shown) from exc
    if not phonenumbers.is_valid_number(number):
        raise _not_a_number(shown)
    return number, shown


def _e164(number: Any) -> str:
    import phonenumbers

    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize(raw: str, *, allowed_countries: Iterable[str]) -> str:
    """Return the mobile number ``raw`` in E.164 (``+447400123456``), or raise ``BadRequest``
    with a sentence (``NotAMobileNumber`` for a valid number of another type).

    The country code is required, with or without the leading "+" (an international "00"
    prefix also works); a national number such as "020 7946 0958" is refused because the
    country it belongs to would be a guess.
    """
    import phonenumbers

    number, shown = _parse(raw)
    country = phonenumbers.region_code_for_number(number)
    allowed = sorted({code.upper() for code in allowed_countries})
    if country not in allowed:
        raise BadRequest(
            f"Text messages to numbers in {country} (+{number.country_code}) are not allowed here; "
            f"allowed countries: {', '.join(allowed) or 'none'}."
        )
    _ensure_mobile_type(number, shown)
    return _e164(number)


def contact_number(raw: str) -> str:
    """A user's contact number (``idp_core.accounts``) in E.164, or ``BadRequest``: any valid
    number of any country and type. Codes never go to it; the SMS limits apply when a user
    makes it a sign-in method."""
    number, _ = _parse(raw)
    return _e164(number)


def country_of(e164: str) -> str | None:
    """The ISO country code of a stored E.164 number, or None when it is not a valid number."""
    import phonenumbers

    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.region_code_for_number(number)


def mask_phone(e164: str) -> str:
    """A phone number safe for audit events and pages: the country code and the last 2 digits."""
    import phonenumbers

    digits = e164.lstrip("+")
    if len(digits) <= MAX_FULLY_MASKED_DIGITS:
        return "+" + "*" * len(digits)
    try:
        country_code = str(phonenumbers.parse(e164, None).country_code)
    except phonenumbers.NumberParseException:
        country_code = digits[:1]
    hidden = len(digits) - len(country_code) - 2
    return f"+{country_code}{'*' * max(hidden, 0)}{digits[-2:]}"
