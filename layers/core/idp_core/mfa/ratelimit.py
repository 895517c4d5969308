"""Rate limits in fixed windows (S9: SMS pumping), kept in the rate_limits table.

Each limit is one ``RateCounter`` item per window, keyed ``<key>:<window start>`` (e.g.
``sms:user:alice:1800000000``), whose ``expires_at`` (DynamoDB TTL) is the end of the window.
A hit is an atomic ``ADD hits :1`` with the condition ``hits < :limit``, so parallel requests
can never exceed the limit, and a refused attempt writes nothing and so does not count.

Several limits guard one send (per user, per number, per source IP, per account and the
resend wait of the transaction). ``consume_all`` checks and counts them in ONE DynamoDB
``TransactWriteItems``: either every counter moves or none does. The alternative, counting
one after the other and compensating with ``ADD hits :-1`` when a later limit refuses,
leaves a window in which a crash (or a Lambda timeout) between the two writes keeps a
penalty on a counter that no message was sent for, and lets a parallel request see an
inflated count; the transaction has neither problem and costs one request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError

from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.mfa import SendRefused
from idp_core.models import RateCounter, new_transaction

HOUR = 3600
DAY = 24 * HOUR
# A wait reads in the smaller unit up to 119 (seconds, minutes), then in the next: "in 2 minutes".
SMALLER_UNIT_BELOW = 120


@dataclass(frozen=True)
class Limit:
    """At most ``limit`` hits on ``key`` per fixed window of ``window_seconds``."""

    key: str
    limit: int
    window_seconds: int
    # Completes "Too many ...": e.g. "codes were sent to this phone number".
    description: str = "requests were made"
    # A short name for audit events, e.g. "per_user".
    name: str = "limit"


@dataclass(frozen=True)
class Guard:
    """One more conditional update that must hold in the same transaction as the limits,
    e.g. the resend wait on a Transaction item; ``refusal`` is the message when it does not."""

    item: Any  # a PynamoDB model instance (its key is enough)
    actions: Sequence[Any]
    condition: Any
    refusal: str
    name: str = "guard"


class LimitReached(SendRefused):
    """``SendRefused`` that also names the limit or guard that refused (for audit events)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def window_start(now: float, window_seconds: int) -> int:
    return int(now // window_seconds) * window_seconds


def counter_key(key: str, window_seconds: int, now: float) -> str:
    return f"{key}:{window_start(now, window_seconds)}"


def describe_wait(seconds: float) -> str:
    """``in 45 seconds``, ``in 12 minutes``, ``in 3 hours``: rounded up, never "in 0 ..."."""
    seconds = max(1, int(-(-seconds // 1)))
    if seconds < SMALLER_UNIT_BELOW:
        return f"in {seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    if minutes < SMALLER_UNIT_BELOW:
        return f"in {minutes} minutes"
    return f"in {-(-minutes // 60)} hours"


def _per_window(window_seconds: int) -> str:
    if window_seconds == HOUR:
        return "an hour"
    if window_seconds == DAY:
        return "a day"
    if window_seconds % HOUR == 0:
        return f"every {window_seconds // HOUR} hours"
    if window_seconds % 60 == 0:
        return f"every {window_seconds // 60} minutes"
    return f"every {window_seconds} seconds"


def refusal_message(limit: Limit, now: float) -> str:
    retry = window_start(now, limit.window_seconds) + limit.window_seconds - now
    return (
        f"Too many {limit.description}: at most {limit.limit} {_per_window(limit.window_seconds)}. "
        f"Try again {describe_wait(retry)}."
    )


def _update_for(limit: Limit, now: float) -> tuple[RateCounter, list[Any], Any]:
    start = window_start(now, limit.window_seconds)
    item = RateCounter(key=f"{limit.key}:{start}")
    actions = [
        RateCounter.hits.add(1),
        RateCounter.last_at.set(now),
        RateCounter.expires_at.set(start + limit.window_seconds),
    ]
    condition = RateCounter.hits.does_not_exist() | (RateCounter.hits < limit.limit)
    return item, actions, condition


def consume_all(
    limits: Sequence[Limit], *, clock: Clock = SYSTEM_CLOCK, guards: Sequence[Guard] = ()
) -> None:
    """Count one hit on every limit and apply every guard, all or nothing (one transaction).

    Raises ``LimitReached`` (a ``SendRefused``) naming the first guard or limit (in the given
    order, guards first) that refused; then no counter has moved.
    """
    now = clock.now()
    for limit in limits:
        if limit.limit <= 0:
            raise LimitReached(refusal_message(limit, now), limit.name)
    refusals = [(guard.refusal, guard.name) for guard in guards] + [
        (refusal_message(limit, now), limit.name) for limit in limits
    ]
    if not refusals:
        return
    try:
        with new_transaction() as transaction:
            for guard in guards:
                transaction.update(guard.item, list(guard.actions), condition=guard.condition)
            for limit in limits:
                item, actions, condition = _update_for(limit, now)
                transaction.update(item, actions, condition=condition)
    except TransactWriteError as exc:
        reasons = exc.cancellation_reasons
        failed = [
            index
            for index, reason in enumerate(reasons)
            if reason is not None and reason.code == "ConditionalCheckFailed"
        ]
        if failed:
            raise LimitReached(*refusals[failed[0]]) from exc
        if exc.cause_response_code == "TransactionCanceledException" and not reasons:
            # No reasons reported (some emulators): name the first rule, which is the likeliest.
            raise LimitReached(*refusals[0]) from exc
        raise
