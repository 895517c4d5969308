"""SMS and e-mail codes (S7): bound to one transaction and one factor, 5 minutes, 5 tries, once."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.errors import BadRequest
from idp_core.mfa import WrongCode, codes
from idp_core.mfa.codes import (
    CODE_TTL_SECONDS,
    MAX_TRIES,
    TransactionExpired,
    code_hash,
    issue_code,
    key_for_session,
    verify_code,
)
from idp_core.models import Factor, Transaction, User
from tests.helpers.mfa import make_factor
from tests.support.parallel import outcomes_of_parallel

KEY = key_for_session("the session's cookie value")


def make_user(username: str, clock: FakeClock) -> User:
    user = User(username=username, display_username=username, created_at=clock.now(), updated_at=clock.now())
    user.save()
    return user


def make_transaction(username: str, clock: FakeClock, lifetime: int = 900) -> Transaction:
    txn = Transaction(
        id_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        username=username,
        purpose="signin",
        created_at=clock.now(),
        expires_at=clock.now() + lifetime,
    )
    txn.save()
    return txn


@pytest.fixture
def sms_factor(tables: Tables, clock: FakeClock) -> Factor:
    make_user("alice", clock)
    return make_factor("alice", "sms", clock, phone="+442079460958")


def wrong_code_for(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_code_is_six_digits_and_only_its_hash_is_stored(sms_factor: Factor, clock: FakeClock) -> None:
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)
    stored = Transaction.get(txn.id_hash)
    assert len(code) == 6 and code.isdigit()
    assert code not in str(stored.attribute_values)
    assert stored.code_hash and len(stored.code_hash) == 64
    assert stored.code_expires_at == clock.now() + CODE_TTL_SECONDS <= clock.now() + 300
    assert stored.factor_id == sms_factor.factor_id


def test_nothing_the_tables_hold_is_the_key_of_the_stored_hash(sms_factor: Factor, clock: FakeClock) -> None:
    # With the key in the table, the million possible codes could be tried offline in a second.
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)
    stored = Transaction.get(txn.id_hash)
    assert stored.code_hash == code_hash(KEY, sms_factor.factor_id, code)
    stored_values = [
        str(value)
        for item in (stored, sms_factor, User.get("alice"))
        for value in item.attribute_values.values()
    ]
    for value in stored_values:
        assert code_hash(value.encode(), sms_factor.factor_id, code) != stored.code_hash, value


def test_the_right_code_is_accepted_once_and_then_refused_as_wrong(
    sms_factor: Factor, clock: FakeClock
) -> None:
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)
    verify_code(txn.id_hash, sms_factor, code, key=KEY, clock=clock)
    with pytest.raises(WrongCode) as reused:
        verify_code(txn.id_hash, sms_factor, code, key=KEY, clock=clock)
    assert reused.value.message == WrongCode().message


def test_a_code_from_transaction_a_fails_in_transaction_b(
    sms_factor: Factor, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same code in two sessions' transactions: each is good only where it was sent.
    monkeypatch.setattr(codes, "new_code", lambda: "123456")
    key_a, key_b = key_for_session("session a"), key_for_session("session b")
    txn_a = make_transaction("alice", clock)
    txn_b = make_transaction("alice", clock)
    issue_code(txn_a, sms_factor, key=key_a, clock=clock)
    issue_code(txn_b, sms_factor, key=key_b, clock=clock)
    assert Transaction.get(txn_a.id_hash).code_hash != Transaction.get(txn_b.id_hash).code_hash
    with pytest.raises(WrongCode):
        verify_code(txn_b.id_hash, sms_factor, "123456", key=key_a, clock=clock)
    verify_code(txn_a.id_hash, sms_factor, "123456", key=key_a, clock=clock)


def test_a_code_works_only_for_the_factor_it_was_sent_to(sms_factor: Factor, clock: FakeClock) -> None:
    other = make_factor("alice", "email", clock, email="alice@example.com")
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)
    with pytest.raises(WrongCode):
        verify_code(txn.id_hash, other, code, key=KEY, clock=clock)


def test_an_expired_code_is_refused_with_the_wrong_code_message(sms_factor: Factor, clock: FakeClock) -> None:
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)
    clock.advance(CODE_TTL_SECONDS + 1)
    with pytest.raises(WrongCode) as expired:
        verify_code(txn.id_hash, sms_factor, code, key=KEY, clock=clock)
    assert expired.value.message == "The verification code is not correct."


def test_a_code_is_still_good_just_before_five_minutes(sms_factor: Factor, clock: FakeClock) -> None:
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)
    clock.advance(CODE_TTL_SECONDS - 1)
    verify_code(txn.id_hash, sms_factor, code, key=KEY, clock=clock)


def test_the_sixth_try_is_refused_even_with_the_right_code(sms_factor: Factor, clock: FakeClock) -> None:
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)
    for _ in range(MAX_TRIES):
        with pytest.raises(WrongCode):
            verify_code(txn.id_hash, sms_factor, wrong_code_for(code), key=KEY, clock=clock)
    with pytest.raises(WrongCode):
        verify_code(txn.id_hash, sms_factor, code, key=KEY, clock=clock)
    assert Transaction.get(txn.id_hash).tries == MAX_TRIES


def test_the_fifth_try_may_still_be_right(sms_factor: Factor, clock: FakeClock) -> None:
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)
    for _ in range(MAX_TRIES - 1):
        with pytest.raises(WrongCode):
            verify_code(txn.id_hash, sms_factor, wrong_code_for(code), key=KEY, clock=clock)
    verify_code(txn.id_hash, sms_factor, code, key=KEY, clock=clock)


def test_parallel_wrong_tries_are_all_counted_and_never_exceed_the_limit(
    sms_factor: Factor, clock: FakeClock
) -> None:
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)

    def attempt() -> None:
        verify_code(txn.id_hash, sms_factor, wrong_code_for(code), key=KEY, clock=clock)

    assert outcomes_of_parallel([attempt] * 12, WrongCode) == ["refused"] * 12
    assert Transaction.get(txn.id_hash).tries == MAX_TRIES


def test_parallel_submissions_of_the_right_code_succeed_exactly_once(
    sms_factor: Factor, clock: FakeClock
) -> None:
    txn = make_transaction("alice", clock)
    code = issue_code(txn, sms_factor, key=KEY, clock=clock)

    def attempt() -> None:
        verify_code(txn.id_hash, sms_factor, code, key=KEY, clock=clock)

    assert outcomes_of_parallel([attempt] * 4, WrongCode) == ["ok", "refused", "refused", "refused"]


def test_a_new_code_replaces_the_old_one_and_gets_fresh_tries_but_lockout_counters_stay(
    sms_factor: Factor, clock: FakeClock
) -> None:
    User.get("alice").update(actions=[User.fail_sms.set(3)])
    txn = make_transaction("alice", clock)
    first = issue_code(txn, sms_factor, key=KEY, clock=clock)
    for _ in range(MAX_TRIES):
        with pytest.raises(WrongCode):
            verify_code(txn.id_hash, sms_factor, wrong_code_for(first), key=KEY, clock=clock)
    second = issue_code(txn, sms_factor, key=KEY, clock=clock)
    if second != first:
        with pytest.raises(WrongCode):
            verify_code(txn.id_hash, sms_factor, first, key=KEY, clock=clock)
    verify_code(txn.id_hash, sms_factor, second, key=KEY, clock=clock)
    assert User.get("alice").fail_sms == 3


def test_malformed_codes_are_refused_before_anything_is_written(sms_factor: Factor, clock: FakeClock) -> None:
    txn = make_transaction("alice", clock)
    issue_code(txn, sms_factor, key=KEY, clock=clock)
    for bad in ("12345a", "12345", "1234567", "١٢٣٤٥٦", "1" * 1_000_000, ""):
        with pytest.raises(BadRequest, match="6-digit number"):
            verify_code(txn.id_hash, sms_factor, bad, key=KEY, clock=clock)
    assert Transaction.get(txn.id_hash).tries == 0


def test_an_unknown_transaction_gives_the_wrong_code_message_and_creates_nothing(
    sms_factor: Factor, clock: FakeClock
) -> None:
    unknown = hashlib.sha256(b"nobody").hexdigest()
    with pytest.raises(WrongCode):
        verify_code(unknown, sms_factor, "123456", key=KEY, clock=clock)
    assert Transaction.count(unknown) == 0


def test_no_code_is_issued_for_an_expired_transaction_or_another_users_factor(
    sms_factor: Factor, clock: FakeClock
) -> None:
    txn = make_transaction("alice", clock, lifetime=60)
    make_user("bob", clock)
    bobs = make_factor("bob", "sms", clock, phone="+12015550123")
    with pytest.raises(TransactionExpired):
        issue_code(txn, bobs, key=KEY, clock=clock)
    clock.advance(61)
    with pytest.raises(TransactionExpired):
        issue_code(txn, sms_factor, key=KEY, clock=clock)
    assert Transaction.get(txn.id_hash).code_hash is None
