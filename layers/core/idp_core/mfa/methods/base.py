"""What every second-factor method is: its kind, its strength tier and the small protocol the
flow, the pages and the policy use instead of branching on a method's name.

This module imports nothing heavy and no other part of ``idp_core.mfa``: the CLI and every
function load the registry, and a method module loads its implementation (KMS, QR codes,
phone numbers, SNS, SES) only when a code is checked or sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum, unique
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from idp_core.clock import Clock
    from idp_core.config import MessagingConfig
    from idp_core.mfa.policy import MfaSettings
    from idp_core.models import Factor


# The longest answer of any method: a security key's, as JSON (about 1 KiB with "none"
# attestation, a few KiB with a certificate chain). Forms cap the code field at this.
MAX_ANSWER_CHARS = 12 * 1024


@unique
class MethodKind(StrEnum):
    """The second-factor methods. The values are stored (factors' ``kind``, settings, policies,
    session proofs, lockout counters) and posted by pages: they never change."""

    TOTP = "totp"
    SMS = "sms"
    EMAIL = "email"
    BACKUP = "backup"
    TOKEN = "token"  # noqa: S105 - a hardware token, not a secret
    WEBAUTHN = "webauthn"


class Tier(IntEnum):
    """Strength tiers (S28, NIST SP 800-63B rev 4): factor changes, password changes, device
    management and the admin console need a fresh proof from the strongest tier a user has."""

    RESTRICTED = 1  # SMS and e-mail codes: NIST's restricted authenticators
    AUTHENTICATOR = 2  # authenticator app, hardware token, backup codes
    PHISHING_RESISTANT = 3  # security keys and passkeys (WebAuthn): bound to this site's origin


TIER_LABELS: Mapping[Tier, str] = {
    Tier.PHISHING_RESISTANT: "a security key or passkey",
    Tier.AUTHENTICATOR: "an authenticator app, hardware token or backup code",
    Tier.RESTRICTED: "a code by text message or e-mail",
}


class UnknownMethod(ValueError):
    """A method kind no module is registered for (a programming error, or a stored value from
    a newer version)."""

    def __init__(self, kind: object) -> None:
        super().__init__(f"{kind!r} is not a registered second-factor method")


@dataclass(frozen=True)
class CodeCheck:
    """What checking a code may need besides the factor and the code."""

    # The session's login transaction for this factor and purpose, and the key of its code's
    # stored hash (sent codes are bound to both, S7).
    transaction_hash: str
    code_key: bytes
    # A pending factor is checked only to confirm it (S11).
    confirming: bool
    kms: Any
    clock: Clock
    # The site's address as the browser sees it (``WebRequest.base_url``): a security key's
    # answer names the origin it was given on, which must be this one.
    base_url: str | None = None


@dataclass(frozen=True)
class Enrolment:
    """How a user adds a factor of this method on /me/mfa: a button that posts to ``path``
    (``post``), or a link to a form at ``path`` that asks for where codes go."""

    path: str
    post: bool
    # The page that confirms a pending factor with its first code.
    confirm_template: str = "me_mfa_confirm.html"


class Channel(Protocol):
    """What a method that sends codes sends them through (SMS by SNS, e-mail by SES)."""

    # Names the channel's rate-limit counters and its audit events' ``channel``.
    name: str
    # The factor's attribute that holds where its codes go ("phone", "email").
    destination_attribute: str
    # "codes were sent", "this phone number": the sentences of its limits.
    sent_words: str
    destination_words: str
    # The metric counted per code sent, and the provider call named in a failure's log.
    metric: str
    provider_call: str

    def destination(self, factor: Factor) -> str | None:
        """Where the factor's codes go (None: it has nowhere)."""
        ...

    def mask(self, destination: str) -> str:
        """The destination as pages and audit events show it."""
        ...

    def normalize(self, raw: str, settings: MfaSettings, messaging: MessagingConfig) -> str:
        """A destination a user typed, made canonical, or ``BadRequest`` with a sentence (S26)."""
        ...

    def check_destination(self, destination: str, settings: MfaSettings, messaging: MessagingConfig) -> None:
        """Raise ``DestinationRefused`` (audited) or a configuration error before anything is sent."""
        ...

    def deliver(
        self, destination: str, text: str, *, issuer: str, messaging: MessagingConfig, sns: Any, ses: Any
    ) -> None:
        """Hand the message to the provider; its errors propagate."""
        ...


class SecondFactorMethod(Protocol):
    """One second-factor method. Each lives in its own module of ``idp_core.mfa.methods`` and
    is found through the registry there; its enrolment and challenge pages use these."""

    @property
    def kind(self) -> MethodKind: ...

    @property
    def label(self) -> str: ...

    @property
    def tier(self) -> Tier: ...

    @property
    def enrolment(self) -> Enrolment | None:
        """How a user sets one up on /me/mfa; None when only an administrator can (hardware tokens)."""
        ...

    @property
    def channel(self) -> Channel | None:
        """What it sends its codes through; None when the code comes from the user's app, token or list."""
        ...

    @property
    def prompt(self) -> str:
        """What the challenge page asks for (a method that sends codes says where it sent one instead)."""
        ...

    @property
    def inputmode(self) -> str:
        """The keyboard the challenge offers (HTML ``inputmode``)."""
        ...

    @property
    def max_code_chars(self) -> int:
        """The longest answer looked at: longer input is refused before anything is written."""
        ...

    def clean_code(self, code: str) -> str:
        """The code as checked (spaces already removed), or ``BadRequest`` before anything is written."""
        ...

    def is_usable(self, factor: Factor) -> bool:
        """Whether an active factor of this method can pass a challenge now."""
        ...

    def verify(self, factor: Factor, code: str, check: CodeCheck) -> None:
        """Accept the code or raise ``WrongCode``."""
        ...

    def removed(self, factor: Factor) -> bool:
        """Free what the factor holds elsewhere, as it is deleted (a hardware token); True when
        something was freed."""
        ...
