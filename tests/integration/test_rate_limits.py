"""Rate limits (S9): atomic, windowed, and a refused attempt never counts."""

from __future__ import annotations

import pytest

from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.mfa import SendRefused
from idp_core.mfa.ratelimit import HOUR, Guard, Limit, LimitReached, consume_all, counter_key
from idp_core.models import RateCounter, Transaction
from tests.support.parallel import outcomes_of_parallel


def consume(
    key: str, *, limit: int, window_seconds: int, clock: FakeClock, description: str = "requests were made"
) -> None:
    """One hit on one limit (the sends count several at once through ``consume_all``)."""
    consume_all(
        [Limit(key=key, limit=limit, window_seconds=window_seconds, description=description)], clock=clock
    )


def hits(key: str, window: int, clock: FakeClock) -> int:
    try:
        return int(RateCounter.get(counter_key(key, window, clock.now())).hits)
    except RateCounter.DoesNotExist:
        return 0


@pytest.mark.usefixtures("tables")
def test_consume_allows_the_limit_then_refuses_with_when_to_retry(clock: FakeClock) -> None:
    for _ in range(3):
        consume("sms:user:alice", limit=3, window_seconds=HOUR, clock=clock, description="codes were sent")
    clock.advance(60 * 20)
    with pytest.raises(SendRefused) as refused:
        consume("sms:user:alice", limit=3, window_seconds=HOUR, clock=clock, description="codes were sent")
    assert refused.value.status == 429
    assert refused.value.message == "Too many codes were sent: at most 3 an hour. Try again in 40 minutes."
    assert hits("sms:user:alice", HOUR, clock) == 3  # the refused attempt did not count


@pytest.mark.usefixtures("tables")
def test_a_new_window_starts_a_new_count_that_expires_with_the_window(clock: FakeClock) -> None:
    consume("k", limit=1, window_seconds=HOUR, clock=clock)
    with pytest.raises(SendRefused):
        consume("k", limit=1, window_seconds=HOUR, clock=clock)
    clock.advance(HOUR)
    consume("k", limit=1, window_seconds=HOUR, clock=clock)
    counter = RateCounter.get(counter_key("k", HOUR, clock.now()))
    assert counter.hits == 1
    assert int(counter.expires_at) == int(clock.now() // HOUR) * HOUR + HOUR  # TTL: the end of the window


@pytest.mark.usefixtures("tables")
def test_parallel_hits_never_exceed_the_limit(clock: FakeClock) -> None:
    def hit() -> None:
        consume("sms:ip:192.0.2.1", limit=5, window_seconds=HOUR, clock=clock)

    outcomes = outcomes_of_parallel([hit] * 12, SendRefused)
    assert outcomes.count("ok") == 5 and outcomes.count("refused") == 7
    assert hits("sms:ip:192.0.2.1", HOUR, clock) == 5


@pytest.mark.usefixtures("tables")
def test_when_a_later_limit_refuses_no_earlier_counter_moves(clock: FakeClock) -> None:
    first = Limit("a", 10, HOUR, "things happened", "first")
    second = Limit("b", 1, HOUR, "other things happened", "second")
    consume_all([first, second], clock=clock)
    with pytest.raises(LimitReached) as refused:
        consume_all([first, second], clock=clock)
    assert refused.value.reason == "second"
    assert refused.value.message.startswith("Too many other things happened: at most 1 an hour.")
    assert hits("a", HOUR, clock) == 1
    assert hits("b", HOUR, clock) == 1


@pytest.mark.usefixtures("tables")
def test_a_failing_guard_refuses_with_its_own_message_and_no_counter_moves(clock: FakeClock) -> None:
    txn = Transaction(id_hash="t1", username="alice", purpose="signin", created_at=0, expires_at=1, sends=0)
    txn.save()
    guard = Guard(
        item=Transaction(id_hash="t1"),
        actions=[Transaction.sends.add(1)],
        condition=Transaction.expires_at > clock.now(),
        refusal="This step has expired.",
        name="expired",
    )
    with pytest.raises(LimitReached) as refused:
        consume_all([Limit("a", 10, HOUR)], clock=clock, guards=[guard])
    assert (refused.value.reason, refused.value.message) == ("expired", "This step has expired.")
    assert hits("a", HOUR, clock) == 0
    assert Transaction.get("t1").sends == 0


def test_a_limit_of_zero_refuses_without_writing(tables: Tables, clock: FakeClock) -> None:
    with pytest.raises(SendRefused, match="at most 0 a day"):
        consume_all([Limit("z", 0, 24 * HOUR)], clock=clock)
    assert hits("z", 24 * HOUR, clock) == 0
