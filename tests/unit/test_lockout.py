"""The lockout arithmetic and the lock check (S1), without AWS."""

from __future__ import annotations

import pytest

from idp_core import lockout
from idp_core.clock import FakeClock
from idp_core.config import LockoutPolicy, Settings, Tables
from idp_core.models import User

POLICY = LockoutPolicy()


def test_every_tenth_failure_locks_for_a_growing_wait_capped_at_the_maximum() -> None:
    # The wait of the temporary lock that starts at a factor's n-th consecutive failure.
    assert [lockout.temporary_wait_seconds(n, POLICY) for n in (1, 9, 10, 20, 90)] == [0, 0, 60, 120, 540]
    assert lockout.temporary_wait_seconds(500, LockoutPolicy(max_failures=1000)) == POLICY.max_wait_seconds


def test_a_zero_failure_factor_turns_temporary_lockouts_off() -> None:
    assert lockout.temporary_wait_seconds(10, LockoutPolicy(failure_factor=0)) == 0


def test_temporary_lock_holds_until_its_end_and_the_hard_lock_forever() -> None:
    clock = FakeClock()
    user = User("alice", locked_until=clock.now() + 60)
    with pytest.raises(lockout.AccountLocked):
        lockout.ensure_not_locked(user, clock)
    clock.advance(60)
    lockout.ensure_not_locked(user, clock)
    user.locked = True
    clock.advance(365 * 24 * 3600)
    with pytest.raises(lockout.AccountLocked):
        lockout.ensure_not_locked(user, clock)


def test_unknown_factor_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown factor"):
        lockout.reserve(User, ("alice",), "carrier-pigeon", policy=POLICY)


def test_lockout_policy_defaults_and_environment_overrides() -> None:
    env = {**Tables.with_prefix("unit-").to_env(), "SIGNING_KEY_ID": "key"}
    assert Settings.from_env(env).lockout == LockoutPolicy(100, 10, 60, 900)
    custom = Settings.from_env({**env, "LOCKOUT_MAX_FAILURES": "20", "LOCKOUT_FAILURE_FACTOR": "0"})
    assert (custom.lockout.max_failures, custom.lockout.failure_factor) == (20, 0)
    assert Settings.from_env(custom.to_env()) == custom
