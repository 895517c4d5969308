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


# Strength tiers (S28, NIST SP 800-63B rev 4): factor changes, password changes, device
# management and the admin console need a fresh proof from the strongest tier a user has.
# Phishing-resistant authenticators (security keys, passkeys) will form the tier above these.
AUTHENTICATOR_TIER = 2  # authenticator app, hardware token, backup codes
RESTRICTED_TIER = 1  # SMS and e-mail codes: NIST's restricted authenticators
METHOD_TIERS = {
    "totp": AUTHENTICATOR_TIER,
    "token": AUTHENTICATOR_TIER,
    "backup": AUTHENTICATOR_TIER,
    "sms": RESTRICTED_TIER,
    "email": RESTRICTED_TIER,
}
TIER_LABELS = {
    AUTHENTICATOR_TIER: "an authenticator app, hardware token or backup code",
    RESTRICTED_TIER: "a code by text message or e-mail",
}


class WrongCode(IdpError):
    """A wrong, expired, reused or replayed code: one message for all of them (S6)."""

    status = 401

    def __init__(self) -> None:
        super().__init__("The verification code is not correct.")


class SendRefused(IdpError):
    """A code was not sent because a limit or rule forbids it (S9); nothing was sent."""

    status = 429
