"""Attempts reserved before a credential is checked (S29, S1-S2), against moto DynamoDB: the
counters, the temporary and hard limits under parallel attempts, and what a success, a
failure and an unchecked attempt leave behind."""

from __future__ import annotations

import threading

import pytest

from idp_core import accounts, lockout
from idp_core.clock import FakeClock
from idp_core.config import LockoutPolicy, Tables
from idp_core.models import DirectoryEntry, User
from tests.support.parallel import outcomes_of_parallel

POLICY = LockoutPolicy()


@pytest.fixture
def alice(tables: Tables) -> User:
    return accounts.create_user(accounts.NewUser("alice"))


def fresh(username: str = "alice") -> User:
    return User.get(username, consistent_read=True)


def fail(clock: FakeClock, factor: str = "password", times: int = 1, policy: LockoutPolicy = POLICY) -> None:
    for _ in range(times):
        reserved = lockout.reserve(User, ("alice",), factor, policy=policy, clock=clock)
        assert reserved is not None
        reserved[1].failed(subject="alice")
        if reserved[1].reached == lockout.TEMPORARY:
            clock.advance(reserved[1].wait_seconds)


def test_a_reservation_reads_the_record_and_counts_the_attempt_in_advance(
    alice: User, clock: FakeClock
) -> None:
    reserved = lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    assert reserved is not None
    user, attempt = reserved
    assert (user.username, user.fail_password, user.fail_total) == ("alice", 1, 1)
    assert (fresh().fail_password, fresh().fail_total) == (1, 1)
    attempt.succeeded()
    assert (fresh().fail_password, fresh().fail_total, fresh().limit_password) == (
        0,
        0,
        POLICY.failure_factor,
    )


def test_an_unknown_key_creates_nothing(tables: Tables, clock: FakeClock) -> None:
    assert lockout.reserve(User, ("nobody",), "password", policy=POLICY, clock=clock) is None
    assert list(User.scan()) == []


def test_a_success_gives_back_only_its_own_factor(alice: User, clock: FakeClock) -> None:
    fail(clock, "password", 3)
    fail(clock, "totp", 4)
    reserved = lockout.reserve(User, ("alice",), "totp", policy=POLICY, clock=clock)
    assert reserved is not None
    reserved[1].succeeded()
    user = fresh()
    assert (user.fail_password, user.fail_totp, user.fail_total) == (3, 0, 3)


def test_an_attempt_that_was_not_checked_does_not_count(alice: User, clock: FakeClock) -> None:
    fail(clock, "password", 2)
    reserved = lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    assert reserved is not None
    reserved[1].not_evaluated()
    assert (fresh().fail_password, fresh().fail_total) == (2, 2)


def test_every_tenth_consecutive_failure_of_a_factor_locks_for_a_growing_wait(
    alice: User, clock: FakeClock
) -> None:
    fail(clock, "password", 9)
    reserved = lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    assert reserved is not None
    assert reserved[1].reached == lockout.TEMPORARY
    # The lock is written before the credential is checked.
    assert lockout.is_locked(fresh(), clock)
    reserved[1].failed(subject="alice")
    with pytest.raises(lockout.AccountLocked):
        lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    clock.advance(POLICY.wait_increment_seconds)
    fail(clock, "password", 9)
    twentieth = lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    assert twentieth is not None
    assert (twentieth[1].reached, twentieth[1].wait_seconds) == (
        lockout.TEMPORARY,
        2 * POLICY.wait_increment_seconds,
    )


def test_the_attempt_at_the_limit_that_succeeds_lifts_its_lock(alice: User, clock: FakeClock) -> None:
    fail(clock, "password", 9)
    reserved = lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    assert reserved is not None
    reserved[1].succeeded()
    user = fresh()
    assert not lockout.is_locked(user, clock)
    assert (user.fail_password, user.fail_total, user.limit_password) == (0, 0, POLICY.failure_factor)


def test_attack_a_password_success_does_not_reset_the_second_factor_streak(
    alice: User, clock: FakeClock
) -> None:
    """An attacker who knows the password guesses codes: signing in with the password between
    the guesses neither resets the codes' failures nor their temporary locks."""
    for _ in range(9):
        password = lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
        assert password is not None
        password[1].succeeded()
        fail(clock, "totp")
    tenth = lockout.reserve(User, ("alice",), "totp", policy=POLICY, clock=clock)
    assert tenth is not None and tenth[1].reached == lockout.TEMPORARY
    assert fresh().fail_totp == 10


@pytest.mark.parametrize("before", [9, 99])
def test_attack_parallel_attempts_at_a_limit_are_not_evaluated(
    alice: User, clock: FakeClock, before: int
) -> None:
    """12 parallel attempts one failure before a limit: exactly one is reserved (and checked);
    the others are refused before anything is evaluated."""
    policy = LockoutPolicy(failure_factor=10 if before == 9 else 0)
    fail(clock, "password", before, policy)
    admitted: list[lockout.Attempt] = []
    guard = threading.Lock()

    def attempt() -> None:
        reserved = lockout.reserve(User, ("alice",), "password", policy=policy, clock=clock)
        assert reserved is not None
        with guard:
            admitted.append(reserved[1])

    outcomes = outcomes_of_parallel([attempt] * 12, lockout.AccountLocked)
    assert outcomes.count("ok") == 1
    assert outcomes.count("refused") == 11
    assert admitted[0].reached == (lockout.TEMPORARY if before == 9 else lockout.HARD)
    assert fresh().fail_total == before + 1


def test_attack_failures_spread_over_thirty_hours_still_hard_lock(alice: User, clock: FakeClock) -> None:
    """150 wrong attempts, one every 12 minutes: the hard limit's count never resets with time."""
    refused = 0
    for _ in range(150):
        clock.advance(12 * 60)
        try:
            reserved = lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
        except lockout.AccountLocked:
            refused += 1
            continue
        assert reserved is not None
        reserved[1].failed(subject="alice")
    user = fresh()
    assert user.locked is True
    assert user.fail_total == POLICY.max_failures
    assert refused == 50


def test_a_hard_lock_ends_only_by_an_admin(alice: User, clock: FakeClock) -> None:
    policy = LockoutPolicy(failure_factor=0, max_failures=3)
    fail(clock, "password", 3, policy)
    clock.advance(365 * 24 * 3600)
    with pytest.raises(lockout.AccountLocked):
        lockout.reserve(User, ("alice",), "password", policy=policy, clock=clock)
    accounts.unlock_user("alice")
    assert lockout.reserve(User, ("alice",), "password", policy=policy, clock=clock) is not None


def test_a_disabled_user_is_refused_before_anything_is_counted(alice: User, clock: FakeClock) -> None:
    accounts.set_user_disabled("alice", True)
    with pytest.raises(lockout.AccountLocked) as refused:
        lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    assert refused.value.record is not None and refused.value.record.disabled
    assert fresh().fail_total in (None, 0)


def test_a_reservation_that_died_at_the_limit_becomes_the_lock_it_would_have_written(
    alice: User, clock: FakeClock
) -> None:
    """A process that reserved the tenth attempt and died before writing the lock: the next
    attempt a minute later writes the lock instead of being refused forever without one."""
    fail(clock, "password", 9)
    User("alice").update(
        actions=[User.fail_password.add(1), User.fail_total.add(1), User.last_attempt_at.set(clock.now())]
    )
    with pytest.raises(lockout.AccountLocked):
        lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    assert not lockout.is_locked(fresh(), clock)  # A fresh reservation may still be running.
    clock.advance(lockout.STALE_RESERVATION_SECONDS)
    with pytest.raises(lockout.AccountLocked):
        lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    assert lockout.is_locked(fresh(), clock)
    clock.advance(POLICY.wait_increment_seconds)
    assert lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock) is not None


def test_directory_entries_keep_their_own_counters(tables: Tables, clock: FakeClock) -> None:
    DirectoryEntry("ldap:corp", "5f1c", username="lena").save()
    reserved = lockout.reserve(DirectoryEntry, ("ldap:corp", "5f1c"), "password", policy=POLICY, clock=clock)
    assert reserved is not None
    reserved[1].failed(subject="lena")
    assert DirectoryEntry.get("ldap:corp", "5f1c").fail_password == 1
