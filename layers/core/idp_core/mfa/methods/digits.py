"""The shape of the codes apps, tokens and messages show, and what the methods whose device
shows one (an authenticator app, a hardware token) have in common."""

from __future__ import annotations

from typing import TYPE_CHECKING

from idp_core.errors import BadRequest

if TYPE_CHECKING:
    from idp_core.models import Factor

MIN_CODE_DIGITS, MAX_CODE_DIGITS = 6, 8


def digits_only(code: str) -> str:
    """6-8 digits (a dash between groups is allowed), or ``BadRequest`` (S26)."""
    cleaned = code.replace("-", "")
    if not (cleaned.isascii() and cleaned.isdigit() and MIN_CODE_DIGITS <= len(cleaned) <= MAX_CODE_DIGITS):
        raise BadRequest("The verification code is the 6-digit number from your app, message or token.")
    return cleaned


class ShownCode:
    """A code the user's own device shows: nothing is sent, and an active factor always counts."""

    channel = None
    inputmode = "numeric"
    max_code_chars = 64

    def clean_code(self, code: str) -> str:
        return digits_only(code)

    def is_usable(self, factor: Factor) -> bool:
        return True

    def removed(self, factor: Factor) -> bool:
        return False
