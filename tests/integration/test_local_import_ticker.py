"""The local stack's stand-in for the EventBridge rule of the scheduled imports
(``idp_local.stack.ImportTicker``): each loop delivers a real-shaped "Scheduled Event" to the
provisioning function, which imports from a real slapd into moto; a failing tick is logged
and the loop goes on. The loop's wait is injected, so no test sleeps."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from idp_cli.main import main
from idp_core.audit import AuditContext
from idp_core.clock import FakeClock
from idp_core.directories import scheduling
from idp_core.models import AuditEvent
from idp_local.stack import DEFAULT_TICK_SECONDS, ImportTicker
from tests.helpers.directory_imports import add_directory, add_people, users_of
from tests.support.slapd import Slapd, Subtree


def stop_after(loops: int, waited: list[float]) -> Callable[[float], bool]:
    """A wait that returns at once: ``loops`` times "go on", then "stop"; records the intervals."""
    answers: Iterator[bool] = iter([False] * loops + [True])

    def wait(seconds: float) -> bool:
        waited.append(seconds)
        return next(answers)

    return wait


def test_one_loop_delivers_a_scheduled_event_that_runs_the_requested_import(
    slapd: Slapd,
    ldap_tree: Subtree,
    provisioning: ModuleType,
    kms: Any,
    key_id: str,
    clock: FakeClock,
) -> None:
    add_people(ldap_tree, "u", 2)
    add_directory(slapd, ldap_tree, "corp", None, kms, key_id, clock)
    scheduling.request_import("corp", full=True, context=AuditContext(actor="root"), clock=clock)
    waited: list[float] = []
    ticker = ImportTicker(provisioning.lambda_handler, wait=stop_after(1, waited), now=clock.now)

    ticker.run()

    assert waited == [DEFAULT_TICK_SECONDS, DEFAULT_TICK_SECONDS]
    assert sorted(users_of("corp")) == ["u0", "u1"]
    (event,) = [e for e in AuditEvent.scan() if e.type == "directory.import"]
    assert (event.outcome, event.actor, event.details["full"]) == ("success", "root", "True")


def test_a_failing_tick_is_logged_and_the_next_loop_still_ticks(
    slapd: Slapd,
    ldap_tree: Subtree,
    provisioning: ModuleType,
    kms: Any,
    key_id: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_people(ldap_tree, "u", 1)
    add_directory(slapd, ldap_tree, "corp", "rate(1 hour)", kms, key_id, clock)
    delivered: list[dict[str, Any]] = []

    def first_invocation_fails(event: dict[str, Any], context: Any) -> Any:
        # The Lambda invocation itself failing (a throttle, a crash), not a directory's import.
        delivered.append(event)
        if len(delivered) == 1:
            raise RuntimeError("the first invocation failed")
        return provisioning.lambda_handler(event, context)

    ticker = ImportTicker(first_invocation_fails, 30, wait=stop_after(2, []), now=clock.now)

    with caplog.at_level(logging.INFO, logger="idp.local"):
        ticker.run()

    assert len(delivered) == 2
    for event in delivered:
        assert (event["source"], event["detail-type"], event["detail"]) == (
            "aws.events",
            "Scheduled Event",
            {},
        )
        assert event["resources"][0].startswith("arn:aws:events:") and event["time"].endswith("Z")
    (failure,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure.getMessage() == "the scheduled imports' tick failed"
    assert failure.exc_info is not None and str(failure.exc_info[1]) == "the first invocation failed"
    assert sorted(users_of("corp")) == ["u0"]
    assert any('"status": "ran"' in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_the_ticker_thread_stops_when_told_without_waiting_for_its_interval() -> None:
    delivered: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        delivered.append(event)
        return {}

    ticker = ImportTicker(handler, 3600)
    ticker.start()
    assert ticker.running

    ticker.stop(timeout=10)

    assert not ticker.running and delivered == []


def test_a_negative_tick_interval_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "--tick-seconds", "-5"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "idp: --tick-seconds must be 0 (no ticks) or more, got -5.\n")
