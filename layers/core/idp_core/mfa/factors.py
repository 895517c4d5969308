"""A user's second factors: listing, activation, rename, default and removal.

The kind-specific parts live next to this module (``totp``, ``backup_codes``, ``tokens``;
SMS and e-mail in ``flow``); this module owns what every kind shares. A factor is usable
only when ``status == "active"`` (S11), and activation is a conditional pending -> active
write, so an abandoned or removed enrolment can never become usable by a stale request.
"""

from __future__ import annotations

import re
import secrets
import unicodedata

from pynamodb.exceptions import DeleteError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from idp_core import audit, sessions
from idp_core.adaptive.devices import end_trust
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.mfa import methods
from idp_core.models import Factor, OathToken, User, condition_failed, new_transaction

MAX_LABEL_CHARS = 64
# Enough for every kind several times over; it bounds what one account can pile up.
MAX_FACTORS_PER_USER = 20
# Factor ids are ``secrets.token_urlsafe`` values (and "backup" for the one set of backup
# codes); anything else is refused before it reaches DynamoDB.
_FACTOR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_factor_id() -> str:
    """An unguessable id: it appears in URLs, so it must not reveal how many factors exist."""
    return secrets.token_urlsafe(12)


def clean_label(label: str | None) -> str:
    """A factor's display name: 1-64 printable characters after NFKC, or BadRequest."""
    if not isinstance(label, str):
        raise BadRequest("Give the sign-in method a name.")
    cleaned = " ".join(unicodedata.normalize("NFKC", label).split())
    if not cleaned:
        raise BadRequest("Give the sign-in method a name.")
    if len(cleaned) > MAX_LABEL_CHARS:
        raise BadRequest(f"The name of a sign-in method is at most {MAX_LABEL_CHARS} characters long.")
    if not cleaned.isprintable():
        raise BadRequest("The name of a sign-in method may not contain control characters.")
    return cleaned


def is_usable(factor: Factor) -> bool:
    """Active, and for backup codes with at least one code left (a spent set proves nothing)."""
    if factor.status != "active":
        return False
    # A kind no module knows (a newer version's) counts as set up; no challenge accepts it.
    return not methods.is_known(factor.kind) or methods.get(factor.kind).is_usable(factor)


def list_factors(username: str, *, active_only: bool = False) -> list[Factor]:
    """The user's factors, default first, then oldest first (one Query).

    ``active_only`` keeps the factors that can pass a challenge now (see ``is_usable``).
    """
    items = list(Factor.query(username))
    if active_only:
        items = [factor for factor in items if is_usable(factor)]
    return sorted(items, key=lambda f: (not f.is_default, float(f.created_at or 0), f.factor_id))


def get_factor(username: str, factor_id: str) -> Factor:
    """One factor of one user; ``NotFound`` for an unknown or malformed id (nothing is looked up)."""
    if not isinstance(factor_id, str) or not _FACTOR_ID.fullmatch(factor_id):
        raise NotFound("There is no such sign-in method.")
    try:
        return Factor.get(username, factor_id)
    except Factor.DoesNotExist as exc:
        raise NotFound("There is no such sign-in method.") from exc


def has_active_factor(username: str) -> bool:
    return any(is_usable(factor) for factor in Factor.query(username))


def ensure_room_for_another(username: str, existing: list[Factor] | None = None) -> None:
    """BadRequest when the user already has the maximum number of factors."""
    current = existing if existing is not None else list(Factor.query(username))
    if len(current) >= MAX_FACTORS_PER_USER:
        raise BadRequest(
            f"An account can have at most {MAX_FACTORS_PER_USER} sign-in methods; remove one first."
        )


def _no_other_default(username: str, factor_id: str) -> bool:
    return not any(
        f.is_default and f.status == "active" and f.factor_id != factor_id for f in Factor.query(username)
    )


def activate_factor(
    factor: Factor, clock: Clock = SYSTEM_CLOCK, *, context: AuditContext | None = None
) -> Factor:
    """Pending -> active after the first valid code (S11); the first active factor becomes the default.

    The write is conditional on the item still being pending, so a factor that was removed
    (or activated by a parallel request) in the meantime raises ``Conflict``.
    """
    now = clock.now()
    actions: list[Action] = [Factor.status.set("active"), Factor.confirmed_at.set(now)]
    if _no_other_default(factor.username, factor.factor_id):
        actions.append(Factor.is_default.set(True))
    try:
        factor.update(actions=actions, condition=Factor.status == "pending")
    except UpdateError as exc:
        if condition_failed(exc):
            raise Conflict("This sign-in method is no longer waiting for confirmation.") from exc
        raise
    factor_activated(factor.username)
    audit.record(
        audit.EventType.MFA_FACTOR_ACTIVATED,
        "success",
        context=context,
        subject=factor.username,
        details={"factor": factor.kind, "factor_id": factor.factor_id, "label": factor.label},
        clock=clock,
    )
    return factor


def factor_activated(username: str) -> None:
    """A factor of ``username`` became active: the trust of their devices ends, and an admin's
    reset of their factors is answered (``User.must_enrol`` goes), in one update."""
    end_trust(username, also=[User.must_enrol.remove()])


def rename_factor(
    username: str,
    factor_id: str,
    label: str,
    *,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Factor:
    new_label = clean_label(label)
    factor = get_factor(username, factor_id)
    old_label = factor.label
    try:
        factor.update(actions=[Factor.label.set(new_label)], condition=Factor.factor_id.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound("There is no such sign-in method.") from exc
        raise
    audit.record(
        audit.EventType.MFA_FACTOR_RENAMED,
        "success",
        context=context,
        subject=username,
        details={"factor": factor.kind, "factor_id": factor_id, "old_label": old_label, "label": new_label},
        clock=clock,
    )
    return factor


def set_default_factor(
    username: str, factor_id: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> Factor:
    """Make one active factor the default and clear the flag on the others, in one transaction."""
    target = get_factor(username, factor_id)
    if target.status != "active":
        raise BadRequest("Only a confirmed sign-in method can be the default.")
    others = [f for f in Factor.query(username) if f.is_default and f.factor_id != factor_id]
    try:
        with new_transaction() as transaction:
            transaction.update(
                target, actions=[Factor.is_default.set(True)], condition=Factor.status == "active"
            )
            for other in others:
                transaction.update(
                    other, actions=[Factor.is_default.set(False)], condition=Factor.factor_id.exists()
                )
    except TransactWriteError as exc:
        raise Conflict("The sign-in methods changed meanwhile; reload the page and try again.") from exc
    target.is_default = True
    audit.record(
        audit.EventType.MFA_FACTOR_DEFAULT_CHANGED,
        "success",
        context=context,
        subject=username,
        details={"factor": target.kind, "factor_id": factor_id, "label": target.label},
        clock=clock,
    )
    return target


def remove_factor(
    username: str,
    factor_id: str,
    *,
    keep_session_hash: str | None = None,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """Delete a factor and end the user's other sessions (S15); returns how many sessions ended.

    ``keep_session_hash`` is the id hash of the session making the change, which stays
    signed in. A removed default hands the default to the oldest remaining active factor,
    and a removed hardware token becomes free to assign again.
    """
    factor = get_factor(username, factor_id)
    try:
        factor.delete(condition=Factor.factor_id.exists())
    except DeleteError as exc:
        if condition_failed(exc):
            raise NotFound("There is no such sign-in method.") from exc
        raise
    if factor.is_default:
        remaining = list_factors(username, active_only=True)
        if remaining:
            try:
                remaining[0].update(
                    actions=[Factor.is_default.set(True)], condition=Factor.status == "active"
                )
            except UpdateError as exc:
                if not condition_failed(exc):
                    raise
    methods.release(factor)
    end_trust(username)
    ended = (
        sessions.end_user_sessions(username, keep_hash=keep_session_hash) if factor.status == "active" else 0
    )
    audit.record(
        audit.EventType.MFA_FACTOR_REMOVED,
        "success",
        context=context,
        subject=username,
        details={
            "factor": factor.kind,
            "factor_id": factor_id,
            "label": factor.label,
            "status": factor.status,
            "sessions_ended": ended,
        },
        clock=clock,
    )
    return ended


def release_token(serial: str, username: str, counter: float | None = None) -> bool:
    """Free the token ``serial`` of ``username`` for another user, keeping the HOTP
    ``counter`` the user's factor reached; False when it was not theirs (any more)."""
    actions: list[Action] = [OathToken.assigned_to.remove()]
    if counter is not None:
        actions.append(OathToken.counter.set(int(counter)))
    try:
        OathToken(serial).update(actions=actions, condition=OathToken.assigned_to == username)
    except UpdateError as exc:
        if not condition_failed(exc):  # Deleted or reassigned by an admin meanwhile: nothing to free.
            raise
        return False
    return True


def describe(factor: Factor) -> str:
    """A short human description, e.g. "Authenticator app (Phone)"."""
    return f"{methods.label(factor.kind)} ({factor.label})"
