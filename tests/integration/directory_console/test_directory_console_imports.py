"""The user store page's "Import now": a request that the next tick of the provisioning
schedule runs, with its counts on the page afterwards; full and incremental requests, a
request made during a running import, and an unreachable directory's reason."""

from __future__ import annotations

import re

import lxml.html
import pytest
import requests

from idp_core.clock import readable_utc
from idp_core.directories import scheduling
from idp_core.models import Directory, User
from tests.helpers.console import submit, text_of
from tests.helpers.directory_console import (
    audit_events,
    create_corp,
    notice_of,
)
from tests.helpers.directory_imports import slapd_delete, tick
from tests.helpers.sso import Sso
from tests.support.slapd import Slapd, Subtree, closed_port

pytestmark = pytest.mark.sso_setup("password_only")


REQUESTED = (
    "Import requested: it starts within 5 minutes, at the next scheduled check; "
    "this page shows its counts when it has run."
)


def request_import(sso: Sso, admin: requests.Session, **fields: str) -> requests.Response:
    """Press "Import now" on corp's page (ticking Full import with full="on")."""
    pressed = submit(sso, admin, "/admin/directories/corp/import", fields, page="/admin/directories/corp")
    assert pressed.status_code == 303, text_of(pressed)[:3000]
    assert pressed.headers["Location"] == "/admin/directories/corp?notice=import-requested"
    return pressed


def last_run_facts(page: requests.Response) -> dict[str, str]:
    (facts,) = lxml.html.fromstring(page.text).xpath("//section[@aria-labelledby='last-run-heading']/dl")
    return dict(zip(facts.xpath("./dt/text()"), facts.xpath("./dd/text()"), strict=True))


def text_by_id(page: requests.Response, element_id: str) -> str | None:
    found = lxml.html.fromstring(page.text).xpath(f"//*[@id='{element_id}']")
    return " ".join(found[0].text_content().split()) if found else None


def list_cell(sso: Sso, admin: requests.Session) -> str:
    """The Last import cell of corp's row in the list of user stores."""
    (row,) = lxml.html.fromstring(sso.get(admin, "/admin/directories").text).xpath("//tbody/tr")
    return " ".join(row[-1].text_content().split())


def corp_users() -> set[str]:
    return {user.username for user in User.scan() if user.source == "ldap:corp"}


def test_import_now_is_a_request_the_next_tick_runs_and_the_page_then_shows_the_counts(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    """A directory without a schedule: the button records the request and imports nothing;
    the next Scheduled Event runs it in the admin's name."""
    create_corp(sso, admin, slapd, ldap_tree)
    page = sso.get(admin, "/admin/directories/corp")
    assert "No import has run yet." in page.text and "It runs in the background" in page.text
    assert text_by_id(page, "import-pending") is None

    pressed = request_import(sso, admin, full="on")

    shown = sso.get(admin, pressed.headers["Location"])
    assert notice_of(shown) == REQUESTED
    requested_at = readable_utc(sso.clock.now())
    assert text_by_id(shown, "import-pending") == (
        f"A full import was requested at {requested_at} by root; it starts at the next scheduled check."
    )
    assert "No import has run yet." in shown.text
    assert list_cell(sso, admin) == f"Never; full import requested at {requested_at} by root"
    assert corp_users() == set()
    item = Directory.get("corp")
    assert (item.import_requested_at, item.import_requested_full, item.import_requested_by) == (
        sso.clock.now(),
        True,
        "root",
    )
    (requested,) = audit_events("directory.import_requested")
    assert (requested.actor, requested.subject, requested.details["full"]) == ("root", "corp", "True")
    assert audit_events("directory.import") == []

    sso.clock.advance(3 * 60)
    result = tick(sso.provisioning_handler, sso.clock)

    corp = result["directories"]["corp"]
    assert (corp["status"], corp["full"], corp["requested_by"], corp["created"]) == ("ran", True, "root", 2)
    assert corp_users() == {"alice", "bob"}
    assert User.get("alice").groups == {"engineers"}
    shown = sso.get(admin, "/admin/directories/corp")
    assert text_by_id(shown, "import-pending") is None and text_by_id(shown, "import-running") is None
    pairs = last_run_facts(shown)
    assert pairs["Kind of run"] == "Full" and pairs["Finished"] == readable_utc(sso.clock.now())
    assert (pairs["Created"], pairs["Updated"], pairs["Disabled"], pairs["Unchanged"], pairs["Errors"]) == (
        "2",
        "0",
        "0",
        "0",
        "0",
    )
    (event,) = audit_events("directory.import")
    assert event.actor == "root" and event.outcome == "success" and event.details["full"] == "True"
    item = Directory.get("corp")
    # The request is served and the lock released; a directory without a schedule has no slot.
    assert (item.import_requested_at, item.running_until, item.last_scheduled_at) == (None, None, None)
    assert item.last_full_at == sso.clock.now()

    # Nothing is pending: the next tick leaves the directory alone.
    sso.clock.advance(5 * 60)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"] == {
        "status": "skipped",
        "reason": "no schedule",
    }

    # An incremental request changes nothing (it may re-read entries at the watermark's
    # second); the list shows its counts.
    sso.clock.advance(60)
    request_import(sso, admin)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]["full"] is False
    assert re.fullmatch(
        r"[0-9-]{10} [0-9:]{5} UTC, incremental: 0 created, 0 updated, 0 disabled, [0-2] unchanged, 0 errors",
        list_cell(sso, admin),
    ), list_cell(sso, admin)


def test_a_full_request_runs_full_and_a_second_request_only_makes_a_pending_one_full(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    request_import(sso, admin)
    tick(sso.provisioning_handler, sso.clock)  # the first run is full: none has run yet
    slapd_delete(slapd, people["bob"])
    sso.clock.advance(60)

    # Incremental requested: an incremental run cannot see that bob is gone.
    request_import(sso, admin)
    incremental = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]
    assert (incremental["full"], incremental["disabled"]) == (False, 0)
    assert not User.get("bob").disabled

    sso.clock.advance(60)
    first_at = sso.clock.now()
    request_import(sso, admin)
    sso.clock.advance(60)
    request_import(sso, admin, full="on")
    sso.clock.advance(60)
    request_import(sso, admin)
    item = Directory.get("corp")
    # One pending request, from the first press, made full by the second.
    assert (item.import_requested_at, item.import_requested_full) == (first_at, True)
    pending = text_by_id(sso.get(admin, "/admin/directories/corp"), "import-pending")
    assert pending == (
        f"A full import was requested at {readable_utc(first_at)} by root; "
        "it starts at the next scheduled check."
    )

    full = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]

    assert (full["status"], full["full"], full["disabled"]) == ("ran", True, 1)
    assert User.get("bob").disabled
    assert [e.details["full"] for e in audit_events("directory.import_requested")] == [
        "False",
        "False",
        "False",
        "True",
        "False",
    ]
    assert len(audit_events("directory.import")) == 3
    sso.clock.advance(5 * 60)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]["status"] == "skipped"


def test_a_request_made_during_a_running_import_waits_for_the_next_tick(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    """A tick serves the first request and holds the lock; the admin presses again meanwhile:
    the following ticks wait for the lock, then run the second request."""
    create_corp(sso, admin, slapd, ldap_tree)
    request_import(sso, admin)
    started = sso.clock.now()
    # A tick has taken the lock for the first request and is importing.
    held = scheduling.take_lock(Directory.get("corp"), started, slot=False, request=True)
    assert held is not None and Directory.get("corp").import_requested_at is None
    sso.clock.advance(60)
    request_import(sso, admin, full="on")

    page = sso.get(admin, "/admin/directories/corp")
    assert text_by_id(page, "import-running") == f"An import is running since {readable_utc(started)}."
    assert text_by_id(page, "import-pending") == (
        f"A full import was requested at {readable_utc(sso.clock.now())} by root; "
        "it starts at the next scheduled check after the running import."
    )
    requested_at = readable_utc(sso.clock.now())
    assert list_cell(sso, admin).endswith(
        f"running since {readable_utc(started)}; full import requested at {requested_at} by root"
    )
    sso.clock.advance(4 * 60)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"] == {
        "status": "skipped",
        "reason": "already running",
    }
    assert corp_users() == set() and Directory.get("corp").import_requested_full is True

    scheduling.release_lock("corp", held)
    sso.clock.advance(5 * 60)
    outcome = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]

    assert (outcome["status"], outcome["full"], outcome["created"]) == ("ran", True, 2)
    assert corp_users() == {"alice", "bob"}
    assert Directory.get("corp").import_requested_at is None


def test_a_tick_that_read_an_older_request_does_not_clear_a_newer_one(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    """Two overlapping ticks read the first request; the first serves it and the admin asks
    again: the second tick's stale copy takes neither the lock nor the new request."""
    create_corp(sso, admin, slapd, ldap_tree)
    request_import(sso, admin)
    seen_by_first = Directory.get("corp")
    seen_by_second = Directory.get("corp")
    until = scheduling.take_lock(seen_by_first, sso.clock.now(), slot=False, request=True)
    assert until is not None
    scheduling.release_lock("corp", until)
    sso.clock.advance(60)
    request_import(sso, admin)

    assert scheduling.take_lock(seen_by_second, sso.clock.now(), slot=False, request=True) is None
    assert Directory.get("corp").import_requested_at == sso.clock.now()


def test_a_requested_run_does_not_move_the_directorys_schedule(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    """An hourly directory: a tick that finds its slot due and a request pending serves both
    with one run; a request later in the hour runs without moving the next slot."""
    create_corp(sso, admin, slapd, ldap_tree, schedule="rate(1 hour)")
    request_import(sso, admin)
    first = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]
    assert (first["status"], first["created"], first["requested_by"]) == ("ran", 2, "root")
    slot = Directory.get("corp").last_scheduled_at
    assert slot == sso.clock.now() and Directory.get("corp").import_requested_at is None

    sso.clock.advance(10 * 60)
    request_import(sso, admin)
    requested = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]

    assert (requested["status"], requested["requested_by"]) == ("ran", "root")
    assert Directory.get("corp").last_scheduled_at == slot
    # The next slot is still an hour after the first run, not after the requested one.
    sso.clock.advance(45 * 60)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]["reason"] == "not due"
    sso.clock.advance(5 * 60)
    scheduled = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]
    assert scheduled["status"] == "ran" and "requested_by" not in scheduled
    assert Directory.get("corp").last_scheduled_at == sso.clock.now()
    assert [e.actor for e in audit_events("directory.import")] == ["root", "root", "scheduler"]


def test_a_requested_import_of_an_unreachable_directory_shows_the_reason(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    port = closed_port()
    create_corp(sso, admin, slapd, ldap_tree, urls=f"ldap://127.0.0.1:{port}")
    request_import(sso, admin, full="on")

    failed = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]

    assert (failed["status"], failed["requested_by"]) == ("failed", "root")
    page = sso.get(admin, "/admin/directories/corp")
    failure = text_by_id(page, "last-failure") or ""
    assert failure.startswith(
        f"The full import at {readable_utc(sso.clock.now())} failed: No directory server could be reached "
        f"(ldap://127.0.0.1:{port}"
    ), failure
    assert "last failure:" in list_cell(sso, admin)
    item = Directory.get("corp")
    assert (item.last_run, item.import_requested_at, item.running_until) == (None, None, None)
    (event,) = audit_events("directory.import")
    assert event.outcome == "failure" and event.actor == "root"


# ---------------------------------------------------------------- who may use the console
