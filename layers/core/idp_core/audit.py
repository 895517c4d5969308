"""Audit events (S25): who, what, when, from where, and the outcome. Never secrets or codes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.models import AuditEvent

RETENTION_SECONDS = 400 * 24 * 3600


@dataclass(frozen=True)
class AuditContext:
    """Where a request came from; passed down from the handler to every logic call."""

    source_ip: str | None = None
    actor: str | None = None  # the signed-in user or admin, when known


def record(
    event_type: str,
    outcome: str,
    *,
    context: AuditContext | None = None,
    subject: str | None = None,
    details: Mapping[str, object] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> AuditEvent:
    """Write one audit event. ``details`` values are stringified; callers never pass secrets."""
    event = new_event(event_type, outcome, context=context, subject=subject, details=details, clock=clock)
    event.save()
    return event


def write_all(events: Sequence[AuditEvent]) -> None:
    """Write events made with ``new_event``; several in one BatchWriteItem request."""
    if len(events) == 1:
        events[0].save()
        return
    with AuditEvent.batch_write() as batch:
        for event in events:
            batch.save(event)


def new_event(
    event_type: str,
    outcome: str,
    *,
    context: AuditContext | None = None,
    subject: str | None = None,
    details: Mapping[str, object] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> AuditEvent:
    """An audit event not yet written, for a caller that writes it in one transaction with
    the change it describes (a session and its sign-in event commit together or not at all)."""
    now = clock.now()
    context = context or AuditContext()
    return AuditEvent(
        day=time.strftime("%Y-%m-%d", time.gmtime(now)),
        event_id=f"{int(now * 1000):013d}-{secrets.token_hex(4)}",
        at=now,
        type=event_type,
        outcome=outcome,
        actor=context.actor,
        subject=subject,
        source_ip=context.source_ip,
        details={key: str(value) for key, value in (details or {}).items()} or None,
        expires_at=int(now + RETENTION_SECONDS),
    )


def recent(days: int = 1, limit: int = 100, clock: Clock = SYSTEM_CLOCK) -> list[AuditEvent]:
    """The newest events of the last ``days`` days, newest first."""
    now = clock.now()
    events: list[AuditEvent] = []
    for offset in range(days):
        day = time.strftime("%Y-%m-%d", time.gmtime(now - offset * 86400))
        for event in AuditEvent.query(day, scan_index_forward=False, limit=limit - len(events)):
            events.append(event)
        if len(events) >= limit:
            break
    return events
