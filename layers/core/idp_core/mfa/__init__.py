"""Second factors: authenticator apps (TOTP), codes by SMS and e-mail, backup codes and
hardware OATH tokens."""

from __future__ import annotations

from idp_core.errors import IdpError

# The methods an admin can allow, in the order the pages offer them.
METHODS = ("totp", "sms", "email", "backup", "token")
METHOD_LABELS = {
    "totp": "Authenticator app",
    "sms": "Text message (SMS)",
    "email": "E-mail",
    "backup": "Backup codes",
    "token": "Hardware token",
}


class WrongCode(IdpError):
    """A wrong, expired, reused or replayed code: one message for all of them (S6)."""

    status = 401

    def __init__(self) -> None:
        super().__init__("The verification code is not correct.")


class SendRefused(IdpError):
    """A code was not sent because a limit or rule forbids it (S9); nothing was sent."""

    status = 429
