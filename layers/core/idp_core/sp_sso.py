"""SP-initiated sign-in and single logout: from a service provider's request to the pending
answer that the sign-in pages carry through, and back.

A received AuthnRequest is checked (signature against the SP's pinned certificates, S21;
ACS URL or index against its metadata; age; destination), and stored once under its ID with
a conditional put: a second arrival of the same ID is a replay and is refused. The stored
item (a login transaction with a TTL) holds what the answer needs: the request ID for
InResponseTo, the ACS URL chosen from metadata and the RelayState to return unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from pynamodb.exceptions import PutError, UpdateError

from idp_core import audit
from idp_core.apps import get_app
from idp_core.audit import AuditContext
from idp_core.clock import Clock
from idp_core.errors import BadRequest, Conflict, IdpError, NotFound
from idp_core.models import App, Transaction, condition_failed
from idp_core.saml import sp_requests
from idp_core.saml.response import (
    STATUS_NO_PASSIVE,
    STATUS_RESPONDER,
    Reply,
    build_logout_response,
    build_status_response,
)
from idp_core.saml.sp_metadata import BINDING_POST, Endpoint
from idp_core.saml.sp_requests import ReceivedMessage
from idp_core.saml.xml import NS_SAMLP
from idp_core.saml_apps import KIND, NAMEID_FORMATS, SpConfig, sp_config
from idp_core.ttl_cache import TtlCache

if TYPE_CHECKING:
    from idp_core.saml.certificate import SigningIdentity

PURPOSE_PENDING = "saml-sso"
PURPOSE_ANSWERED = "saml-answered"
# Longer than a request is accepted for (sp_requests.MAX_REQUEST_AGE_SECONDS plus the skew),
# so an ID is remembered for as long as its request could be replayed.
REPLAY_SECONDS = 15 * 60
_KEY_PREFIX = "saml-request:"
HANDLE_CHARS = 64  # a SHA-256 in hex
_USER_PREFIX = "saml-sp:"
# The app of each SP entity id, by apps table: a container keeps it as long as the groups'
# states, so a change to an SP's settings reaches its sign-ins within that time, as the MFA
# settings and adaptive policies do, and a request costs no read of the app.
_apps_by_entity: TtlCache[tuple[str, str], App] = TtlCache(30.0)


@dataclass(frozen=True)
class PendingRequest:
    """An accepted AuthnRequest waiting for its answer; ``handle`` finds it again."""

    handle: str
    app: str
    request_id: str
    acs_url: str
    relay_state: str | None
    force_authn: bool
    is_passive: bool
    received_at: float


def app_for_entity(entity_id: str) -> App:
    """The SAML app whose SP has ``entity_id``; NotFound for an SP nobody registered."""
    table = App.Meta.table_name
    app = _apps_by_entity.get((table, entity_id))
    if app is None:
        for item in App.scan(App.kind == KIND):
            _apps_by_entity.put((table, str(item.audience)), item)
        app = _apps_by_entity.get((table, entity_id))
    if app is None:
        raise NotFound(f"No app is registered for the service provider {entity_id[:200]!r}.")
    return app


def _acs_url(config: SpConfig, root: object) -> str:
    url = root.get("AssertionConsumerServiceURL")  # type: ignore[attr-defined]
    index = root.get("AssertionConsumerServiceIndex")  # type: ignore[attr-defined]
    if url is not None and index is not None:
        raise BadRequest("A request names its ACS by URL or by index, not both.")
    binding = root.get("ProtocolBinding")  # type: ignore[attr-defined]
    if binding is not None and binding != BINDING_POST:
        raise BadRequest("This identity provider answers with the HTTP-POST binding only.")
    return config.acs_for(url=url, index=index).url


def _check_name_id_policy(config: SpConfig, root: object) -> None:
    policy = root.find(f"{{{NS_SAMLP}}}NameIDPolicy")  # type: ignore[attr-defined]
    wanted = policy.get("Format") if policy is not None else None
    if wanted in (None, NAMEID_FORMATS["unspecified"], config.name_id_format_uri()):
        return
    raise BadRequest(
        f"The service provider asks for the NameID format {wanted[:120]!r}; this app sends "
        f"{config.name_id_format_uri()}."
    )


def _key(entity_id: str, request_id: str) -> str:
    return hashlib.sha256(f"{entity_id}\n{request_id}".encode()).hexdigest()


def _receive(
    message: ReceivedMessage, *, endpoint_url: str, logout: bool, context: AuditContext | None, clock: Clock
) -> tuple[App, SpConfig, PendingRequest]:
    """Check a request of the SP that issued it and remember it once (its ID against replay)."""
    app = app_for_entity(message.issuer)
    expected = f"{{{NS_SAMLP}}}{'LogoutRequest' if logout else 'AuthnRequest'}"
    try:
        config = sp_config(app)
        if logout and not (config.logout_endpoint() and config.certificates):
            raise BadRequest(
                "This app has no single logout: its SP publishes no logout endpoint or no certificate to "
                "check its logout requests with."
            )
        # A logout request is always signed: unsigned, any page could sign people out.
        required = config.requests_signed or logout
        root = sp_requests.verified_root(message, config.certificates, required=required, now=clock.now())
        if root.tag != expected:
            raise BadRequest(f"The {message.field} sent here is not a {expected.split('}')[1]}.")
        request_id = sp_requests.request_id(root)
        sp_requests.check_fresh(root, clock.now())
        sp_requests.check_destination(root, endpoint_url)
        if logout:
            endpoint = config.logout_endpoint()
            destination = (endpoint.response_url or endpoint.url) if endpoint else ""
        else:
            _check_name_id_policy(config, root)
            destination = _acs_url(config, root)
        pending = PendingRequest(
            handle=_key(config.entity_id, request_id),
            app=app.name,
            request_id=request_id,
            acs_url=destination,
            relay_state=message.relay_state,
            force_authn=sp_requests.flag(root, "ForceAuthn"),
            is_passive=sp_requests.flag(root, "IsPassive"),
            received_at=clock.now(),
        )
        _remember(pending, clock)
    except IdpError as exc:
        raise _refused(exc, app, context, clock) from exc
    return app, config, pending


def receive_logout_request(
    message: ReceivedMessage, *, slo_url: str, context: AuditContext | None, clock: Clock
) -> tuple[App, SpConfig, PendingRequest]:
    """Check a signed LogoutRequest of an SP with single logout and remember it once."""
    return _receive(message, endpoint_url=slo_url, logout=True, context=context, clock=clock)


def receive_authn_request(
    message: ReceivedMessage, *, sso_url: str, context: AuditContext | None, clock: Clock
) -> tuple[App, PendingRequest]:
    """Check an AuthnRequest and store it as pending (once: a replayed ID raises Conflict)."""
    app, _, pending = _receive(message, endpoint_url=sso_url, logout=False, context=context, clock=clock)
    return app, pending


def _refused(error: Exception, app: App, context: AuditContext | None, clock: Clock) -> Exception:
    audit.record(
        audit.EventType.SAML_REQUEST_REFUSED,
        "failure",
        context=context,
        subject=app.name,
        details={"app": app.name, "reason": str(error)[:300]},
        clock=clock,
    )
    return error


def _remember(pending: PendingRequest, clock: Clock) -> None:
    now = clock.now()
    item = Transaction(
        _KEY_PREFIX + pending.handle,
        username=_USER_PREFIX + pending.app,
        purpose=PURPOSE_PENDING,
        created_at=now,
        expires_at=int(now + REPLAY_SECONDS),
        sp_request=json.dumps(asdict(pending)),
    )
    try:
        item.save(condition=Transaction.id_hash.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            raise Conflict(
                "This sign-in request was already received (a replayed request ID); nothing is issued. "
                "Start again at the app."
            ) from exc
        raise


def pending_request(handle: str, clock: Clock) -> PendingRequest:
    """The pending request behind ``handle``, unanswered and within its time; else BadRequest."""
    if not handle or len(handle) != HANDLE_CHARS or not all(ch in "0123456789abcdef" for ch in handle):
        raise BadRequest("The sign-in request to continue is missing or malformed.")
    try:
        item = Transaction.get(_KEY_PREFIX + handle, consistent_read=True)
    except Transaction.DoesNotExist:
        item = None
    if (
        item is None
        or item.purpose != PURPOSE_PENDING
        or item.expires_at <= clock.now()
        or not item.sp_request
    ):
        raise BadRequest("This sign-in request has expired or was answered already. Start again at the app.")
    return PendingRequest(**json.loads(str(item.sp_request)))


def mark_answered(pending: PendingRequest) -> None:
    """Answer a request once: a second answer to the same request ID is refused."""
    try:
        Transaction(_KEY_PREFIX + pending.handle).update(
            actions=[Transaction.purpose.set(PURPOSE_ANSWERED)],
            condition=Transaction.purpose == PURPOSE_PENDING,
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise BadRequest("This sign-in request was answered already. Start again at the app.") from exc
        raise


def no_passive_answer(
    pending: PendingRequest, *, issuer: str, identity: SigningIdentity, clock: Clock
) -> bytes:
    """The signed Responder/NoPassive Response to an IsPassive request that would need a page."""
    mark_answered(pending)
    reply = Reply(issuer, pending.acs_url, pending.request_id)
    return build_status_response(reply, (STATUS_RESPONDER, STATUS_NO_PASSIVE), identity=identity, clock=clock)


def logout_answer(
    pending: PendingRequest, *, issuer: str, identity: SigningIdentity, clock: Clock
) -> tuple[Endpoint, bytes]:
    """The SP's logout endpoint and the signed LogoutResponse (Success) to send there."""
    mark_answered(pending)
    endpoint = sp_config(get_app(pending.app)).logout_endpoint()
    if endpoint is None:
        raise BadRequest("This app no longer has a single logout endpoint.")
    reply = Reply(issuer, pending.acs_url, pending.request_id)
    return endpoint, build_logout_response(reply, identity=identity, clock=clock)
