"""Brute-force protection (S1-S3): per-factor failure counters with a Keycloak-style lockout.

Every counter lives on the User item and changes only through atomic, conditional
DynamoDB updates, so N parallel failures add exactly N. The lock looks at the sum of all
factors' counters; a success resets only the counter of the factor that succeeded.
"""

from __future__ import annotations

from pynamodb.exceptions import UpdateError

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import LockoutPolicy
from idp_core.errors import Forbidden
from idp_core.models import FACTORS, User, condition_failed

# Two conditional writes race only with a concurrent reset of stale failures; a third try
# always finds one of the two conditions true unless the user was deleted meanwhile.
_MAX_ATTEMPTS = 3


class AccountLocked(Forbidden):
    """The account is locked; sign-in callers turn this into the one generic failure (S5)."""

    def __init__(self) -> None:
        super().__init__("This account is locked. Try again later or ask an administrator to unlock it.")


def _counter(factor: str):  # type: ignore[no-untyped-def]
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}")
    return getattr(User, f"fail_{factor}")


def is_locked(user: User, clock: Clock = SYSTEM_CLOCK) -> bool:
    """For display (the admin console); checks on the sign-in path use ``ensure_not_locked``."""
    return bool(user.locked) or (user.locked_until is not None and clock.now() < float(user.locked_until))


def ensure_not_locked(user: User, clock: Clock = SYSTEM_CLOCK) -> None:
    """Raise ``AccountLocked`` while a hard or a temporary lock holds."""
    if is_locked(user, clock):
        raise AccountLocked()


def temporary_wait_seconds(total_failures: int, policy: LockoutPolicy) -> int:
    """How long the account is locked right after its ``total_failures``-th failure (0: no lock)."""
    if policy.failure_factor <= 0 or total_failures <= 0 or total_failures % policy.failure_factor:
        return 0
    return min(
        policy.max_wait_seconds, policy.wait_increment_seconds * total_failures // policy.failure_factor
    )


def record_failure(
    user: User,
    factor: str,
    *,
    policy: LockoutPolicy,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> User:
    """Count one failed ``factor`` attempt for ``user`` and lock the account when due.

    ``user`` is updated in place with the item's new values. Failures older than
    ``policy.failure_reset_seconds`` are forgotten: the first failure after that quiet
    period starts every counter again, in one conditional write, so a concurrent failure
    is never lost.
    """
    counter = _counter(factor)
    now = clock.now()
    cutoff = now - policy.failure_reset_seconds
    recent = User.last_failure_at.does_not_exist() | (User.last_failure_at >= cutoff)
    for _ in range(_MAX_ATTEMPTS):
        try:
            user.update(
                actions=[counter.add(1), User.last_failure_at.set(now)],
                condition=User.username.exists() & recent,
            )
            break
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
        try:
            restart = [_counter(other).set(1 if other == factor else 0) for other in FACTORS]
            user.update(
                actions=[*restart, User.last_failure_at.set(now), User.locked_until.remove()],
                condition=User.username.exists() & (User.last_failure_at < cutoff),
            )
            break
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
    else:
        # Neither condition held three times in a row: the item no longer exists.
        return user

    total = user.total_failures()
    details = {"factor": factor, "failures": total}
    audit.record(
        "auth.failure", "failure", context=context, subject=user.username, details=details, clock=clock
    )
    if total >= policy.max_failures:
        _hard_lock(user, details, context=context, clock=clock)
        return user
    wait = temporary_wait_seconds(total, policy)
    if wait:
        user.update(actions=[User.locked_until.set(now + wait)], condition=User.username.exists())
        audit.record(
            "user.locked_temporarily",
            "success",
            context=context,
            subject=user.username,
            details={**details, "seconds": wait},
            clock=clock,
        )
    return user


def _hard_lock(user: User, details: dict[str, object], *, context: AuditContext | None, clock: Clock) -> None:
    try:
        user.update(
            actions=[User.locked.set(True)],
            condition=User.username.exists() & (User.locked.does_not_exist() | (User.locked == False)),  # noqa: E712
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return  # Already locked (by a parallel failure): one audit event is enough.
        raise
    audit.record(
        "user.locked", "success", context=context, subject=user.username, details=details, clock=clock
    )


def record_success(user: User, factor: str) -> None:
    """Reset ``factor``'s own counter after it succeeded; the other factors keep theirs (S2)."""
    counter = _counter(factor)
    if not int(getattr(user, f"fail_{factor}") or 0):
        return  # Nothing to reset: skip the write.
    try:
        user.update(actions=[counter.set(0)], condition=User.username.exists() & (counter > 0))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
