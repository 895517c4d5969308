"""The browser hand-off of ``idp aws login --browser``, after OAuth's device authorization grant
(RFC 8628), as ``aws sso login`` does it.

The command line starts a hand-off for an app with a public key of its own and gets a device
code (its secret, 256 bits, stored only as a hash) and a short user code. The user signs in in a
browser as usual, types the user code at /device, sees where and when the command line asked,
and approves: the approval is the app's launch (``idp_core.launch.launch_app``: assignment, the
app's second factor and adaptive policies, step-up, audit), whose SAMLResponse is sealed to the
command line's key (``idp_core.handoff_seal``) and kept on the hand-off in that form only,
instead of posted to AWS. The command line polls with its device code and gets the sealed
SAMLResponse once: the pick-up is a conditional delete, so a second one gets nothing.

A hand-off is two login transaction items (short-lived, with DynamoDB TTL): the hand-off under
its device code's hash, and its user code's item, which names it and exists only while it
waits. Approving and denying change the first and delete the second in one transaction.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DeleteError, TransactWriteError, UpdateError

from idp_core import audit, handoff_seal
from idp_core.apps import get_app
from idp_core.errors import BadRequest
from idp_core.mfa import ratelimit
from idp_core.models import AuditEvent, Transaction, User, condition_failed, new_transaction
from idp_core.names import canonical_app_name
from idp_core.saml_apps import KIND
from idp_core.scope import RequestScope
from idp_core.sessions import hash_token

VERIFICATION_PATH = "/device"
# RFC 8628 6.1: 20 consonants, no vowels (no words) and no letters read as digits; 8 of them
# are 34 bits, which the limits below and the 10 minutes leave no time to guess.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
DEVICE_CODE_BYTES = 32
MAX_DEVICE_CODE_CHARS = 64
EXPIRES_SECONDS = 600
INTERVAL_SECONDS = 5
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# Codes a signed-in user, and a source address, may try at /device per window.
CODE_TRIES_PER_USER = 10
CODE_TRIES_PER_ADDRESS = 30
CODE_TRIES_WINDOW_SECONDS = 600
# Hand-offs one address may start an hour: each is two items written without a sign-in.
STARTS_PER_ADDRESS = 60
# A new user code that is taken already is drawn again, at most this often.
MAX_CODE_DRAWS = 3

PENDING, APPROVED, DENIED = "handoff-pending", "handoff-approved", "handoff-denied"
_USER_CODE_PREFIX = "handoff-code:"
# The by_user key of a hand-off nobody approved yet (account deletion finds approved ones).
_WAITING_OWNER = "handoff-app:"

# RFC 8628 3.5's answers to a poll that gets no assertion (and OAuth's for a wrong code).
AUTHORIZATION_PENDING = "authorization_pending"
SLOW_DOWN = "slow_down"
ACCESS_DENIED = "access_denied"
EXPIRED_TOKEN = "expired_token"  # noqa: S105 - an error code, not a secret
INVALID_GRANT = "invalid_grant"
_EXPIRED_OR_ANSWERED = "This code has expired or was answered already. Run the command again for a new code."


class HandoffRefused(BadRequest):
    """A poll or a code that gets nothing; ``code`` is RFC 8628's error code for the poll."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Started:
    device_code: str
    user_code: str  # as shown: XXXX-XXXX
    expires_in: int
    interval: int


@dataclass(frozen=True)
class Handoff:
    """A waiting hand-off, as its confirmation page shows it: the app and where and when the
    command line asked (its source address and user agent); and the command line's public key,
    to which the SAMLResponse is sealed."""

    key: str
    user_code: str
    app: str
    source_ip: str | None
    user_agent: str | None
    created_at: float
    expires_at: float
    client_public_key: str


def shown_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalised_code(typed: str) -> str:
    """The user code without its dash, spaces and case; BadRequest when it cannot be one."""
    code = "".join(typed.split()).replace("-", "").upper()
    if len(code) != USER_CODE_LENGTH or not all(letter in USER_CODE_ALPHABET for letter in code):
        raise BadRequest(
            f"A code is {USER_CODE_LENGTH} letters, shown as XXXX-XXXX by the command line; check it and "
            "type it again."
        )
    return code


def _code_key(code: str) -> str:
    """The key of a user code's item: the code's hash, as sessions keep a token's."""
    return _USER_CODE_PREFIX + hash_token(code)


def start(app_name: str, scope: RequestScope, *, client_public_key: str) -> Started:
    """A new hand-off for the AWS app ``app_name``, asked for from ``scope``'s address by a
    command line whose public key is ``client_public_key`` (checked before anything is stored)."""
    app = get_app(canonical_app_name(app_name))
    if app.kind == KIND:
        raise BadRequest(f"The app {app.name!r} is not an AWS app: `idp aws login` signs in to AWS only.")
    handoff_seal.client_public_key(client_public_key)
    _consume([_limit("start", scope.browser.source_ip, STARTS_PER_ADDRESS, 3600)], scope)
    now = scope.clock.now()
    device_code = secrets.token_urlsafe(DEVICE_CODE_BYTES)
    key = handoff_seal.handoff_key(device_code)
    details = {
        "key": key,
        "app": app.name,
        "source_ip": scope.browser.source_ip,
        "user_agent": (scope.browser.user_agent or "")[:200],
        "created_at": now,
        "client_public_key": client_public_key,
    }
    for _ in range(MAX_CODE_DRAWS):
        code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
        if _store_new(key, code, details, now):
            break
    else:
        raise BadRequest("No free code could be drawn; try again.")
    audit.record(
        audit.EventType.HANDOFF_STARTED,
        "pending",
        context=scope.context,
        subject=app.name,
        details={"app": app.name, "user_agent": details["user_agent"]},
        clock=scope.clock,
    )
    return Started(device_code, shown_code(code), EXPIRES_SECONDS, INTERVAL_SECONDS)


def _store_new(key: str, code: str, details: dict[str, Any], now: float) -> bool:
    """Both items of a new hand-off, or neither; False when the user code is taken."""
    expires = int(now + EXPIRES_SECONDS)
    owner = _WAITING_OWNER + details["app"]
    stored = json.dumps(details)
    waiting, code_item = (
        Transaction(
            item_key, username=owner, purpose=PENDING, handoff=stored, created_at=now, expires_at=expires
        )
        for item_key in (key, _code_key(code))
    )
    # An expired code's item (its TTL lags) may be drawn again.
    free = Transaction.id_hash.does_not_exist() | (Transaction.expires_at <= now)
    try:
        with new_transaction() as transaction:
            transaction.save(waiting, condition=Transaction.id_hash.does_not_exist())
            transaction.save(code_item, condition=free)
    except TransactWriteError as exc:
        if _condition_refused(exc):
            return False
        raise
    return True


def _condition_refused(exc: TransactWriteError) -> bool:
    return any(
        reason is not None and reason.code == "ConditionalCheckFailed" for reason in exc.cancellation_reasons
    )


def _limit(kind: str, value: str | None, limit: int, window: int) -> ratelimit.Limit:
    return ratelimit.Limit(
        key=f"handoff:{kind}:{value or 'unknown'}",
        limit=limit,
        window_seconds=window,
        description="codes were tried" if kind != "start" else "sign-ins were started from your address",
        name=f"handoff_{kind}",
    )


def _consume(limits: list[ratelimit.Limit], scope: RequestScope) -> None:
    ratelimit.consume_all(limits, clock=scope.clock)


def find(typed_code: str, user: User, scope: RequestScope) -> Handoff:
    """The waiting hand-off of a code the signed-in ``user`` typed. Every code tried counts
    against the user's and the address's limits first (a 429 once reached), found or not."""
    code = normalised_code(typed_code)
    _consume(
        [
            _limit("code:user", user.username, CODE_TRIES_PER_USER, CODE_TRIES_WINDOW_SECONDS),
            _limit(
                "code:address", scope.browser.source_ip, CODE_TRIES_PER_ADDRESS, CODE_TRIES_WINDOW_SECONDS
            ),
        ],
        scope,
    )
    try:
        item = Transaction.get(_code_key(code), consistent_read=True)
    except Transaction.DoesNotExist:
        item = None
    if item is None or item.purpose != PENDING or item.expires_at <= scope.clock.now() or not item.handoff:
        raise HandoffRefused(INVALID_GRANT, _EXPIRED_OR_ANSWERED)
    details = json.loads(str(item.handoff))
    return Handoff(
        key=details["key"],
        user_code=code,
        app=details["app"],
        source_ip=details.get("source_ip"),
        user_agent=details.get("user_agent") or None,
        created_at=float(details["created_at"]),
        expires_at=float(item.expires_at),
        client_public_key=str(details.get("client_public_key", "")),
    )


def approve(
    handoff: Handoff, user: User, saml_response_b64: str, events: list[AuditEvent], scope: RequestScope
) -> None:
    """Keep the SAMLResponse the app's launch issued, sealed to the command line's key, for one
    pick-up, with the launch's audit ``events`` and the approval's own, all or nothing: a
    hand-off answered or expired meanwhile keeps nothing."""
    sealed = handoff_seal.seal(
        saml_response_b64.encode("ascii"),
        handoff_seal.client_public_key(handoff.client_public_key),
        handoff.key,
    )
    approved = _answer_event(audit.EventType.HANDOFF_APPROVED, "success", handoff, user, scope)
    keep = [Transaction.sealed_saml_response.set(json.dumps(sealed.fields()))]
    _answer(handoff, user, scope, (APPROVED, keep), [*events, approved])


def deny(handoff: Handoff, user: User, scope: RequestScope) -> None:
    denied = _answer_event(audit.EventType.HANDOFF_DENIED, "failure", handoff, user, scope)
    _answer(handoff, user, scope, (DENIED, []), [denied])


def _answer_event(
    event_type: audit.EventType, outcome: str, handoff: Handoff, user: User, scope: RequestScope
) -> AuditEvent:
    return audit.new_event(
        event_type,
        outcome,
        context=scope.context,
        subject=user.username,
        details={"app": handoff.app, "asked_from": handoff.source_ip or "unknown"},
        clock=scope.clock,
    )


def _answer(
    handoff: Handoff,
    user: User,
    scope: RequestScope,
    answer: tuple[str, list[Any]],
    events: list[AuditEvent],
) -> None:
    """Set the hand-off's ``answer`` (its purpose, and more updates) and write ``events``,
    while it still waits; its user code's item goes in the same transaction."""
    purpose, more = answer
    now = scope.clock.now()
    waiting = (Transaction.purpose == PENDING) & (Transaction.expires_at > now)
    try:
        with new_transaction() as transaction:
            transaction.update(
                Transaction(handoff.key),
                [Transaction.purpose.set(purpose), Transaction.username.set(user.username), *more],
                condition=waiting,
            )
            transaction.delete(Transaction(_code_key(handoff.user_code)), condition=waiting)
            for event in events:
                transaction.save(event)
    except TransactWriteError as exc:
        if _condition_refused(exc):
            raise HandoffRefused(INVALID_GRANT, _EXPIRED_OR_ANSWERED) from exc
        raise


def pick_up(device_code: str, scope: RequestScope) -> dict[str, str]:
    """The approved hand-off's sealed SAMLResponse (``idp_core.handoff_seal.Sealed``'s fields),
    once; otherwise ``HandoffRefused`` with RFC 8628's answer: still waiting, polled sooner than
    the interval, denied, expired, or no such code."""
    if not device_code or len(device_code) > MAX_DEVICE_CODE_CHARS:
        raise HandoffRefused(INVALID_GRANT, "The device code is unknown or was used already.")
    key = handoff_seal.handoff_key(device_code)
    now = scope.clock.now()
    try:
        item = Transaction.get(key, consistent_read=True)
    except Transaction.DoesNotExist:
        raise HandoffRefused(INVALID_GRANT, "The device code is unknown or was used already.") from None
    if item.expires_at <= now:
        raise HandoffRefused(EXPIRED_TOKEN, "The code expired before it was approved; run the command again.")
    if item.purpose == DENIED:
        raise HandoffRefused(ACCESS_DENIED, "The sign-in was denied in the browser.")
    if item.purpose == APPROVED and item.sealed_saml_response:
        return _take(item, scope)
    _count_poll(key, now)
    raise HandoffRefused(AUTHORIZATION_PENDING, "Waiting for the code to be approved in the browser.")


def _count_poll(key: str, now: float) -> None:
    """A poll sooner than the interval after the last one is told to slow down (RFC 8628 3.5)."""
    try:
        Transaction(key).update(
            actions=[Transaction.next_poll_at.set(now + INTERVAL_SECONDS)],
            condition=(Transaction.purpose == PENDING)
            & (Transaction.next_poll_at.does_not_exist() | (Transaction.next_poll_at <= now)),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise HandoffRefused(SLOW_DOWN, f"Poll at most every {INTERVAL_SECONDS} seconds.") from exc
        raise


def _take(item: Transaction, scope: RequestScope) -> dict[str, str]:
    """Delete the approved hand-off on the condition that it still is: of two pick-ups, even at
    the same moment, only the one whose delete succeeds gets the sealed SAMLResponse."""
    try:
        Transaction(item.id_hash).delete(condition=Transaction.purpose == APPROVED)
    except DeleteError as exc:
        if condition_failed(exc):
            raise HandoffRefused(INVALID_GRANT, "The device code is unknown or was used already.") from exc
        raise
    details = json.loads(str(item.handoff or "{}"))
    audit.record(
        audit.EventType.HANDOFF_PICKED_UP,
        "success",
        context=scope.context,
        subject=str(item.username),
        details={"app": details.get("app", "")},
        clock=scope.clock,
    )
    sealed: dict[str, str] = json.loads(str(item.sealed_saml_response))
    return sealed
