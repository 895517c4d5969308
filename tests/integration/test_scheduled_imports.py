"""Scheduled imports: the EventBridge rule's "Scheduled Event" reaches the provisioning
function's entry point, which imports every directory whose own schedule is due, from a real
OpenLDAP slapd into moto, with a FakeClock standing in for the passing hours."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.directories import scheduling, store
from tests.helpers.directory_imports import (
    add_directory,
    add_people,
    import_events,
    slapd_delete,
    tick,
    users_of,
)
from tests.support.slapd import Slapd, Subtree, closed_port

HOUR = 3600


@pytest.fixture
def second_tree(slapd: Slapd) -> Iterator[Subtree]:
    with slapd.subtree() as tree:
        yield tree


def test_a_due_directory_is_imported_and_one_not_due_waits_for_its_time(
    slapd: Slapd,
    ldap_tree: Subtree,
    second_tree: Subtree,
    provisioning: ModuleType,
    kms: Any,
    key_id: str,
    clock: FakeClock,
) -> None:
    """Given an hourly directory and a nightly one (02:00 UTC) at 08:00 UTC, the tick imports
    only the hourly one; the nightly one is imported by the first tick after 02:00."""
    assert time.gmtime(clock.now()).tm_hour == 8
    staff = add_people(ldap_tree, "corp", 3)
    ldap_tree.add_group("staff", staff)
    add_people(second_tree, "night", 2)
    add_directory(slapd, ldap_tree, "corp", "rate(1 hour)", kms, key_id, clock)
    add_directory(slapd, second_tree, "nightly", "cron(0 2 * * ? *)", kms, key_id, clock)

    result = tick(provisioning, clock)

    assert (result["ran"], result["skipped"], result["failed"]) == (1, 1, 0)
    corp = result["directories"]["corp"]
    assert (corp["status"], corp["full"], corp["created"], corp["errors"]) == ("ran", True, 3, 0)
    assert result["directories"]["nightly"] == {"status": "skipped", "reason": "not due"}
    assert sorted(users_of("corp")) == ["corp0", "corp1", "corp2"]
    assert all(user.groups == {"staff"} for user in users_of("corp").values())
    assert users_of("nightly") == {}
    (event,) = import_events("corp")
    assert (event.outcome, event.actor, event.details["created"]) == ("success", "scheduler", "3")

    # The ticks until 02:00 the next day leave the nightly directory alone.
    for _ in range(12 * 18 - 1):
        clock.advance(5 * 60)
        assert tick(provisioning, clock)["directories"]["nightly"]["status"] == "skipped"
    assert time.strftime("%H:%M", time.gmtime(clock.now())) == "01:55"
    clock.advance(5 * 60 + 20)  # 02:00:20, a tick slightly late

    result = tick(provisioning, clock)

    nightly = result["directories"]["nightly"]
    assert (nightly["status"], nightly["full"], nightly["created"]) == ("ran", True, 2)
    assert sorted(users_of("nightly")) == ["night0", "night1"]
    clock.advance(5 * 60)
    assert tick(provisioning, clock)["directories"]["nightly"] == {"status": "skipped", "reason": "not due"}
    # The hourly directory ran once an hour meanwhile: 18 runs after the first.
    assert len(import_events("corp")) == 19


def test_the_first_run_is_full_then_incremental_within_a_day_then_full_again(
    slapd: Slapd, ldap_tree: Subtree, provisioning: ModuleType, kms: Any, key_id: str, clock: FakeClock
) -> None:
    dns = add_people(ldap_tree, "u", 4)
    add_directory(slapd, ldap_tree, "corp", "rate(1 hour)", kms, key_id, clock)

    first = tick(provisioning, clock)["directories"]["corp"]
    assert (first["full"], first["created"]) == (True, 4)

    # Deleted from the directory: an incremental run cannot see a deletion.
    slapd_delete(slapd, dns[0])
    clock.advance(HOUR)
    second = tick(provisioning, clock)["directories"]["corp"]
    assert (second["status"], second["full"], second["disabled"]) == ("ran", False, 0)
    assert not users_of("corp")["u0"].disabled

    clock.advance(21 * HOUR)  # 22 hours after the full run finished
    assert tick(provisioning, clock)["directories"]["corp"]["full"] is False

    clock.advance(2 * HOUR)  # a day after it
    fourth = tick(provisioning, clock)["directories"]["corp"]
    assert (fourth["status"], fourth["full"], fourth["disabled"], fourth["unchanged"]) == ("ran", True, 1, 3)
    assert users_of("corp")["u0"].disabled
    item = store.get_directory("corp")
    assert item.last_full_at == clock.now()
    assert item.last_scheduled_at == clock.now()
    assert item.running_until is None

    clock.advance(HOUR)
    assert tick(provisioning, clock)["directories"]["corp"]["full"] is False


def test_a_full_run_started_by_hand_counts_as_the_days_full_run(
    slapd: Slapd, ldap_tree: Subtree, provisioning: ModuleType, kms: Any, key_id: str, clock: FakeClock
) -> None:
    """`idp directory sync --full` (or the console's button) an hour ago: the next scheduled
    run is incremental."""
    from idp_core.directories import imports

    add_people(ldap_tree, "u", 2)
    add_directory(slapd, ldap_tree, "corp", "rate(1 hour)", kms, key_id, clock)
    imports.run_import("corp", full=True, kms=kms, clock=clock)
    clock.advance(HOUR)

    outcome = tick(provisioning, clock)["directories"]["corp"]

    # Incremental: it reads only what changed since that run, and nothing did.
    assert (outcome["status"], outcome["full"], outcome["created"], outcome["updated"]) == (
        "ran",
        False,
        0,
        0,
    )


def test_a_failing_directory_does_not_stop_another(
    slapd: Slapd,
    ldap_tree: Subtree,
    second_tree: Subtree,
    provisioning: ModuleType,
    kms: Any,
    key_id: str,
    clock: FakeClock,
) -> None:
    add_people(ldap_tree, "corp", 2)
    add_directory(
        slapd,
        second_tree,
        "broken",
        "rate(1 hour)",
        kms,
        key_id,
        clock,
        urls=(f"ldap://127.0.0.1:{closed_port()}",),
    )
    add_directory(slapd, ldap_tree, "corp", "rate(1 hour)", kms, key_id, clock)

    result = tick(provisioning, clock)

    assert (result["ran"], result["failed"]) == (1, 1)
    broken = result["directories"]["broken"]
    assert (broken["status"], broken["full"]) == ("failed", True)
    assert "127.0.0.1" in broken["reason"]
    assert result["directories"]["corp"]["created"] == 2
    assert sorted(users_of("corp")) == ["corp0", "corp1"]
    (failure,) = import_events("broken")
    assert (failure.outcome, failure.actor) == ("failure", "scheduler")
    # The failed run released its lock and counts as this hour's run: no retry every tick.
    item = store.get_directory("broken")
    assert (item.running_until, item.last_scheduled_at, item.last_full_at) == (None, clock.now(), None)
    clock.advance(5 * 60)
    assert tick(provisioning, clock)["directories"]["broken"] == {"status": "skipped", "reason": "not due"}
    # Its next run is full again: no full run has finished yet.
    clock.advance(HOUR)
    assert tick(provisioning, clock)["directories"]["broken"]["full"] is True


def test_the_lock_keeps_a_second_tick_from_importing_a_directory_being_imported(
    slapd: Slapd, ldap_tree: Subtree, provisioning: ModuleType, kms: Any, key_id: str, clock: FakeClock
) -> None:
    add_people(ldap_tree, "u", 2)
    add_directory(slapd, ldap_tree, "corp", "rate(5 minutes)", kms, key_id, clock)
    # Another tick has taken the lock and is still importing when the next tick comes.
    held_until = scheduling.take_lock(store.get_directory("corp"), clock.now())
    assert held_until == clock.now() + scheduling.LOCK_SECONDS
    clock.advance(5 * 60)

    result = tick(provisioning, clock)

    assert result["directories"]["corp"] == {"status": "skipped", "reason": "already running"}
    assert users_of("corp") == {}
    assert store.get_directory("corp").running_until == held_until
    # A run the Lambda timeout killed leaves the lock until it expires; then the next tick runs.
    clock.advance(10 * 60)
    assert tick(provisioning, clock)["directories"]["corp"]["reason"] == "already running"
    clock.advance(5 * 60)
    assert clock.now() > held_until
    outcome = tick(provisioning, clock)["directories"]["corp"]
    assert (outcome["status"], outcome["created"]) == ("ran", 2)
    assert store.get_directory("corp").running_until is None


def test_a_tick_that_read_the_directory_before_another_ran_it_does_not_run_it_again(
    slapd: Slapd, ldap_tree: Subtree, kms: Any, key_id: str, clock: FakeClock, tables: Tables
) -> None:
    """Two overlapping ticks read the directory as due; the first takes and releases the lock;
    the second, with its stale copy, finds the slot taken."""
    add_directory(slapd, ldap_tree, "corp", "rate(1 hour)", kms, key_id, clock)
    seen_by_first = store.get_directory("corp")
    seen_by_second = store.get_directory("corp")

    until = scheduling.take_lock(seen_by_first, clock.now())
    assert until is not None
    scheduling.release_lock("corp", until)

    assert scheduling.take_lock(seen_by_second, clock.now() + 1) is None
    assert store.get_directory("corp").last_scheduled_at == clock.now()


def test_a_directory_without_a_schedule_never_runs(
    slapd: Slapd, ldap_tree: Subtree, provisioning: ModuleType, kms: Any, key_id: str, clock: FakeClock
) -> None:
    add_people(ldap_tree, "u", 2)
    add_directory(slapd, ldap_tree, "manual", None, kms, key_id, clock)

    for _ in range(3):
        result = tick(provisioning, clock)
        assert result["directories"]["manual"] == {"status": "skipped", "reason": "no schedule"}
        assert (result["ran"], result["skipped"], result["failed"]) == (0, 1, 0)
        clock.advance(25 * HOUR)

    assert users_of("manual") == {}
    assert import_events("manual") == []
    item = store.get_directory("manual")
    assert (item.last_scheduled_at, item.running_until, item.last_run) == (None, None, None)


def test_changing_a_directorys_settings_keeps_its_schedule_state(
    slapd: Slapd, ldap_tree: Subtree, provisioning: ModuleType, kms: Any, key_id: str, clock: FakeClock
) -> None:
    """An admin's save replaces the settings, not the record of the runs: the next tick
    neither runs early nor forgets the day's full run."""
    add_people(ldap_tree, "u", 1)
    settings = add_directory(slapd, ldap_tree, "corp", "rate(1 hour)", kms, key_id, clock)
    tick(provisioning, clock)
    clock.advance(10 * 60)
    store.save_directory(
        dataclasses.replace(store.load("corp"), display_name="Corp (renamed)"),
        create=False,
        clock=clock,
    )
    assert settings.display_name != store.load("corp").display_name

    assert tick(provisioning, clock)["directories"]["corp"] == {"status": "skipped", "reason": "not due"}
    clock.advance(HOUR)
    assert tick(provisioning, clock)["directories"]["corp"]["full"] is False
