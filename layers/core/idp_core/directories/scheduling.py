"""Directory imports in the background: at each tick of the EventBridge rule, run every
directory whose own schedule is due (issue 5, "a per-directory EventBridge schedule") or
whose import an admin requested with the console's "Import now".

API Gateway ends every request after 29 seconds, so the console's button only records the
request (``request_import``) and the next tick runs it, like a due slot but whatever the
schedule. Every run holds the directory's lock (``running_until``), taken with one
conditional update: two overlapping ticks never import one directory at once, never both
run the same due slot (``last_scheduled_at``) or the same request (``import_requested_at``),
and ``idp directory sync`` (``run_import_now``) waits for none of them but refuses to overlap.
A requested run leaves ``last_scheduled_at`` alone, so it never shifts the directory's own
schedule; a tick that finds both due serves both with one run.

The run is full when requested so, or when the last full run finished about a day ago or
never (deletions are found at least daily), otherwise incremental. One directory's failure
is logged, audited (the import audits its own failures) and recorded for the console, and
does not stop the others. The lock is released at the end; a run the Lambda timeout kills
leaves it until it expires.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from idp_core import audit, observability
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.directories import store
from idp_core.directories.errors import DirectoryError
from idp_core.directories.schedule import is_due
from idp_core.directories.settings import DirectorySettings, clean_name
from idp_core.directories.welcome import NO_WELCOME_MAIL, WelcomeMail
from idp_core.errors import Conflict, IdpError, NotFound
from idp_core.models import Directory, condition_failed

if TYPE_CHECKING:
    from idp_core.directories.imports import RunCounts

_LOG = observability.logger

# The provisioning function runs at most 15 minutes; a lock outlives it by a minute, so a
# run killed by the timeout blocks its directory no longer than that.
LOCK_SECONDS = 16 * 60
# A little under a day: a daily schedule starts each run a few seconds after the previous
# full one finished a day earlier, and must still run full every day.
FULL_RUN_EVERY_SECONDS = 23 * 3600
# Who the audit trail names for the runs nobody started by hand.
SCHEDULER = AuditContext(actor="scheduler")
RAN, SKIPPED, FAILED = "ran", "skipped", "failed"


@dataclass(frozen=True)
class Outcome:
    """What one tick did with one directory."""

    name: str
    status: str  # RAN, SKIPPED or FAILED
    reason: str | None = None
    full: bool | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    # The admin whose "Import now" the run served, if it served one.
    requested_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status}
        if self.reason is not None:
            data["reason"] = self.reason
        if self.full is not None:
            data["full"] = self.full
        if self.requested_by is not None:
            data["requested_by"] = self.requested_by
        return {**data, **self.counts}


@dataclass(frozen=True)
class ImportRequest:
    """An "Import now" waiting for the next tick."""

    requested_at: float
    full: bool
    requested_by: str | None


@dataclass(frozen=True)
class Failure:
    """The last run of a directory that failed, until a run succeeds."""

    failed_at: float
    full: bool
    reason: str


# ---------------------------------------------------------------- the console's "Import now"


def request_import(
    name: str, *, full: bool, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> ImportRequest:
    """Ask the next tick to import the directory ``name``; the request pending afterwards.

    A request made while another is pending keeps that one (its time and admin) and can only
    make it full: one run serves both. Audited as ``directory.import_requested``.
    """
    now = clock.now()
    item = Directory(clean_name(name))
    actor = context.actor if context else None
    # if_not_exists keeps a pending request; a full request upgrades an incremental one.
    actions: list[Action] = [
        Directory.import_requested_at.set(Directory.import_requested_at | now),
        Directory.import_requested_full.set(True if full else Directory.import_requested_full | False),
    ]
    if actor:
        actions.append(Directory.import_requested_by.set(Directory.import_requested_by | actor))
    try:
        item.update(actions=actions, condition=Directory.name.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no directory {item.name!r}.") from exc
        raise
    audit.record(
        audit.EventType.DIRECTORY_IMPORT_REQUESTED,
        "success",
        context=context,
        subject=str(item.name),
        details={"full": full},
        clock=clock,
    )
    # The update returned the item as it is now, the request set.
    return ImportRequest(
        requested_at=float(item.import_requested_at or now),
        full=bool(item.import_requested_full),
        requested_by=item.import_requested_by,
    )


def pending_request(item: Directory) -> ImportRequest | None:
    if item.import_requested_at is None:
        return None
    return ImportRequest(
        requested_at=float(item.import_requested_at),
        full=bool(item.import_requested_full),
        requested_by=item.import_requested_by,
    )


def running_since(item: Directory, now: float) -> float | None:
    """When the run holding the lock started; None when no run holds it (or it expired)."""
    if item.running_until is None or float(item.running_until) < now:
        return None
    return float(item.running_until) - LOCK_SECONDS


def last_failure(item: Directory) -> Failure | None:
    if not item.last_failure:
        return None
    try:
        data = json.loads(item.last_failure)
        return Failure(float(data["failed_at"]), bool(data.get("full")), str(data["reason"]))
    except (ValueError, TypeError, KeyError):
        _LOG.warning("directory %s: its last failure record is not readable", item.name)
        return None


# ---------------------------------------------------------------- `idp directory sync`


def run_import_now(
    name: str,
    *,
    full: bool,
    kms: Any,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
    welcome: WelcomeMail = NO_WELCOME_MAIL,
) -> RunCounts:
    """One run in the caller's process (``idp directory sync``), under the lock the ticks
    take but without taking a due slot or a pending request: ``Conflict`` while another run
    holds it, ``NotFound`` when there is no such directory."""
    until = _lock_for_run_now(name, clock)
    try:
        counts = _import(name, full=full, kms=kms, clock=clock, context=context, welcome=welcome)
    except Exception as exc:
        release_lock(name, until, failure=Failure(clock.now(), full, _reason(exc)))
        raise
    release_lock(name, until, full_finished_at=counts.finished_at if full else None)
    return counts


def _lock_for_run_now(name: str, clock: Clock) -> float:
    # A second attempt covers a run that released the lock between the read and the update.
    for _ in range(2):
        item = store.get_directory(name)
        now = clock.now()
        until = take_lock(item, now, slot=False)
        if until is not None:
            return until
        held = store.get_directory(name).running_until
        if held is not None and float(held) >= now:
            raise Conflict(
                f"An import of {item.name} is running (until at most "
                f"{time.strftime('%H:%M', time.gmtime(float(held)))} UTC); try again when it has finished."
            )
    raise Conflict(f"An import of {clean_name(name)} has just started; try again when it has finished.")


# ---------------------------------------------------------------- the ticks


def run_due_imports(
    *, kms: Any, clock: Clock = SYSTEM_CLOCK, welcome: WelcomeMail = NO_WELCOME_MAIL
) -> list[Outcome]:
    """One tick: every directory, in name order, ran, skipped (with the reason) or failed.
    ``welcome``: how the welcome e-mails of the users the imports create leave."""
    now = clock.now()
    outcomes = [
        _tick(item, now, kms=kms, clock=clock, welcome=welcome)
        for item in Directory.scan(consistent_read=True)
    ]
    return sorted(outcomes, key=lambda outcome: outcome.name)


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """The tick's result as the Lambda returns it (and CloudWatch logs it)."""
    return {
        **{status: sum(o.status == status for o in outcomes) for status in (RAN, SKIPPED, FAILED)},
        "directories": {outcome.name: outcome.as_dict() for outcome in outcomes},
    }


def last_full_finished(item: Directory) -> float | None:
    """When the last full run finished: recorded when the lock is released, or by the last
    run of any kind (an older ``idp directory sync --full`` recorded only that)."""
    finished = [float(item.last_full_at)] if item.last_full_at is not None else []
    if item.last_run:
        try:
            last = json.loads(item.last_run)
            if last.get("full") and last.get("finished_at") is not None:
                finished.append(float(last["finished_at"]))
        except (ValueError, TypeError, AttributeError):
            _LOG.warning("directory %s: its last run record is not readable", item.name)
    return max(finished, default=None)


def needs_full_run(item: Directory, now: float) -> bool:
    finished = last_full_finished(item)
    return finished is None or now - finished >= FULL_RUN_EVERY_SECONDS


def take_lock(item: Directory, now: float, *, slot: bool = True, request: bool = False) -> float | None:
    """Lock the directory for a run starting ``now``; the lock's expiry (to release it
    with), or None when another run holds it, or took what this run would serve since
    ``item`` was read.

    ``slot``: the run is the schedule's due slot; its start is recorded (``last_scheduled_at``).
    ``request``: the run serves the "Import now" pending in ``item``; it is cleared, but only
    if it is still that one, so a request made since (during the last run) gets its own run.
    """
    until = now + LOCK_SECONDS
    actions: list[Action] = [Directory.running_until.set(until)]
    condition: Condition = Directory.name.exists() & (
        Directory.running_until.does_not_exist() | (Directory.running_until < now)
    )
    if slot:
        actions.append(Directory.last_scheduled_at.set(now))
        # Unchanged since it was read: a tick that read it before another took and released
        # the lock must not run the same due slot again.
        if item.last_scheduled_at is None:
            condition &= Directory.last_scheduled_at.does_not_exist()
        else:
            condition &= Directory.last_scheduled_at == item.last_scheduled_at
    if request:
        if item.import_requested_at is None:
            raise ValueError(f"directory {item.name}: there is no pending import request to serve")
        actions += [
            Directory.import_requested_at.remove(),
            Directory.import_requested_full.remove(),
            Directory.import_requested_by.remove(),
        ]
        # The kind too: a request made full since the read is served by a later, full run.
        condition &= (Directory.import_requested_at == item.import_requested_at) & (
            Directory.import_requested_full == bool(item.import_requested_full)
        )
    try:
        Directory(item.name).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if condition_failed(exc):
            return None
        raise
    return until


def release_lock(
    name: str, until: float, *, full_finished_at: float | None = None, failure: Failure | None = None
) -> None:
    """Release the lock taken with expiry ``until`` (not a later holder's, after it expired),
    recording the end of a successful full run, or the run's failure (a success clears it)."""
    actions: list[Action] = [Directory.running_until.remove()]
    if full_finished_at is not None:
        actions.append(Directory.last_full_at.set(full_finished_at))
    if failure is not None:
        record = {"failed_at": failure.failed_at, "full": failure.full, "reason": failure.reason[:500]}
        actions.append(Directory.last_failure.set(json.dumps(record, sort_keys=True)))
    else:
        actions.append(Directory.last_failure.remove())
    try:
        Directory(name).update(actions=actions, condition=Directory.running_until == until)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        # Deleted during the run, or the lock expired and another run holds it now.
        _LOG.warning("directory %s: the lock was no longer this run's to release", name)


def _tick(item: Directory, now: float, *, kms: Any, clock: Clock, welcome: WelcomeMail) -> Outcome:
    name = str(item.name)
    try:
        settings = store.settings_of(item)
    except IdpError as exc:
        # Stored settings are validated on save; a stored item that no longer passes (the
        # rules grew stricter) must not stop the other directories.
        _LOG.error("directory %s: stored settings are not valid: %s", name, exc)
        return Outcome(name, FAILED, reason=f"The stored settings are not valid: {exc}")
    request = pending_request(item)
    try:
        due = bool(settings.schedule) and is_due(settings.schedule or "", item.last_scheduled_at, now)
    except IdpError as exc:
        _LOG.error("directory %s: stored schedule is not valid: %s", name, exc)
        if request is None:
            return Outcome(name, FAILED, reason=str(exc))
        # The admin's request still runs; the ticks without one report the schedule.
        due = False
    if request is None:
        if not settings.schedule:
            return Outcome(name, SKIPPED, reason="no schedule")
        if not due:
            return Outcome(name, SKIPPED, reason="not due")
    until = take_lock(item, now, slot=due, request=request is not None)
    if until is None:
        return Outcome(name, SKIPPED, reason="already running")
    full = (request is not None and request.full) or needs_full_run(item, now)
    requested_by = None if request is None else request.requested_by or "unknown"
    # The run the admin asked for is theirs in the audit trail.
    context = SCHEDULER if requested_by is None else AuditContext(actor=requested_by)
    outcome = Outcome(name, FAILED, reason="The run did not finish.", full=full, requested_by=requested_by)
    try:
        outcome = _run(settings, full, requested_by, kms=kms, clock=clock, context=context, welcome=welcome)
    finally:
        finished_at = float(outcome.counts["finished_at"]) if outcome.status == RAN and full else None
        failure = None if outcome.status == RAN else Failure(clock.now(), full, outcome.reason or "")
        release_lock(name, until, full_finished_at=finished_at, failure=failure)
    return outcome


def _run(
    settings: DirectorySettings,
    full: bool,
    requested_by: str | None,
    *,
    kms: Any,
    clock: Clock,
    context: AuditContext,
    welcome: WelcomeMail,
) -> Outcome:
    name = settings.name
    try:
        counts = _import(name, full=full, kms=kms, clock=clock, context=context, welcome=welcome)
    except DirectoryError as exc:
        # run_import has audited the directory's failure.
        _LOG.warning("directory %s: the %s %s import failed: %s", name, _why(requested_by), _kind(full), exc)
        return Outcome(name, FAILED, reason=exc.message, full=full, requested_by=requested_by)
    except Exception as exc:
        # Anything else (the directory deleted meanwhile, a DynamoDB or KMS error) is this
        # directory's failure only, audited here.
        reason = _reason(exc)
        _LOG.exception("directory %s: the %s %s import failed", name, _why(requested_by), _kind(full))
        audit.record(
            audit.EventType.DIRECTORY_IMPORT,
            "failure",
            context=context,
            subject=name,
            details={"full": full, "reason": reason[:500]},
            clock=clock,
        )
        return Outcome(name, FAILED, reason=reason, full=full, requested_by=requested_by)
    data = counts.as_dict()
    data.pop("problems", None)
    return Outcome(name, RAN, full=full, counts=data, requested_by=requested_by)


def _import(
    name: str, *, full: bool, kms: Any, clock: Clock, context: AuditContext | None, welcome: WelcomeMail
) -> RunCounts:
    # The import code (the directory client, the entries' mapping, the sign-in's collision
    # records) loads when a run starts: a tick that finds no directory due, the provisioning
    # function's usual cold start, does without it.
    from idp_core.directories.imports import run_import

    return run_import(name, full=full, kms=kms, clock=clock, context=context, welcome=welcome)


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, IdpError) else f"{type(exc).__name__}: {exc}"


def _kind(full: bool) -> str:
    return "full" if full else "incremental"


def _why(requested_by: str | None) -> str:
    return "scheduled" if requested_by is None else "requested"
