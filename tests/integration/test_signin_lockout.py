"""Lockout (S1-S3) through the sign-in form and the lockout logic, against moto DynamoDB."""

from __future__ import annotations

import threading

import pytest

from idp_core import account_deletion, accounts, lockout
from idp_core.clock import FakeClock
from idp_core.config import LockoutPolicy, Tables
from idp_core.models import AuditEvent, User
from idp_core.scope import RequestScope
from tests.helpers.sso import PASSWORD, Sso

WRONG = "definitely not the password"
POLICY = LockoutPolicy()

FULLWIDTH_ALICE = "\uff21\uff4c\uff49\uff43\uff45"  # NFKC folds it to "Alice"


def fresh(username: str = "alice") -> User:
    return User.get(username, consistent_read=True)


def test_after_100_failures_even_the_right_password_is_refused_until_an_admin_unlocks(
    sso: Sso, alice: User, clock: FakeClock
) -> None:
    browser = sso.browser()
    token = sso.login_form_token(browser)
    wrong = {"csrf_token": token, "username": "alice", "password": WRONG}
    for attempt in range(1, 101):
        response = sso.post(browser, "/login", wrong)
        assert response.status_code == 401
        if attempt % POLICY.failure_factor == 0:
            # Wait out each temporary lockout so every attempt is checked and counted.
            clock.advance(POLICY.max_wait_seconds + 1)
    user = fresh()
    assert user.fail_password == 100
    assert user.locked is True

    clock.advance(30 * 24 * 3600)  # A hard lock does not end with time.
    refused = sso.post(browser, "/login", {**wrong, "password": PASSWORD})
    assert refused.status_code == 401
    assert refused.text == sso.post(browser, "/login", wrong).text
    assert fresh().fail_password == 100  # Attempts while locked are neither checked nor counted.

    accounts.unlock_user("alice")
    assert sso.post(browser, "/login", {**wrong, "password": PASSWORD}).status_code == 303
    assert [event.type for event in AuditEvent.scan()].count("user.locked") == 1


def test_every_tenth_failure_locks_for_a_growing_while(sso: Sso, alice: User, clock: FakeClock) -> None:
    browser = sso.browser()
    for _ in range(10):
        assert sso.sign_in(browser, "alice", WRONG).status_code == 401
    assert fresh().locked_until == clock.now() + 60
    assert sso.sign_in(browser, "alice").status_code == 401  # right password, still locked
    clock.advance(61)
    for _ in range(10):
        assert sso.sign_in(browser, "alice", WRONG).status_code == 401
    assert fresh().locked_until == clock.now() + 120
    clock.advance(121)
    assert sso.sign_in(browser, "alice").status_code == 303
    assert fresh().fail_password == 0
    types = [event.type for event in AuditEvent.scan()]
    assert types.count("user.locked_temporarily") == 2
    assert types.count("auth.failure") == 21  # 20 counted failures and one refusal while locked


def test_parallel_failures_are_all_counted_up_to_the_limit(alice: User, clock: FakeClock) -> None:
    """S2: N parallel wrong attempts leave the counter at exactly N; S29: none past a limit."""
    accounts.create_user(accounts.NewUser("bob"))
    start = threading.Barrier(20)

    def fail(username: str, policy: LockoutPolicy) -> None:
        start.wait()
        try:
            reserved = lockout.reserve(User, (username,), "password", policy=policy, clock=clock)
        except lockout.AccountLocked:
            return
        assert reserved is not None
        reserved[1].failed(subject=username)

    for username, policy, counted in (("alice", LockoutPolicy(failure_factor=0), 20), ("bob", POLICY, 10)):
        threads = [threading.Thread(target=fail, args=(username, policy)) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert fresh(username).fail_password == counted
    # Exactly one of bob's attempts reached the tenth-failure limit, and it locked.
    assert fresh("bob").locked_until == clock.now() + POLICY.wait_increment_seconds


def test_parallel_wrong_passwords_through_sign_in_are_all_counted(
    alice: User, clock: FakeClock, tables: Tables
) -> None:
    from idp_core import signin
    from idp_core.config import Settings
    from idp_core.errors import SignInFailed

    # Temporary lockouts off: every one of the parallel attempts is checked and counted.
    settings = Settings(tables=tables, signing_key_id="unused", lockout=LockoutPolicy(failure_factor=0))
    start = threading.Barrier(20)
    outcomes: list[str] = []

    def attempt() -> None:
        start.wait()
        try:
            signin.password_sign_in("alice", WRONG, RequestScope(settings, clock=clock))
        except SignInFailed:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["refused"] * 20
    assert fresh().fail_password == 20


def test_username_variants_share_one_counter(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    for variant in ("alice", "ALICE", FULLWIDTH_ALICE, "  Alice"):
        assert sso.sign_in(browser, variant, WRONG).status_code == 401
    assert fresh().fail_password == 4
    assert [user.username for user in User.scan()] == ["alice"]


def test_success_resets_only_its_own_counter(sso: Sso, alice: User) -> None:
    User("alice").update(actions=[User.fail_password.set(3), User.fail_totp.set(4), User.fail_total.set(7)])
    assert sso.sign_in(sso.browser(), "alice").status_code == 303
    user = fresh()
    assert (user.fail_password, user.fail_totp, user.fail_total) == (0, 4, 4)


def test_failures_of_other_factors_count_towards_the_lock(alice: User, clock: FakeClock) -> None:
    User("alice").update(actions=[User.fail_totp.set(99), User.fail_total.set(99)])
    reserved = lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock)
    assert reserved is not None
    reserved[1].failed(subject="alice")
    assert fresh().locked is True
    with pytest.raises(lockout.AccountLocked):
        lockout.ensure_not_locked(fresh(), clock)


def test_an_attempt_for_a_deleted_user_writes_nothing(alice: User, clock: FakeClock) -> None:
    account_deletion.delete_user("alice")
    assert lockout.reserve(User, ("alice",), "password", policy=POLICY, clock=clock) is None
    assert list(User.scan()) == []


@pytest.mark.parametrize("before", [9, 99])
def test_attack_a_parallel_burst_at_the_limit_never_locks_and_signs_in_at_once(
    alice: User, clock: FakeClock, tables: Tables, before: int
) -> None:
    """11 wrong passwords and the right one, in parallel, one failure before a limit: at most
    one attempt is checked at the limit. Either it was the right one (a session, no lock; it
    gives the failures back, so wrong ones after it count from zero) or a wrong one (a lock,
    no session); never both, and nothing is checked after the lock (S29)."""
    from idp_core import signin
    from idp_core.config import Settings
    from idp_core.errors import SignInFailed
    from idp_core.models import Session
    from tests.support.parallel import outcomes_of_parallel

    policy = LockoutPolicy(failure_factor=10 if before == 9 else 0)
    User("alice").update(actions=[User.fail_password.set(before), User.fail_total.set(before)])
    settings = Settings(tables=tables, signing_key_id="unused", lockout=policy)

    def attempt(password: str) -> None:
        signin.password_sign_in("alice", password, RequestScope(settings, clock=clock))

    calls = [lambda: attempt(WRONG)] * 11 + [lambda: attempt(PASSWORD)]
    outcomes = outcomes_of_parallel(calls, SignInFailed)
    sessions = Session.count()
    locked = lockout.is_locked(fresh(), clock)
    assert outcomes.count("ok") == sessions <= 1
    assert sessions + locked == 1
    if locked:
        # A wrong one took the last place: it is the only attempt checked past the burst's start.
        assert fresh().fail_total == before + 1
        with pytest.raises(SignInFailed):
            attempt(PASSWORD)
