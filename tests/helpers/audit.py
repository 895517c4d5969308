"""Steps that read the audit trail a test's actions wrote."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from idp_core.models import AuditEvent

# The events of an app's status change, whoever makes it (the console's buttons, `idp app update`).
APP_STATUS_EVENTS = frozenset({"app.disabled", "app.enabled"})


def audit_trail(types: Collection[str] | None = None) -> list[AuditEvent]:
    """The audit events of ``types`` (None: all), oldest first."""
    found = [event for event in AuditEvent.scan() if types is None or event.type in types]
    return sorted(found, key=lambda event: (event.at, event.event_id))


def what_was_recorded(events: Collection[AuditEvent]) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """What events say about a change, leaving out who made it, when and from where."""
    return [
        (event.type, event.outcome, event.subject, event.details.as_dict() if event.details else {})
        for event in events
    ]
