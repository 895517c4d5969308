"""The registry of second-factor methods: one module per method, each implementing
``SecondFactorMethod`` (``base``), found here by its ``MethodKind``.

The flow, the pages, the tiers and the policy ask the registry (``get``, ``kinds``, ``label``,
``tier``) instead of branching on a method's name, so a new method is one module registered
below (and its kind in ``MethodKind``) plus its pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    "TIER_LABELS",
    "Channel",
    "CodeCheck",
    "Enrolment",
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

# Keyed by the kind's string value (a MethodKind is equal to it), so a kind read from
# DynamoDB or a form finds its method; in the order the pages offer them.
_REGISTRY: dict[str, SecondFactorMethod] = {}


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
        return _REGISTRY[kind]  # type: ignore[index]
    except (KeyError, TypeError):
        raise UnknownMethod(kind) from None


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
    return _REGISTRY[kind].channel if kind in _REGISTRY else None


def release(factor: Factor) -> bool:
    """Free what a factor being deleted holds elsewhere (a hardware token); True when something
    was freed. A kind no module knows holds nothing."""
    return is_known(factor.kind) and get(factor.kind).removed(factor)


def tier(kind: str) -> Tier:
    """A method's strength tier (S28)."""
    return get(kind).tier


# The methods come last: their modules use the implementations (idp_core.mfa.totp, ...), which
# ask this registry for kinds and labels, so its functions must exist before they load.
from idp_core.mfa.methods import backup_codes, email, oath_token, sms, totp, webauthn  # noqa: E402

for _method in (
    totp.METHOD,
    sms.METHOD,
    email.METHOD,
    backup_codes.METHOD,
    oath_token.METHOD,
    webauthn.METHOD,
):
    register(_method)
