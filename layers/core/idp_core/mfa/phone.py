"""Phone numbers for SMS codes: parsed and validated with ``phonenumbers``, stored in E.164.

A number is accepted only when it is a valid number of a country in the allowlist (S9): the
allowlist is the first defence against SMS pumping to premium-rate destinations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from idp_core.errors import BadRequest

# phonenumbers (its metadata for every country) is imported by the three functions that parse
# a number, not with this module: the e-mail notices import it for mask_email.
# No real number has more than 15 digits (E.164); the extra room is for spaces and brackets.
MAX_INPUT_CHARS = 32
EXAMPLE = "+44 20 7946 0958"
_ALLOWED_CHARACTERS = re.compile(r"[0-9+()\-. ]+")


def _not_a_number(shown: str) -> BadRequest:
    return BadRequest(f"{shown} is not a valid phone number; include the country code, e.g. {EXAMPLE}.")


def normalize(raw: str, *, allowed_countries: Iterable[str]) -> str:
    """Return ``raw`` in E.164 (``+442079460958``), or raise ``BadRequest`` with a sentence.

    The country code is required, with or without the leading "+" (an international "00"
    prefix also works); a national number such as "020 7946 0958" is refused because the
    country it belongs to would be a guess.
    """
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
    country = phonenumbers.region_code_for_number(number)
    allowed = sorted({code.upper() for code in allowed_countries})
    if country not in allowed:
        raise BadRequest(
            f"Text messages to numbers in {country} (+{number.country_code}) are not allowed here; "
            f"allowed countries: {', '.join(allowed) or 'none'}."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
    if len(digits) <= 4:
        return "+" + "*" * len(digits)
    try:
        country_code = str(phonenumbers.parse(e164, None).country_code)
    except phonenumbers.NumberParseException:
        country_code = digits[:1]
    hidden = len(digits) - len(country_code) - 2
    return f"+{country_code}{'*' * max(hidden, 0)}{digits[-2:]}"


def mask_email(address: str) -> str:
    """An e-mail address safe for audit events and pages: ``a***@example.com``."""
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
