"""Server-side sessions (S13-S15).

The browser holds an opaque 256-bit random value; the table holds only its SHA-256, so a
copy of the table yields no usable session. Each authentication step issues a new value
and deletes the old item. Idle timeout and absolute lifetime are checked here on every
load; the DynamoDB TTL (the absolute end) only cleans up.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Iterable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynamodb.exceptions import DeleteError, UpdateError
from pynamodb.transactions import TransactWrite

from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import SessionPolicy
from idp_core.models import AuditEvent, Session, condition_failed, new_transaction
from idp_core.scope import RequestScope

if TYPE_CHECKING:
    from idp_core.lockout import Attempt

SECURE_COOKIE_NAME = "__Host-idp_session"
# Only the local http stack uses this name: browsers refuse __Host- cookies without Secure.
LOCAL_COOKIE_NAME = "idp_session"
# ``last_seen_at`` moves at most once a minute, so a busy session costs one write a minute.
LAST_SEEN_RESOLUTION_SECONDS = 60
# A factor recorded with this prefix is still owed: the session is half-way (S14).
PENDING_PREFIX = "pending:"
# What a half-way session owes (``pending_factors``): a second factor, or setting one up first.
OWES_SECOND_FACTOR = "mfa"
OWES_ENROLMENT = "enrol"
# What a session that followed a password reset link owes (``idp_core.password_reset``): it
# stays owed when the second factor is proven, so such a session only ever sets the password.
OWES_NEW_PASSWORD = "password"  # noqa: S105 - what is owed, not a secret
# A second factor this session has proven, e.g. "mfa:totp"; app launches look for the method.
SECOND_FACTOR_PREFIX = "mfa:"
# The directory that checked this session's password, e.g. "ldap:corp" (the user's source
# and the sign-in's "via"); a local password leaves none. The admin console asks that
# directory whether it allows administrator sign-in.
DIRECTORY_PREFIX = "ldap:"
_MAX_TOKEN_CHARS = 128


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE_NAME if secure else LOCAL_COOKIE_NAME


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedSession:
    """A new session: ``token`` goes into the cookie and is never stored."""

    token: str
    session: Session


def is_complete(session: Session) -> bool:
    """True when no factor is still owed (a half-way session reaches only the MFA pages)."""
    return not any(factor.startswith(PENDING_PREFIX) for factor in session.factors or ())


def pending_factors(session: Session) -> frozenset[str]:
    """What the session still owes, without the prefix (e.g. ``{"mfa"}`` or ``{"enrol"}``)."""
    return frozenset(
        factor[len(PENDING_PREFIX) :] for factor in session.factors or () if factor.startswith(PENDING_PREFIX)
    )


def second_factor_methods(session: Session) -> frozenset[str]:
    """The second-factor methods this session has proven (e.g. ``{"totp"}``)."""
    return frozenset(
        factor[len(SECOND_FACTOR_PREFIX) :]
        for factor in session.factors or ()
        if factor.startswith(SECOND_FACTOR_PREFIX)
    )


def second_factor_proofs(session: Session) -> dict[str, float]:
    """When this session last proved each second-factor method, e.g. ``{"totp": 1767225600.0}``."""
    proofs = session.second_factor_proofs
    return {str(method): float(at) for method, at in (proofs.as_dict() if proofs is not None else {}).items()}


def password_directory(session: Session) -> str | None:
    """The name of the directory that checked this session's password, or None (a local one)."""
    for factor in session.factors or ():
        if factor.startswith(DIRECTORY_PREFIX):
            return factor[len(DIRECTORY_PREFIX) :]
    return None


@dataclass(frozen=True)
class NewSession:
    """Whose session starts and what the sign-in proved: ``factors`` (e.g. "password", and
    "pending:mfa" for what is still owed), and ``second_factor``, a method it proved together
    with the first factor (a passkey that verified the user), which the session records as
    ``after_second_factor`` does."""

    username: str
    factors: Collection[str]
    second_factor: str | None = None


def start_session(
    new: NewSession,
    scope: RequestScope,
    *,
    replaces: str | None = None,
    events: Iterable[AuditEvent] = (),
    releases: Iterable[Attempt] = (),
) -> IssuedSession:
    """Store a new session under ``scope`` (its session policy, browser and clock) and end the
    one it replaces (a new id per step, S14).

    The session, the end of the old one, ``events`` and the lockout attempts the sign-in gives
    back (``releases``, S2) are one DynamoDB transaction.
    """
    token = secrets.token_urlsafe(32)
    now = scope.clock.now()
    second_factor = new.second_factor
    session = Session(
        hash_token(token),
        username=new.username,
        created_at=now,
        last_seen_at=now,
        expires_at=int(now + scope.settings.sessions.max_seconds),
        csrf_token=secrets.token_urlsafe(32),
        factors={*new.factors, *([SECOND_FACTOR_PREFIX + second_factor] if second_factor else [])} or None,
        second_factor_at=now if second_factor else None,
        second_factor_proofs={second_factor: now} if second_factor else None,
        source_ip=scope.browser.source_ip,
        user_agent=(scope.browser.user_agent or "")[:256] or None,
    )
    _swap(session, replaces, events, releases)
    return IssuedSession(token=token, session=session)


def _swap(
    new: Session, old_token: str | None, events: Iterable[AuditEvent], releases: Iterable[Attempt] = ()
) -> None:
    """Write ``new``, delete the session of ``old_token``, write ``events`` and give back the
    ``releases``' attempts, all or nothing. When the transaction fails (throttled, say), the
    attempts are still given back, alone, if DynamoDB takes it: a right credential must not
    stay counted as a failure because the session could not be written (S2)."""
    releases = list(releases)
    try:
        with new_transaction() as transaction:
            # A 256-bit id never collides; the condition only keeps a bug from overwriting a session.
            transaction.save(new, condition=Session.id_hash.does_not_exist())
            if old_token and len(old_token) <= _MAX_TOKEN_CHARS and hash_token(old_token) != new.id_hash:
                transaction.delete(Session(hash_token(old_token)))
            _add(transaction, events, releases)
    except Exception:
        for attempt in releases:
            with suppress(Exception):  # The request fails with the transaction's error either way.
                attempt.succeeded()
        raise


def _add(transaction: TransactWrite, events: Iterable[AuditEvent], releases: Iterable[Attempt]) -> None:
    for event in events:
        transaction.save(event)
    for attempt in releases:
        transaction.update(
            attempt.record, actions=attempt.release_actions(), condition=attempt.release_condition()
        )


def write_together(*, events: Iterable[AuditEvent], releases: Iterable[Attempt]) -> None:
    """Audit events and the attempts a success gives back, in one transaction."""
    with new_transaction() as transaction:
        _add(transaction, events, releases)


def complete_second_factor(
    token: str,
    session: Session,
    *,
    method: str,
    events: Iterable[AuditEvent] = (),
    releases: Iterable[Attempt] = (),
    clock: Clock = SYSTEM_CLOCK,
) -> IssuedSession:
    """``after_second_factor`` and ``commit_renewal`` in one go."""
    renewed = after_second_factor(session, method=method, clock=clock)
    commit_renewal(renewed, token, events, releases)
    return renewed


def after_second_factor(session: Session, *, method: str, clock: Clock = SYSTEM_CLOCK) -> IssuedSession:
    """Record a proven second factor on a NEW session id and end the old one (S14).

    Whatever the session still owed (``pending:mfa``, ``pending:enrol``) is settled, but for
    the new password of a reset link (``OWES_NEW_PASSWORD``), which the factor does not pay; the
    method is added as ``mfa:<method>``, and ``second_factor_at`` and the method's proof time
    (``second_factor_proofs``) are now. The new session
    keeps the old one's creation time and absolute end, so stepping up never extends the
    lifetime (S15). Nothing is written: ``commit_renewal`` stores it.
    """
    new_token = secrets.token_urlsafe(32)
    now = clock.now()
    factors = {
        factor
        for factor in session.factors or ()
        if not factor.startswith(PENDING_PREFIX) or factor == PENDING_PREFIX + OWES_NEW_PASSWORD
    }
    factors.add(SECOND_FACTOR_PREFIX + method)
    renewed = Session(
        hash_token(new_token),
        username=session.username,
        created_at=session.created_at,
        last_seen_at=now,
        expires_at=session.expires_at,
        csrf_token=secrets.token_urlsafe(32),
        factors=factors,
        second_factor_at=now,
        second_factor_proofs={**second_factor_proofs(session), method: now},
        source_ip=session.source_ip,
        user_agent=session.user_agent,
    )
    return IssuedSession(token=new_token, session=renewed)


def commit_renewal(
    renewed: IssuedSession,
    old_token: str,
    events: Iterable[AuditEvent] = (),
    releases: Iterable[Attempt] = (),
) -> None:
    """Store ``renewed``, end the session of ``old_token``, write ``events`` and give back the
    ``releases``' attempts, all or nothing."""
    _swap(renewed.session, old_token, events, releases)


def find_session(token: str | None, *, policy: SessionPolicy, clock: Clock = SYSTEM_CLOCK) -> Session | None:
    """The live session behind a cookie value, or None when there is none or it has expired."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    try:
        # Strongly consistent: an eventually consistent read may return a session for about a
        # second after its logout or rotation, and the old cookie would still work.
        session = Session.get(hash_token(token), consistent_read=True)
    except Session.DoesNotExist:
        return None
    return live(session, policy=policy, clock=clock)


def session_key(token: str | None) -> str | None:
    """The key of the session behind a cookie value, for a caller that reads it with other items
    (then ``live`` checks it); None for a value that cannot be one."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    return hash_token(token)


def live(session: Session | None, *, policy: SessionPolicy, clock: Clock = SYSTEM_CLOCK) -> Session | None:
    """``session`` if it has not expired (idle or absolute), its last-seen time moved at most once
    a minute; None otherwise."""
    if session is None:
        return None
    now = clock.now()
    created = float(session.created_at)
    last_seen = float(session.last_seen_at)
    if now >= created + policy.max_seconds or now >= float(session.expires_at):
        return None
    if now - last_seen >= policy.idle_seconds:
        return None
    if now - last_seen >= LAST_SEEN_RESOLUTION_SECONDS:
        try:
            session.update(actions=[Session.last_seen_at.set(now)], condition=Session.id_hash.exists())
        except UpdateError as exc:
            if condition_failed(exc):
                return None  # Ended (logout elsewhere) between the read and the write.
            raise
    return session


def end_session(token: str) -> None:
    """Delete the session behind ``token``; ending a session that is already gone is fine."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        return
    try:
        Session(hash_token(token)).delete()
    except DeleteError as exc:
        if not condition_failed(exc):
            raise


def end_user_sessions(username: str, *, keep_hash: str | None = None) -> int:
    """End every session of ``username`` (on disable, delete, factor removal) but the one
    whose id hash is ``keep_hash`` (the session making the change); returns how many."""
    ended = 0
    with Session.batch_write() as batch:
        for session in Session.by_user.query(username):
            if keep_hash is not None and session.id_hash == keep_hash:
                continue
            batch.delete(session)
            ended += 1
    return ended
