"""Lockout (S1-S3) through the sign-in form and the lockout logic, against moto DynamoDB."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from idp_core import accounts, lockout
from idp_core.clock import FakeClock
from idp_core.config import LockoutPolicy, Tables
from idp_core.models import AuditEvent, User
from tests.helpers.sso import PASSWORD, Sso, running_sso

WRONG = "definitely not the password"
POLICY = LockoutPolicy()

FULLWIDTH_ALICE = "\uff21\uff4c\uff49\uff43\uff45"  # NFKC folds it to "Alice"


@pytest.fixture
def sso(tables: Tables, clock: FakeClock) -> Iterator[Sso]:
    with running_sso(tables, clock) as stack:
        yield stack


@pytest.fixture
def alice(tables: Tables) -> User:
    return accounts.create_user("alice", password=PASSWORD)


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


def test_failures_older_than_the_reset_time_start_again_from_one(alice: User, clock: FakeClock) -> None:
    for _ in range(5):
        lockout.record_failure(fresh(), "password", policy=POLICY, clock=clock)
    lockout.record_failure(fresh(), "totp", policy=POLICY, clock=clock)
    clock.advance(POLICY.failure_reset_seconds + 1)
    user = lockout.record_failure(fresh(), "password", policy=POLICY, clock=clock)
    assert (user.fail_password, user.fail_totp, user.total_failures()) == (1, 0, 1)
    assert fresh().fail_password == 1


def test_parallel_failures_are_all_counted(alice: User, clock: FakeClock) -> None:
    start = threading.Barrier(20)

    def fail() -> None:
        user = fresh()
        start.wait()
        lockout.record_failure(user, "password", policy=POLICY, clock=clock)

    threads = [threading.Thread(target=fail) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    user = fresh()
    assert user.fail_password == 20
    assert user.locked_until == clock.now() + 120  # exactly one writer saw the 20th failure


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
            signin.password_sign_in("alice", WRONG, settings=settings, clock=clock)
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
    User("alice").update(actions=[User.fail_password.set(3), User.fail_totp.set(4)])
    assert sso.sign_in(sso.browser(), "alice").status_code == 303
    user = fresh()
    assert (user.fail_password, user.fail_totp) == (0, 4)


def test_failures_of_other_factors_count_towards_the_lock(alice: User, clock: FakeClock) -> None:
    User("alice").update(actions=[User.fail_totp.set(99)])
    user = lockout.record_failure(fresh(), "password", policy=POLICY, clock=clock)
    assert user.locked is True
    with pytest.raises(lockout.AccountLocked):
        lockout.ensure_not_locked(fresh(), clock)


def test_failure_for_a_deleted_user_writes_nothing(alice: User, clock: FakeClock) -> None:
    user = fresh()
    accounts.delete_user("alice")
    lockout.record_failure(user, "password", policy=POLICY, clock=clock)
    assert list(User.scan()) == []
