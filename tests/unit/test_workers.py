"""The local stack's execution environments (``idp_local.workers``): a pool of worker
processes per function, each with its own module state, one event at a time, in parallel
across workers, replaced when they crash or time out, gone when the pool or its parent is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idp_core.clock import FakeClock
from idp_core.config import Settings, Tables
from idp_local.gateway import FunctionError, FunctionTimedOut, Invocation
from idp_local.workers import WorkerPool, WorkerStartFailed, warm_up, workers_setting
from tests.helpers.local_stack import is_alive, still_alive_after

REPO = Path(__file__).resolve().parents[2]
HANDLERS = "tests.support.worker_handlers"
# The settings a worker validates when a pool pins its clock (the handler's configure).
SETTINGS_ENV = Settings(tables=Tables.with_prefix("unit-"), signing_key_id="unused").to_env()


def pool_of(size: int, **options: Any) -> WorkerPool:
    env = {**SETTINGS_ENV, "WORKER_TEST_MARK": "given by the pool"}
    return WorkerPool("sso", env, size=size, module=options.pop("module", HANDLERS), **options)


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    workers = pool_of(2)
    try:
        yield workers
    finally:
        workers.close()


def call(pool: WorkerPool, action: str = "answer", timeout: float = 30.0, **fields: Any) -> Invocation:
    return pool.invoke({"action": action, **fields}, timeout)


def in_parallel(pool: WorkerPool, count: int, **fields: Any) -> list[Invocation]:
    barrier = threading.Barrier(count)
    results: list[Invocation] = []

    def run() -> None:
        barrier.wait(timeout=30)
        results.append(call(pool, **fields))

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == count
    return results


def test_a_warm_worker_keeps_its_module_state_and_gets_the_pools_environment(pool: WorkerPool) -> None:
    first = call(pool).result
    second = call(pool).result

    assert first["pid"] == second["pid"] != os.getpid()
    assert (first["invocations"], second["invocations"]) == (1, 2)
    assert first["environment"] == "given by the pool"
    assert first["function"] == "idp-local-sso"


def test_parallel_events_run_at_the_same_time_in_separate_workers_up_to_the_pool_size(
    pool: WorkerPool,
) -> None:
    runs = in_parallel(pool, 4, action="work")

    assert len({run.worker for run in runs}) == 2  # A third and fourth waited for a free worker.
    assert sorted(pool.pids) == sorted({run.worker for run in runs})
    pairs = [(a, b) for a in runs for b in runs if a is not b]
    # One event at a time in each worker: a worker's runs never overlap, while two
    # workers' runs do.
    assert not any(overlap(a, b) for a, b in pairs if a.worker == b.worker)
    assert any(overlap(a, b) for a, b in pairs if a.worker != b.worker)


def overlap(a: Invocation, b: Invocation) -> bool:
    return a.started < b.ended and b.started < a.ended


def test_a_worker_that_crashes_answers_an_error_and_is_replaced(pool: WorkerPool) -> None:
    before = call(pool).worker

    with pytest.raises(FunctionError, match=r"died \(exit status 3\)"):
        call(pool, "crash")
    after = call(pool)

    assert after.worker != before and after.result["invocations"] == 1
    assert still_alive_after([before]) == []


def test_a_handler_that_raises_answers_an_error_and_its_worker_stays_warm(pool: WorkerPool) -> None:
    before = call(pool).worker

    with pytest.raises(FunctionError, match="the handler failed on purpose"):
        call(pool, "raise")
    with pytest.raises(FunctionError, match="answer cannot be sent"):
        call(pool, "unsendable")

    after = call(pool)
    assert after.worker == before and after.result["invocations"] == 4


def test_a_worker_past_the_timeout_is_killed_and_replaced(pool: WorkerPool) -> None:
    warm = call(pool).worker  # The hanging event goes to this warm worker.

    started = time.monotonic()
    with pytest.raises(FunctionTimedOut, match=f"worker {warm} did not answer within 1 s"):
        call(pool, "hang", timeout=1.0)

    assert time.monotonic() - started < 10
    assert pool.pids == [] and still_alive_after([warm]) == []
    replacement = call(pool)
    assert replacement.worker != warm and replacement.result["invocations"] == 1


def test_a_handler_that_cannot_start_fails_with_its_reason() -> None:
    broken = pool_of(1, module="tests.support.broken_handler")
    try:
        with pytest.raises(WorkerStartFailed, match="SIGNING_KEY_ID is not set"):
            warm_up([broken])
        with pytest.raises(WorkerStartFailed, match="SIGNING_KEY_ID is not set"):
            call(broken)
        assert broken.pids == []
    finally:
        broken.close()


def test_workers_read_the_time_the_pools_clock_had_when_the_event_was_sent() -> None:
    clock = FakeClock()
    pinned = pool_of(1, clock=clock)
    try:
        assert call(pinned).result["now"] == clock.now()
        clock.advance(301)
        assert call(pinned).result["now"] == 1_800_000_301.0
    finally:
        pinned.close()


def test_recycle_gives_the_next_events_new_workers_with_fresh_state(pool: WorkerPool) -> None:
    old = call(pool)
    call(pool)

    pool.recycle()
    new = call(pool)

    assert new.worker != old.worker and new.result["invocations"] == 1
    assert still_alive_after([old.worker]) == []


def test_close_stops_every_worker(pool: WorkerPool) -> None:
    workers = {run.worker for run in in_parallel(pool, 2, action="work")}
    assert len(workers) == 2

    pool.close()

    assert still_alive_after(list(workers)) == []
    with pytest.raises(FunctionError, match="stopping"):
        call(pool)


ORPHAN_SCRIPT = """
import sys
from idp_local.workers import WorkerPool, warm_up

if __name__ == "__main__":
    pools = [WorkerPool(name, {}, module="tests.support.worker_handlers") for name in ("sso", "otp")]
    warm_up(pools)
    print(" ".join(str(pid) for pool in pools for pid in pool.pids), flush=True)
    sys.stdin.read()  # Until the test kills this process.
"""


def test_workers_leave_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(ORPHAN_SCRIPT, encoding="utf-8")
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert parent.stdout is not None
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(is_alive(pid) for pid in workers)

        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)

        assert still_alive_after(workers) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.parametrize("raw", ["0", "65", "four", "-1", "2.5"])
def test_a_bad_worker_count_is_refused_in_one_sentence(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^IDP_WORKERS must be a whole number from 1 to 64, got "):
        workers_setting(raw)


def test_the_worker_count_defaults_to_four_and_reads_the_setting() -> None:
    assert (workers_setting(None), workers_setting(""), workers_setting(" 2 ")) == (4, 4, 2)
