"""Brute-force protection (S1-S3, S29): every credential check is an attempt reserved first.

An attempt is reserved on the record a credential would unlock (a user, or a directory entry
not registered here) by one conditional update that counts it as a failure in advance. The
update fails when the record is disabled, locked or at a limit, so no credential is ever
evaluated once a limit is reached, however many requests race. A success gives the attempt
back with the factor's earlier failures (S2: a success resets only its own count); a
failure keeps it.

The counters (``models.Lockable``):
- ``fail_<factor>``: the factor's consecutive failures. Every ``failure_factor`` of them start a
  temporary lock (Keycloak model) with a growing wait; ``limit_<factor>`` is the count at which
  the next one starts.
- ``fail_total``: the sum over the factors, which the hard limit (``max_failures``) counts. It
  goes down only when a factor succeeds or an admin unlocks, never with time, so failures
  spread over days still lock (S29). Only the temporary locks end with time.

The attempt that reaches a limit writes the lock before its credential is checked (and lifts
it again if the credential is right), so a process that dies in between leaves a lock, never
a counter stuck at its limit without one.

A reservation counts once, even when botocore sends it again (S2). A request whose answer is
lost (a read timeout, a 5xx) may still have been applied, and botocore retries it: under load,
20 parallel wrong passwords once counted 39. So each reservation carries a random attempt id:
its update adds the id to a set of recent ids and sets ``last_attempt_id``, and its condition
requires the id absent. The retry of an applied reservation fails that condition, and the item
the refusal returns (``ReturnValuesOnConditionCheckFailure``) holds the id: the attempt was
reserved, once, and goes on as reserved. A set and not only the last id, because other
attempts are reserved between a lost answer and its retry. The ids go to four sets by minute,
and each reservation empties the set two minutes ahead of its own: an id stays at least a
minute, far longer than a call and its retry take (``idp_core.aws.CALL_BUDGET_SECONDS``), and a
record keeps only the ids of the last two minutes or so. A retried attempt reached a limit
only if no attempt was reserved after it (``last_attempt_id`` is still its id): an attempt at a
limit refuses the later ones of its factor, so when a later one got in, it is the one at the
limit and writes the lock. (Only a later attempt at another factor can hide a retried attempt
that did reach its limit; the record is then locked as after a reservation whose process died.)

This keeps the reservation one UpdateItem that returns the item. A TransactWriteItems with an
idempotency token would cost twice the writes and return no item, so the sign-in would need
another read; turning retries off would leave throttled requests unretried.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, TypeVar

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action, Update

from idp_core import audit, observability
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import LockoutPolicy
from idp_core.errors import Forbidden
from idp_core.models import FACTORS, Lockable, condition_failed, connection

R = TypeVar("R", bound=Lockable)

# What an attempt that reached a limit did before its credential was checked.
ORDINARY, TEMPORARY, HARD = "ordinary", "temporary", "hard"
# A reservation that reached a limit but wrote no lock is finished by then, or its process died.
STALE_RESERVATION_SECONDS = 60
# The attempt ids of a minute go to one of four sets (``Lockable.attempt_ids_<n>``).
ATTEMPT_ID_PERIOD_SECONDS = 60
ATTEMPT_ID_SETS = 4
# 72 random bits: unique among the attempts of a few minutes on one record.
ATTEMPT_ID_BYTES = 9


class AccountLocked(Forbidden):
    """The account is locked (or disabled); sign-in callers turn this into the one generic
    failure (S5)."""

    def __init__(self, record: Lockable | None = None) -> None:
        super().__init__("This account is locked. Try again later or ask an administrator to unlock it.")
        # The record as the refused reservation found it, for the caller's audit event.
        self.record = record


def _counter(model: type[Lockable], factor: str) -> Any:
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}")
    return getattr(model, f"fail_{factor}")


def _limit(model: type[Lockable], factor: str) -> Any:
    return getattr(model, f"limit_{factor}")


def _attempt_ids(period: int) -> str:
    return f"attempt_ids_{period % ATTEMPT_ID_SETS}"


def is_locked(record: Lockable, clock: Clock = SYSTEM_CLOCK) -> bool:
    """A snapshot answer, for pages and the re-checks before issuing (S3); credentials are
    checked only through ``reserve``."""
    return _locked_at(record, clock.now())


def _locked_at(record: Lockable, now: float) -> bool:
    return bool(record.locked) or (record.locked_until is not None and now < float(record.locked_until))


def ensure_not_locked(record: Lockable, clock: Clock = SYSTEM_CLOCK) -> None:
    """Raise ``AccountLocked`` while a hard or a temporary lock holds."""
    if is_locked(record, clock):
        raise AccountLocked(record)


def temporary_wait_seconds(factor_failures: int, policy: LockoutPolicy) -> int:
    """How long the temporary lock that starts at a factor's ``factor_failures``-th consecutive
    failure lasts (0: none)."""
    if policy.failure_factor <= 0 or factor_failures < policy.failure_factor:
        return 0
    steps = factor_failures // policy.failure_factor
    return min(policy.max_wait_seconds, policy.wait_increment_seconds * steps)


def unlock_actions(model: type[Lockable]) -> list[Action]:
    """What an admin unlock writes: no failures, no limits, no lock."""
    actions: list[Action] = [model.fail_total.set(0), model.locked.set(False), model.locked_until.remove()]
    for factor in FACTORS:
        actions += [_counter(model, factor).set(0), _limit(model, factor).remove()]
    return actions


@dataclass
class Attempt:
    """A reserved attempt at ``factor`` on ``record``. Exactly one of ``succeeded`` (or the
    caller writes ``release_actions`` with its own changes), ``failed`` or ``not_evaluated``
    ends it."""

    record: Lockable
    factor: str
    policy: LockoutPolicy
    clock: Clock
    reached: str = ORDINARY
    wait_seconds: int = 0

    def release_actions(self) -> list[Action]:
        """Give this attempt and the factor's earlier failures back (S2). The right-hand values
        are read before the update, so attempts reserved meanwhile still count in the total."""
        model = type(self.record)
        counter = _counter(model, self.factor)
        actions = [model.fail_total.set(model.fail_total - counter), counter.set(0)]
        if self.policy.failure_factor > 0:
            actions.append(_limit(model, self.factor).set(self.policy.failure_factor))
        if self.reached == TEMPORARY:
            actions.append(model.locked_until.remove())
        elif self.reached == HARD:
            actions.append(model.locked.set(False))
        return actions

    def release_condition(self) -> Condition:
        return type(self.record)._hash_key_attribute().exists()

    def succeeded(self) -> None:
        """Give the reservation and the factor's earlier failures back now."""
        self._update(self.release_actions())

    def not_evaluated(self) -> None:
        """The credential could not be checked (a directory that did not answer): the attempt
        does not count, and a lock it wrote in advance is lifted."""
        model = type(self.record)
        actions = [_counter(model, self.factor).add(-1), model.fail_total.add(-1)]
        if self.reached == TEMPORARY:
            actions += [
                _limit(model, self.factor).add(-self.policy.failure_factor),
                model.locked_until.remove(),
            ]
        elif self.reached == HARD:
            actions.append(model.locked.set(False))
        self._update(actions)

    def failed(
        self,
        *,
        subject: str | None,
        context: AuditContext | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        """The credential was wrong: the reservation stays a failure, the lock this attempt
        wrote in advance (if any) stands, and both are audited (S25)."""
        facts: dict[str, object] = {
            "factor": self.factor,
            "failures": self.record.total_failures(),
            **(details or {}),
        }
        events = [
            audit.new_event(
                audit.EventType.AUTH_FAILURE,
                "failure",
                context=context,
                subject=subject,
                details=facts,
                clock=self.clock,
            )
        ]
        if self.reached == TEMPORARY:
            observability.count("AccountLocked")
            events.append(
                audit.new_event(
                    audit.EventType.USER_LOCKED_TEMPORARILY,
                    "success",
                    context=context,
                    subject=subject,
                    details={**facts, "seconds": self.wait_seconds},
                    clock=self.clock,
                )
            )
        elif self.reached == HARD:
            observability.count("AccountLocked")
            events.append(
                audit.new_event(
                    audit.EventType.USER_LOCKED,
                    "success",
                    context=context,
                    subject=subject,
                    details=facts,
                    clock=self.clock,
                )
            )
        audit.write_all(events)

    def _update(self, actions: list[Action]) -> None:
        try:
            self.record.update(actions=actions, condition=self.release_condition())
        except UpdateError as exc:
            if not condition_failed(exc):
                raise  # Otherwise the record is gone (a deleted user): nothing to give back.


@dataclass(frozen=True)
class Reservation:
    """What a reservation gave, for a caller that made it alongside other requests and acts on
    it later: the record and the attempt, nothing (no such record), or the refusal."""

    found: tuple[Lockable, Attempt] | None = None
    refused: AccountLocked | None = None


def try_reserve(
    model: type[R], key: tuple[str, ...], factor: str, *, policy: LockoutPolicy, clock: Clock = SYSTEM_CLOCK
) -> Reservation:
    """``reserve``, keeping a refusal instead of raising it."""
    try:
        return Reservation(reserve(model, key, factor, policy=policy, clock=clock))
    except AccountLocked as exc:
        return Reservation(refused=exc)


def reserve(
    model: type[R],
    key: tuple[str, ...],
    factor: str,
    *,
    policy: LockoutPolicy,
    clock: Clock = SYSTEM_CLOCK,
    create_with: list[Action] | None = None,
) -> tuple[R, Attempt] | None:
    """Reserve an attempt at ``factor`` on the item ``key`` of ``model``: the item as it is now
    and the attempt, or None when there is no such item (nothing is created), unless
    ``create_with`` gives the attributes to create it with (a directory entry's record).

    Raises ``AccountLocked`` (carrying the record) when the record is disabled, locked or at
    a limit. The reservation reads the item as well: no other read of it is needed.
    """
    counter, limit = _counter(model, factor), _limit(model, factor)
    now = clock.now()
    condition = (
        (model.disabled.does_not_exist() | (model.disabled == False))  # noqa: E712
        & (model.locked.does_not_exist() | (model.locked == False))  # noqa: E712
        & (model.locked_until.does_not_exist() | (model.locked_until <= now))
        & (model.fail_total.does_not_exist() | (model.fail_total < policy.max_failures))
    )
    if create_with is None:
        condition = model._hash_key_attribute().exists() & condition
    attempt_id = secrets.token_urlsafe(ATTEMPT_ID_BYTES)
    period = int(now // ATTEMPT_ID_PERIOD_SECONDS)
    recent = getattr(model, _attempt_ids(period))
    condition = condition & (recent.does_not_exist() | ~recent.contains(attempt_id))
    actions: list[Action] = [
        counter.add(1),
        model.fail_total.add(1),
        model.last_attempt_at.set(now),
        model.last_attempt_id.set(attempt_id),
        recent.add({attempt_id}),
        getattr(model, _attempt_ids(period + 2)).remove(),
        *(create_with or ()),
    ]
    if policy.failure_factor > 0:
        first_lock_ahead = limit.does_not_exist() & (
            counter.does_not_exist() | (counter < policy.failure_factor)
        )
        condition = condition & (first_lock_ahead | (counter < limit))
        actions.append(limit.set(limit | policy.failure_factor))
    item, refused = _update_returning_item(model, key, actions, condition)
    if item is None:
        return None  # Refused: there is no such record.
    if refused and attempt_id not in (getattr(item, _attempt_ids(period)) or ()):
        _lock_for_a_dead_reservation(item, factor, policy, now)
        raise AccountLocked(item)
    # Reserved, by this request or by an earlier send of it whose answer was lost.
    attempt = Attempt(item, factor, policy, clock)
    if item.last_attempt_id == attempt_id:
        _lock_in_advance(attempt, now)
    return item, attempt


def _lock_in_advance(attempt: Attempt, now: float) -> None:
    """The attempt that reaches a limit locks before its credential is checked."""
    record, policy, factor = attempt.record, attempt.policy, attempt.factor
    model = type(record)
    failures = int(getattr(record, f"fail_{factor}") or 0)
    limit = getattr(record, f"limit_{factor}")
    if record.total_failures() >= policy.max_failures:
        attempt.reached = HARD
        actions: list[Action] = [model.locked.set(True)]
    elif policy.failure_factor > 0 and limit is not None and failures >= int(limit):
        attempt.reached = TEMPORARY
        attempt.wait_seconds = temporary_wait_seconds(failures, policy)
        actions = [
            model.locked_until.set(now + attempt.wait_seconds),
            _limit(model, factor).add(policy.failure_factor),
        ]
    else:
        return
    record.update(actions=actions, condition=model._hash_key_attribute().exists())


def _lock_for_a_dead_reservation(record: Lockable, factor: str, policy: LockoutPolicy, now: float) -> None:
    """A record at a limit with no lock in force, whose last reservation is long past: that
    reservation reached the limit and its process died before it locked (or the temporary
    lockout was turned on over a longer streak). Lock now, as it would have, so the record is
    not refused forever without a lock an admin can see."""
    last = record.last_attempt_at
    if (
        _locked_at(record, now)
        or record.disabled
        or last is None
        or now - float(last) < STALE_RESERVATION_SECONDS
    ):
        return
    model = type(record)
    failures = int(getattr(record, f"fail_{factor}") or 0)
    limit = int(getattr(record, f"limit_{factor}") or policy.failure_factor)
    if record.total_failures() >= policy.max_failures:
        actions: list[Action] = [model.locked.set(True)]
    elif policy.failure_factor > 0 and failures >= limit:
        actions = [
            model.locked_until.set(now + temporary_wait_seconds(failures, policy)),
            _limit(model, factor).set(failures + policy.failure_factor),
        ]
    else:
        return
    try:
        record.update(actions=actions, condition=model.last_attempt_at == float(last))
        observability.count("AccountLocked")
    except UpdateError as exc:
        if not condition_failed(exc):
            raise  # Otherwise another attempt moved the record meanwhile: it decides.


def _update_returning_item(
    model: type[R], key: tuple[str, ...], actions: list[Action], condition: Condition
) -> tuple[R | None, bool]:
    """One conditional UpdateItem: (the item after it, False), or, when the condition failed,
    (the item as it was, or None when there is none, True). PynamoDB's update cannot return
    the item of a failed condition, so this calls DynamoDB directly."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    update_expression = Update(*actions).serialize(names, values)
    condition_expression = condition.serialize(names, values)
    key_names = [str(model._hash_keyname), *([model._range_keyname] if model._range_keyname else [])]
    client: Any = connection().client
    try:
        answer = client.update_item(
            TableName=model.Meta.table_name,
            Key={name: {"S": value} for name, value in zip(key_names, key, strict=True)},
            UpdateExpression=update_expression,
            ConditionExpression=condition_expression,
            ExpressionAttributeNames={placeholder: name for name, placeholder in names.items()},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as exc:
        old = exc.response.get("Item")
        return (model.from_raw_data(old) if old else None), True
    return model.from_raw_data(answer["Attributes"]), False
