"""A recent second factor of the strongest tier the user has (S10, S28), which factor, password
and device changes and the admin console require, and the answers that send the browser to
the challenge or to enrolment.

Apart from the flow (``idp_core.mfa.flow``, which checks and sends codes and names these too),
so that the guard of every admin page and sensitive change asks the method registry, the
user's factors and the session's proofs without loading the codes, transactions and sending.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from idp_core import sessions
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import AuthenticationRequired
from idp_core.mfa import factors
from idp_core.mfa import methods as registry
from idp_core.mfa.factors import is_usable
from idp_core.mfa.methods import TIER_LABELS, Tier
from idp_core.models import Factor, Session, User

if TYPE_CHECKING:
    from idp_core.mfa.policy import MfaSettings


class SecondFactorRequired(AuthenticationRequired):
    """A second factor (or a fresher one) is needed first: the browser goes to /mfa."""

    def __init__(self, message: str = "Confirm it is you with your second factor to continue.") -> None:
        super().__init__(message)


class EnrolmentRequired(AuthenticationRequired):
    """The user must set up a second factor first: the browser goes to /me/mfa."""

    def __init__(self, message: str = "Set up a second factor to continue.") -> None:
        super().__init__(message)


def strongest_tier(factors: Iterable[Factor], allowed: Sequence[str]) -> Tier | None:
    """The strongest tier among the usable factors of an allowed method (None: there are none)."""
    return max((registry.tier(f.kind) for f in factors if f.kind in allowed and is_usable(f)), default=None)


def ensure_fresh_strongest_factor(
    session: Session,
    user: User,
    settings: MfaSettings,
    *,
    max_age_seconds: int,
    enrolment_required: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Raise ``SecondFactorRequired`` unless the session proved, in the last ``max_age_seconds``,
    a factor of the strongest tier the user has among the allowed methods (S10, S28): a code
    sent by e-mail does not authorise adding an authenticator app when the user has one.

    A user without such a factor has nothing to prove; with ``enrolment_required`` (the admin
    console) and the settings' "enrol at sign-in" they must set one up first
    (``EnrolmentRequired``). The factor lookup is skipped when a fresh proof is of the
    strongest tier any allowed method has.
    """
    now = clock.now()
    fresh = [
        registry.tier(method) if registry.is_known(method) else 0
        for method, proven_at in sessions.second_factor_proofs(session).items()
        if now - proven_at <= max_age_seconds
    ]
    best_possible = max(registry.tier(method) for method in settings.allowed_methods)
    if any(tier >= best_possible for tier in fresh):
        return
    needed = strongest_tier(factors.list_factors(user.username, active_only=True), settings.allowed_methods)
    if needed is None:
        if enrolment_required and settings.enrol_at_sign_in:
            raise EnrolmentRequired()
        return
    if not any(tier >= needed for tier in fresh):
        raise SecondFactorRequired(f"Confirm it is you with {TIER_LABELS[needed]} to continue.")
