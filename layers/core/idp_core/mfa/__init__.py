"""Second factors: authenticator apps (TOTP), codes by SMS and e-mail, backup codes and
hardware OATH tokens, each a method module of ``idp_core.mfa.methods``."""

from __future__ import annotations

from idp_core.errors import IdpError


class WrongCode(IdpError):
    """A wrong, expired, reused or replayed code: one message for all of them (S6)."""

    status = 401

    def __init__(self) -> None:
        super().__init__("The verification code is not correct.")


class SendRefused(IdpError):
    """A code was not sent because a limit or rule forbids it (S9); nothing was sent."""

    status = 429


class DestinationRefused(SendRefused):
    """A channel does not send to this destination (a country or number type, S31); the
    ``reason`` names the rule in the audit event."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
