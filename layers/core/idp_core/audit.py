"""Audit events (S25): who, what, when, from where, and the outcome. Never secrets or codes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum, unique

from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.models import AuditEvent

RETENTION_SECONDS = 400 * 24 * 3600
# A change and its event are written one after the other, well within this.
STEP_EVENT_SECONDS = 60.0


@unique
class EventType(StrEnum):
    """Every kind of audit event, closed: the values are what the table stores and what the
    console, ``idp audit`` and operators' queries filter on, so a value never changes."""

    ADAPTIVE_DECISION = "adaptive.decision"
    ADAPTIVE_POLICY_CHANGED = "adaptive.policy.changed"
    ADAPTIVE_POLICY_CREATED = "adaptive.policy.created"
    ADAPTIVE_POLICY_DELETED = "adaptive.policy.deleted"
    ADMIN_REFUSED = "admin.refused"
    APP_CREATED = "app.created"
    APP_DELETED = "app.deleted"
    APP_DISABLED = "app.disabled"
    APP_ENABLED = "app.enabled"
    APP_MFA_POLICY_CHANGED = "app.mfa_policy.changed"
    APP_UPDATED = "app.updated"
    AUTH_FAILURE = "auth.failure"
    AUTH_SIGNIN = "auth.signin"
    AUTH_SIGNOUT = "auth.signout"
    DEVICE_REGISTERED = "device.registered"
    DEVICE_REMOVED = "device.removed"
    DEVICE_RENAMED = "device.renamed"
    DEVICE_TRUSTED = "device.trusted"
    DEVICE_UNTRUSTED = "device.untrusted"
    DIRECTORY_CHANGED = "directory.changed"
    DIRECTORY_COLLISION = "directory.collision"
    DIRECTORY_CREATED = "directory.created"
    DIRECTORY_DELETED = "directory.deleted"
    DIRECTORY_ENTRY_CLEARED = "directory.entry_cleared"
    DIRECTORY_IMPORT = "directory.import"
    DIRECTORY_IMPORT_REQUESTED = "directory.import_requested"
    DIRECTORY_TEST = "directory.test"
    DIRECTORY_WELCOME = "directory.welcome"
    GROUP_CREATED = "group.created"
    GROUP_DISABLED = "group.disabled"
    GROUP_ENABLED = "group.enabled"
    HANDOFF_APPROVED = "handoff.approved"
    HANDOFF_DENIED = "handoff.denied"
    HANDOFF_PICKED_UP = "handoff.picked_up"
    HANDOFF_STARTED = "handoff.started"
    MFA_BACKUP_CODES_GENERATED = "mfa.backup_codes.generated"
    MFA_CHALLENGE = "mfa.challenge"
    MFA_FACTOR_ACTIVATED = "mfa.factor.activated"
    MFA_FACTOR_DEFAULT_CHANGED = "mfa.factor.default_changed"
    MFA_FACTOR_ENROLMENT_STARTED = "mfa.factor.enrolment_started"
    MFA_FACTOR_REMOVED = "mfa.factor.removed"
    MFA_FACTOR_RENAMED = "mfa.factor.renamed"
    MFA_FAILURE = "mfa.failure"
    MFA_SETTINGS_CHANGED = "mfa.settings.changed"
    MFA_SUCCESS = "mfa.success"
    MFA_TOKEN_ASSIGNED = "mfa.token.assigned"  # noqa: S105 - an event name, not a secret
    MFA_TOKEN_UNASSIGNED = "mfa.token.unassigned"  # noqa: S105 - an event name, not a secret
    MFA_TOKENS_IMPORTED = "mfa.tokens.imported"
    NOTICE_SENT = "notice.sent"
    OTP_SEND_REFUSED = "otp.send_refused"
    OTP_SENT = "otp.sent"
    PASSWORD_CHANGED = "password.changed"  # noqa: S105 - an event name, not a secret
    PASSWORD_RESET = "password.reset"  # noqa: S105 - an event name, not a secret
    PASSWORD_RESET_LINK_USED = "password.reset_link_used"  # noqa: S105 - an event name, not a secret
    PASSWORD_RESET_REQUESTED = "password.reset_requested"  # noqa: S105 - an event name, not a secret
    SAML_ASSERTION_ISSUED = "saml.assertion_issued"
    SAML_ASSERTION_REFUSED = "saml.assertion_refused"
    SAML_LOGOUT = "saml.logout"
    SAML_REQUEST_REFUSED = "saml.request_refused"
    SIGNING_KEY_DELETION_SCHEDULED = "saml.signing_key.deletion_scheduled"
    SIGNING_KEY_ROTATION_FINISHED = "saml.signing_key.rotation_finished"
    SIGNING_KEY_ROTATION_STARTED = "saml.signing_key.rotation_started"
    USER_ADMIN_CHANGED = "user.admin_changed"
    USER_CREATED = "user.created"
    USER_DELETED = "user.deleted"
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    USER_GROUPS_CHANGED = "user.groups_changed"
    USER_LOCKED = "user.locked"
    USER_LOCKED_TEMPORARILY = "user.locked_temporarily"
    USER_MFA_RESET = "user.mfa_reset"
    USER_PASSWORD_RESET = "user.password_reset"  # noqa: S105 - an event name, not a secret
    USER_SIGNED_OUT_EVERYWHERE = "user.signed_out_everywhere"
    USER_UNLOCKED = "user.unlocked"
    USER_UPDATED = "user.updated"
    WEBAUTHN_CLONE_SUSPECTED = "webauthn.clone_suspected"
    WEBAUTHN_PASSKEY_SIGN_IN = "webauthn.passkey_sign_in"


class UnknownEventType(TypeError):
    """An audit event was written with a type outside ``EventType`` (a programming error)."""


@dataclass(frozen=True)
class AuditContext:
    """Where a request came from; passed down from the handler to every logic call."""

    source_ip: str | None = None
    actor: str | None = None  # the signed-in user or admin, when known


def record(
    event_type: EventType,
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


def record_changes(
    event_type: EventType,
    changes: Mapping[str, tuple[str, str]],
    *,
    subject: str,
    context: AuditContext | None = None,
    more: Mapping[str, object] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> AuditEvent:
    """An edit's event: ``changed`` lists the fields, and each field shows "old -> new" (values
    as the caller shows them: masked where they must be)."""
    details = {
        "changed": ",".join(changes),
        **{field: f"{old} -> {new}" for field, (old, new) in changes.items()},
        **(more or {}),
    }
    return record(event_type, "success", context=context, subject=subject, details=details, clock=clock)


def write_all(events: Sequence[AuditEvent]) -> None:
    """Write events made with ``new_event``; several in one BatchWriteItem request."""
    if len(events) == 1:
        events[0].save()
        return
    with AuditEvent.batch_write() as batch:
        for event in events:
            batch.save(event)


def new_event(
    event_type: EventType,
    outcome: str,
    *,
    context: AuditContext | None = None,
    subject: str | None = None,
    details: Mapping[str, object] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> AuditEvent:
    """An audit event not yet written, for a caller that writes it in one transaction with
    the change it describes (a session and its sign-in event commit together or not at all)."""
    # mypy refuses a plain string here; this refuses one at run time too, so an event type no
    # query knows about (a typo, a new free string) never reaches the table.
    if not isinstance(event_type, EventType):
        raise UnknownEventType(f"{event_type!r} is not an audit event type; add it to audit.EventType.")
    now = clock.now()
    context = context or AuditContext()
    return AuditEvent(
        day=time.strftime("%Y-%m-%d", time.gmtime(now)),
        event_id=f"{int(now * 1000):013d}-{secrets.token_hex(4)}",
        at=now,
        type=event_type.value,
        outcome=outcome,
        actor=context.actor,
        subject=subject,
        source_ip=context.source_ip,
        details={key: str(value) for key, value in (details or {}).items()} or None,
        expires_at=int(now + RETENTION_SECONDS),
    )


def event_near(
    event_type: EventType, *, at: float, subject: str, within: float = STEP_EVENT_SECONDS
) -> AuditEvent | None:
    """The first successful ``event_type`` event about ``subject`` written in the ``within``
    seconds from ``at``: the event of a change whose item keeps its time (a signing key
    rotation's steps), found by reading those seconds of the trail, not its days."""
    start, end = f"{int(at * 1000):013d}", f"{int((at + within) * 1000):013d}~"
    days = dict.fromkeys(time.strftime("%Y-%m-%d", time.gmtime(moment)) for moment in (at, at + within))
    for day in days:
        for event in AuditEvent.query(
            day,
            AuditEvent.event_id.between(start, end),
            filter_condition=(AuditEvent.type == event_type.value)
            & (AuditEvent.subject == subject)
            & (AuditEvent.outcome == "success"),
        ):
            return event
    return None


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
