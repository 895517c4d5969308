"""A reservation whose answer is lost and that botocore retries (S2, S29): DynamoDB applied the
first request, so the retry must not count the attempt a second time, whatever other attempts
were reserved in between. The embedded AWS carries the request out and then fails its answer
(``idp_local.faults``: a 5xx, or no answer until the read timeout), as a flaky network or an
attacker who slows the service down would make it."""

from __future__ import annotations

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from idp_core import accounts, aws, lockout, models, signin
from idp_core.clock import FakeClock
from idp_core.config import LockoutPolicy, Settings, Tables
from idp_core.errors import SignInFailed
from idp_core.models import DirectoryEntry, User
from idp_core.scope import RequestScope
from idp_local.faults import Fault, FaultPlan
from tests.support.parallel import all_at_once

POLICY = LockoutPolicy()
# Temporary lockouts off: every one of a burst of attempts is reserved.
HARD_ONLY = LockoutPolicy(failure_factor=0)


@pytest.fixture
def alice(tables: Tables) -> User:
    return accounts.create_user(accounts.NewUser("alice"))


@pytest.fixture(params=["applied-server-error", "lost-answer"])
def lost(request: pytest.FixtureRequest, faults: FaultPlan, monkeypatch: pytest.MonkeyPatch) -> str:
    """The kind of lost answer; the clients are a deployed function's (its 2-second read
    timeout, one retry), not the embedded AWS's longer timeout."""
    monkeypatch.delenv(aws.EMBEDDED_READ_TIMEOUT_ENV)
    return str(request.param)


def fresh(username: str = "alice") -> User:
    return User.get(username, consistent_read=True)


def reserve(clock: FakeClock, factor: str = "password", policy: LockoutPolicy = POLICY) -> lockout.Attempt:
    reserved = lockout.reserve(User, ("alice",), factor, policy=policy, clock=clock)
    assert reserved is not None
    return reserved[1]


def fail(clock: FakeClock, times: int, policy: LockoutPolicy = POLICY) -> None:
    for _ in range(times):
        reserve(clock, policy=policy).failed(subject="alice")


def lose_the_next_answer(faults: FaultPlan, kind: str) -> Fault:
    return faults.add(Fault("dynamodb", kind, operation="UpdateItem", times=1))


def reserve_retried(
    clock: FakeClock, faults: FaultPlan, lost: str, *, after_failures: int
) -> lockout.Attempt:
    """After ``after_failures`` failures, an attempt whose first reservation was applied and its
    answer lost: botocore sent it again (the call would have raised the first answer if not)."""
    fail(clock, after_failures)
    lose_the_next_answer(faults, lost)
    attempt = reserve(clock)
    assert faults.hits == [("dynamodb", "UpdateItem", lost)]
    return attempt


def test_attack_a_retried_reservation_counts_the_failure_once(
    alice: User, clock: FakeClock, faults: FaultPlan, lost: str
) -> None:
    attempt = reserve_retried(clock, faults, lost, after_failures=2)
    assert (attempt.record.fail_password, attempt.record.fail_total) == (3, 3)
    attempt.failed(subject="alice")
    assert (fresh().fail_password, fresh().fail_total) == (3, 3)


def test_a_success_after_a_retried_reservation_gives_everything_back(
    alice: User, clock: FakeClock, faults: FaultPlan, lost: str
) -> None:
    reserve_retried(clock, faults, lost, after_failures=4).succeeded()
    user = fresh()
    assert (user.fail_password, user.fail_total, user.limit_password) == (0, 0, POLICY.failure_factor)


def test_an_unchecked_attempt_after_a_retried_reservation_gives_back_only_itself(
    alice: User, clock: FakeClock, faults: FaultPlan, lost: str
) -> None:
    reserve_retried(clock, faults, lost, after_failures=4).not_evaluated()
    assert (fresh().fail_password, fresh().fail_total) == (4, 4)


def test_a_retried_reservation_that_reached_the_limit_locks_once(
    alice: User, clock: FakeClock, faults: FaultPlan, lost: str
) -> None:
    tenth = reserve_retried(clock, faults, lost, after_failures=9)
    assert (tenth.reached, tenth.wait_seconds) == (lockout.TEMPORARY, POLICY.wait_increment_seconds)
    user = fresh()
    assert lockout.is_locked(user, clock)
    assert (user.fail_password, user.limit_password) == (10, 2 * POLICY.failure_factor)
    tenth.succeeded()  # The right password lifts the lock it wrote.
    user = fresh()
    assert not lockout.is_locked(user, clock)
    assert (user.fail_password, user.fail_total, user.limit_password) == (0, 0, POLICY.failure_factor)


def reserve_with_another_before_the_retry(
    clock: FakeClock, faults: FaultPlan, lost: str, *, later_by: float = 0
) -> tuple[lockout.Attempt, lockout.Attempt]:
    """(An attempt whose first reservation was applied and its answer lost, and an attempt
    reserved ``later_by`` seconds later, after the lost answer and before the retry.)"""
    retried = lose_the_next_answer(faults, lost)
    between: list[lockout.Attempt] = []
    events = models.connection().client.meta.events

    # botocore's needs-retry event comes after the lost answer, before the request is sent again.
    def reserve_another(**_: object) -> None:
        events.unregister("needs-retry.dynamodb.UpdateItem", reserve_another)
        clock.advance(later_by)
        between.append(reserve(clock))

    events.register("needs-retry.dynamodb.UpdateItem", reserve_another)
    first = reserve(clock)
    assert faults.hits == [("dynamodb", "UpdateItem", lost)]
    assert faults.matched(retried) >= 1 + aws.MAX_ATTEMPTS  # The lost one, the other, the retry.
    return first, between[0]


def test_a_retried_reservation_followed_by_the_one_that_reached_the_limit_is_ordinary(
    alice: User, clock: FakeClock, faults: FaultPlan, lost: str
) -> None:
    """The ninth attempt's answer is lost; the tenth is reserved before the ninth's retry: only
    the tenth reached the limit, and a success of the ninth does not lift the tenth's lock."""
    fail(clock, 8)
    ninth, tenth = reserve_with_another_before_the_retry(clock, faults, lost)
    assert (ninth.reached, tenth.reached) == (lockout.ORDINARY, lockout.TEMPORARY)
    assert fresh().limit_password == 2 * POLICY.failure_factor  # Locked once, by the tenth.
    tenth.failed(subject="alice")
    ninth.succeeded()
    user = fresh()
    assert lockout.is_locked(user, clock)
    assert (user.fail_password, user.fail_total) == (0, 0)


def test_a_retry_still_finds_its_id_after_an_attempt_of_the_next_minute(
    alice: User, clock: FakeClock, faults: FaultPlan, lost: str
) -> None:
    """The attempt ids rotate through their sets by minute; the set of an attempt whose retry
    may still come is never the one a later minute's attempt empties."""
    period = lockout.ATTEMPT_ID_PERIOD_SECONDS
    clock.advance(period - 1 - clock.now() % period)  # To the last second of a minute.
    fail(clock, 2, HARD_ONLY)
    first, later = reserve_with_another_before_the_retry(clock, faults, lost, later_by=period)
    first.failed(subject="alice")
    later.failed(subject="alice")
    assert (fresh().fail_password, fresh().fail_total) == (4, 4)


def test_a_record_keeps_the_attempt_ids_of_the_last_two_minutes(alice: User, clock: FakeClock) -> None:
    clock.advance(-clock.now() % lockout.ATTEMPT_ID_PERIOD_SECONDS)  # To the start of a minute.
    for _ in range(20):  # Ten minutes of a failure every 30 seconds.
        fail(clock, 1, HARD_ONLY)
        clock.advance(30)
    user = fresh()
    kept = [getattr(user, f"attempt_ids_{n}") or set() for n in range(lockout.ATTEMPT_ID_SETS)]
    assert sorted(len(ids) for ids in kept) == [0, 0, 2, 2]
    assert user.last_attempt_id in set().union(*kept)
    assert user.fail_total == 20


def test_attack_a_burst_of_wrong_passwords_with_lost_answers_counts_each_once(
    alice: User, clock: FakeClock, tables: Tables, faults: FaultPlan, lost: str
) -> None:
    """The finding: 20 parallel wrong passwords through the sign-in once left 39 failures. Here
    8 reservations are applied and answered with an error, and other attempts are reserved
    between a lost answer and its retry, so only an attempt's own id, not the last one written,
    tells its retry apart. When both sends of one lose their answer, that sign-in answers "try
    again" (503); its attempt still counts once."""
    settings = Settings(tables=tables, signing_key_id="unused", lockout=HARD_ONLY)
    faults.add(Fault("dynamodb", lost, operation="UpdateItem", times=8))

    def wrong_password() -> str:
        try:
            signin.password_sign_in("alice", "not the password", RequestScope(settings, clock=clock))
        except SignInFailed:
            return "refused"
        except (BotoCoreError, ClientError) as exc:
            assert aws.transient_failure(exc) is not None, exc
            return "try again"
        return "signed in"

    outcomes = all_at_once([wrong_password] * 20)
    assert "signed in" not in outcomes
    assert outcomes.count("refused") >= 20 - 8 // aws.MAX_ATTEMPTS
    assert len(faults.hits) == 8
    assert (fresh().fail_password, fresh().fail_total) == (20, 20)


def test_a_retried_refusal_is_still_a_refusal(
    alice: User, clock: FakeClock, faults: FaultPlan, lost: str
) -> None:
    policy = LockoutPolicy(failure_factor=0, max_failures=3)
    fail(clock, 3, policy)
    lose_the_next_answer(faults, lost)
    with pytest.raises(lockout.AccountLocked):
        reserve(clock, policy=policy)
    assert faults.hits == [("dynamodb", "UpdateItem", lost)]
    assert fresh().fail_total == 3


def test_a_retried_reservation_that_created_a_directory_entry_counts_once(
    tables: Tables, clock: FakeClock, faults: FaultPlan, lost: str
) -> None:
    lose_the_next_answer(faults, lost)
    reserved = lockout.reserve(
        DirectoryEntry,
        ("ldap:corp", "5f1c"),
        "password",
        policy=POLICY,
        clock=clock,
        create_with=[DirectoryEntry.username.set("lena")],
    )
    assert reserved is not None
    reserved[1].failed(subject="lena")
    entry = DirectoryEntry.get("ldap:corp", "5f1c", consistent_read=True)
    assert (entry.username, entry.fail_password, entry.fail_total) == ("lena", 1, 1)


def test_a_throttled_reservation_is_still_retried_and_counts_once(
    alice: User, clock: FakeClock, faults: FaultPlan
) -> None:
    """The retries stay on: a throttled request was not applied, and its retry is."""
    faults.add(Fault("dynamodb", "throttling", operation="UpdateItem", times=1))
    reserve(clock).failed(subject="alice")
    assert faults.hits == [("dynamodb", "UpdateItem", "throttling")]
    assert (fresh().fail_password, fresh().fail_total) == (1, 1)
