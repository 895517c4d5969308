"""The registry of second-factor methods: one module per method, each implementing
``SecondFactorMethod`` (``base``), found here by its ``MethodKind``.

The flow, the pages, the tiers and the policy ask the registry (``get``, ``kinds``, ``label``,
``tier``) instead of branching on a method's name, so a new method is one module listed in
``BUILT_IN`` below (and its kind in ``MethodKind``) plus its pages.

The registry lists the built-in methods by their kind, label and tier and imports a method's
module when something more is asked of it (``get``, ``channel``, ``release``): naming and
ranking methods, which every page and policy check does, loads none of them, and a request
loads the modules of the methods it uses, not every method's implementation (KMS sealing,
security keys, hardware tokens, phone numbers, e-mail).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

from idp_core.mfa.methods.base import (
    TIER_LABELS,
    Channel,
    CodeCheck,
    Enrolment,
    MethodKind,
    SecondFactorMethod,
    Tier,
    UnknownMethod,
)

if TYPE_CHECKING:
    from idp_core.models import Factor

__all__ = [
    "BUILT_IN",
    "TIER_LABELS",
    "Channel",
    "CodeCheck",
    "Enrolment",
    "Listed",
    "MethodKind",
    "SecondFactorMethod",
    "Tier",
    "UnknownMethod",
    "channel",
    "get",
    "is_known",
    "kinds",
    "label",
    "register",
    "release",
    "tier",
    "unregister",
]


class Listed(NamedTuple):
    """A built-in method before its module is imported: what every page and policy check asks
    of it, and the module of ``idp_core.mfa.methods`` whose ``METHOD`` is the rest."""

    kind: MethodKind
    label: str
    tier: Tier
    module: str


# In the order the pages offer them. Each module's METHOD has the same kind, label and tier.
BUILT_IN = (
    Listed(MethodKind.TOTP, "Authenticator app", Tier.AUTHENTICATOR, "totp"),
    Listed(MethodKind.SMS, "Text message (SMS)", Tier.RESTRICTED, "sms"),
    Listed(MethodKind.EMAIL, "E-mail", Tier.RESTRICTED, "email"),
    Listed(MethodKind.BACKUP, "Backup codes", Tier.AUTHENTICATOR, "backup_codes"),
    Listed(MethodKind.TOKEN, "Hardware token", Tier.AUTHENTICATOR, "oath_token"),
    Listed(MethodKind.WEBAUTHN, "Security key or passkey", Tier.PHISHING_RESISTANT, "webauthn"),
)

# Keyed by the kind's string value (a MethodKind is equal to it), so a kind read from
# DynamoDB or a form finds its method; in the order the pages offer them. A built-in method
# is listed until its module is first needed, then registered itself.
_REGISTRY: dict[str, SecondFactorMethod | Listed] = {listed.kind: listed for listed in BUILT_IN}


def register(method: SecondFactorMethod) -> None:
    """Make ``method`` known to the flow, the pages and the policy; a kind registers once."""
    if method.kind in _REGISTRY:
        raise ValueError(f"the second-factor method {method.kind!r} is already registered")
    _REGISTRY[method.kind] = method


def unregister(kind: str) -> None:
    """Forget a method (tests that register one of their own take it away again)."""
    _REGISTRY.pop(kind, None)


def get(kind: str | None) -> SecondFactorMethod:
    """The method of ``kind``, or ``UnknownMethod``."""
    try:
        entry = _REGISTRY[kind]  # type: ignore[index]
    except (KeyError, TypeError):
        raise UnknownMethod(kind) from None
    return _load(entry) if isinstance(entry, Listed) else entry


def _load(listed: Listed) -> SecondFactorMethod:
    method: SecondFactorMethod = importlib.import_module(f"{__name__}.{listed.module}").METHOD
    if (method.kind, method.label, method.tier) != listed[:3]:
        raise RuntimeError(f"the module of the {listed.kind.value!r} method does not match its listing")
    _REGISTRY[listed.kind] = method
    return method


def is_known(kind: object) -> bool:
    """Whether ``kind`` names a registered method (for input that may name anything)."""
    return isinstance(kind, str) and kind in _REGISTRY


def kinds() -> tuple[MethodKind, ...]:
    """The registered methods' kinds, in the order the pages offer them."""
    return tuple(method.kind for method in _REGISTRY.values())


def label(kind: str) -> str:
    """A method's name for people, e.g. "Authenticator app"; an unknown kind shows as itself."""
    return _REGISTRY[kind].label if kind in _REGISTRY else kind


def channel(kind: str) -> Channel | None:
    """What a method sends its codes through; None for one that sends nothing or is unknown."""
    return get(kind).channel if kind in _REGISTRY else None


def release(factor: Factor) -> bool:
    """Free what a factor being deleted holds elsewhere (a hardware token); True when something
    was freed. A kind no module knows holds nothing."""
    return is_known(factor.kind) and get(factor.kind).removed(factor)


def tier(kind: str) -> Tier:
    """A method's strength tier (S28), or ``UnknownMethod``."""
    try:
        return _REGISTRY[kind].tier
    except (KeyError, TypeError):
        raise UnknownMethod(kind) from None
