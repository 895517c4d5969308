"""Security keys and passkeys (W3C WebAuthn L2, S24) through python-fido2: the options the
browser's ``navigator.credentials`` calls get, and the checks of what it answers.

Nothing here parses CBOR or COSE by hand: python-fido2 (Yubico's, which needs only
``cryptography``) decodes and verifies the attestation and assertion (origin, RP ID hash,
user presence and verification, signature). This module adds what the library leaves to
the relying party:

- Challenges: 32 random bytes, stored server-side only as a hash in a login transaction
  whose key binds them to one session (or one sign-in form) and one purpose, valid 5
  minutes, and consumed by a conditional delete, so a replayed answer finds nothing (S24).
- The sign counter: kept on the factor and advanced only by a conditional write; an answer
  whose counter does not grow (when either is nonzero) is refused and audited as a cloned
  key (``webauthn.clone_suspected``).
- The relying party: its ID and origin follow the site's public address
  (``RelyingParty.of``).

Each credential is one factor (kind ``webauthn``) of its user, so the challenge, the tiers,
the policies and /me/mfa treat it like any other method; a small item of the credentials
table maps its id to that factor for the passkey sign-in, which starts without a username.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pynamodb.exceptions import TransactWriteError

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest
from idp_core.mfa import WrongCode, factors
from idp_core.mfa.methods.base import MAX_ANSWER_CHARS, MethodKind
from idp_core.models import Factor, Transaction, WebAuthnCredential, new_transaction

if TYPE_CHECKING:
    from idp_core.mfa.policy import MfaSettings
    from idp_core.models import User

CHALLENGE_BYTES = 32
CHALLENGE_SECONDS = 5 * 60
RP_NAME = "Identity"
# What the browser is given to wait for the user, in milliseconds.
TIMEOUT_MS = 120_000
# The start of a login transaction's username while nobody is known yet (a passkey sign-in's
# challenge): usernames never contain a space, so no user's transactions include it. Each
# challenge adds its own key to it, so they do not all land on one key of the by-user index.
NOBODY = " passkey sign-in "
_LOOPBACK_NAMES = frozenset({"localhost"})

_STALE_REGISTRATION = (
    "This answer is for an older or another request, or the key is registered already. Start again."
)
# A browser names a few transports ("usb", "nfc", "ble", "internal", "hybrid").
MAX_TRANSPORTS = 8
MAX_TRANSPORT_CHARS = 16
_BAD_ANSWER = "That is not an answer from a security key or passkey. Try again."


class CloneSuspected(WrongCode):
    """A key answered with a sign counter that did not grow: two devices share its secret."""


@dataclass(frozen=True)
class RelyingParty:
    """Who the browser's key answers to: the RP ID (a host name, never an IP address) and the
    one origin its answers must name."""

    rp_id: str
    origin: str

    @classmethod
    def of(cls, base_url: str) -> RelyingParty:
        """From the site's public address (a custom domain or the execute-api host). The local
        http stack listens on a loopback address, which WebAuthn cannot use as an RP ID: there
        the browser uses http://localhost:PORT, as every browser treats localhost as secure."""
        parts = urlsplit(base_url)
        host = (parts.hostname or "").lower()
        port = f":{parts.port}" if parts.port else ""
        if parts.scheme == "http":
            if host not in _LOOPBACK_NAMES and not _is_loopback_ip(host):
                raise BadRequest("Security keys work only on the site's https address.")
            return cls("localhost", f"http://localhost{port}")
        if parts.scheme != "https" or not host or _is_ip(host):
            raise BadRequest("Security keys need the site's https address with a host name.")
        return cls(host, f"https://{host}{port}")


@dataclass(frozen=True)
class Ceremony:
    """One WebAuthn ceremony's where and when: the relying party, the transaction key that
    binds its challenge to a session (or sign-in form) and purpose, and who asks when."""

    rp: RelyingParty
    binding: str
    clock: Clock = SYSTEM_CLOCK
    context: AuditContext | None = None


@dataclass(frozen=True)
class Counts:
    """A key's sign counter as stored and as it answered now."""

    stored: int
    answered: int


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_loopback_ip(host: str) -> bool:
    return _is_ip(host) and ipaddress.ip_address(host.strip("[]")).is_loopback


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _challenge_hash(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


# ---------------------------------------------------------------- challenges


def passkey_binding(login_token: str) -> str:
    """The transaction key of a passkey sign-in's challenge: bound to the sign-in form's own
    double-submit cookie, so only the browser that asked for it can answer it."""
    return hashlib.sha256(f"passkey\x00{login_token}".encode()).hexdigest()


def new_challenge(
    binding: str, *, username: str, purpose: str, factor_id: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> bytes:
    """32 random bytes for one ceremony, stored as a hash under ``binding`` (a new one replaces
    the last, which is then worthless)."""
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    now = clock.now()
    Transaction(
        binding,
        username=username,
        purpose=purpose,
        factor_id=factor_id,
        code_hash=_challenge_hash(challenge),
        code_expires_at=now + CHALLENGE_SECONDS,
        created_at=now,
        expires_at=int(now + CHALLENGE_SECONDS) + 1,
    ).save()
    return challenge


def _challenge_condition(challenge: bytes, now: float) -> Any:
    return (Transaction.code_hash == _challenge_hash(challenge)) & (Transaction.code_expires_at > now)


# ---------------------------------------------------------------- parsing answers


@dataclass(frozen=True)
class Answer:
    """A browser's answer, parsed by fido2 (``RegistrationResponse`` or
    ``AuthenticationResponse``), with its challenge, origin and how the key connects."""

    response: Any
    challenge: bytes
    origin: str
    transports: frozenset[str] = frozenset()


def parse_answer(text: str, *, registration: bool) -> Answer:
    """The JSON of a browser's ``PublicKeyCredential`` (``toJSON()``), or ``BadRequest`` before
    anything is read or written (S26): too long, not JSON, truncated CBOR, missing parts."""
    from fido2.webauthn import AuthenticationResponse, RegistrationResponse

    if not isinstance(text, str) or not text or len(text) > MAX_ANSWER_CHARS:
        raise BadRequest(_BAD_ANSWER)
    try:
        data = json.loads(text)
        parser = RegistrationResponse if registration else AuthenticationResponse
        response: Any = parser.from_dict(data)
        client_data = response.response.client_data
        transports = data["response"].get("transports") or [] if registration else []
        if not all(isinstance(t, str) and len(t) <= MAX_TRANSPORT_CHARS for t in transports):
            raise ValueError("transports")
    except Exception as exc:  # Every malformed answer gets the same sentence.
        raise BadRequest(_BAD_ANSWER) from exc
    return Answer(response, client_data.challenge, client_data.origin, frozenset(transports[:MAX_TRANSPORTS]))


def _server(rp: RelyingParty, *, attestation: str = "none") -> Any:
    """fido2's relying party, accepting exactly the site's origin (not its subdomains)."""
    from fido2.server import Fido2Server
    from fido2.webauthn import AttestationConveyancePreference, PublicKeyCredentialRpEntity

    return Fido2Server(
        PublicKeyCredentialRpEntity(name=RP_NAME, id=rp.rp_id),
        attestation=AttestationConveyancePreference(attestation),
        verify_origin=lambda origin: origin == rp.origin,
        verify_attestation=_verify_attestation_statement,
    )


def _verify_attestation_statement(attestation_object: Any, client_data_hash: bytes) -> None:
    """The attestation statement's signature over this registration (its certificate chain is
    not checked against vendors' roots: the model list narrows honest keys, see README)."""
    from fido2.attestation import Attestation

    Attestation.for_type(attestation_object.fmt)().verify(
        attestation_object.att_stmt, attestation_object.auth_data, client_data_hash
    )


def _state(challenge: bytes, user_verification: str) -> dict[str, Any]:
    """What fido2 checks an answer against: the challenge it carries, which the caller then
    proves was issued here by using it up, and the user verification asked for."""
    from fido2.utils import websafe_encode
    from fido2.webauthn import UserVerificationRequirement

    return {
        "challenge": websafe_encode(challenge),
        "user_verification": UserVerificationRequirement(user_verification),
    }


def _options_json(options: Any) -> str:
    return json.dumps(dict(options.public_key))


# ---------------------------------------------------------------- registration


def registration_options(user: User, ceremony: Ceremony, *, settings: MfaSettings) -> str:
    """The JSON for ``navigator.credentials.create``: a discoverable credential preferred (a
    passkey), the user's keys excluded, attestation only when the admin lists allowed models."""
    from fido2.webauthn import (
        PublicKeyCredentialUserEntity,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    # The key keeps the factor's id as its user handle: random, not the username (WebAuthn
    # forbids personal data there), and it names the factor a passkey sign-in answers for.
    factor_id = factors.new_factor_id()
    challenge = new_challenge(
        ceremony.binding, username=user.username, purpose="enrol", factor_id=factor_id, clock=ceremony.clock
    )
    server = _server(ceremony.rp, attestation="direct" if settings.webauthn_models else "none")
    server.timeout = TIMEOUT_MS
    options, _ = server.register_begin(
        PublicKeyCredentialUserEntity(
            id=factor_id.encode("ascii"),
            name=user.display_username,
            display_name=user.display_name or user.display_username,
        ),
        credentials=_descriptors(_keys_of(user.username)),
        resident_key_requirement=ResidentKeyRequirement.PREFERRED,
        user_verification=UserVerificationRequirement(settings.webauthn_user_verification),
        challenge=challenge,
    )
    return _options_json(options)


def _keys_of(username: str) -> list[Factor]:
    return [f for f in factors.list_factors(username) if f.kind == MethodKind.WEBAUTHN and f.credential_id]


def _descriptors(keys: list[Factor]) -> list[Any]:
    from fido2.webauthn import AuthenticatorTransport, PublicKeyCredentialDescriptor, PublicKeyCredentialType

    # Transports the browser named that this fido2 does not know are left out of the hint.
    known = {transport.value for transport in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            type=PublicKeyCredentialType.PUBLIC_KEY,
            id=_unb64url(str(key.credential_id)),
            transports=[AuthenticatorTransport(t) for t in sorted(key.transports or ()) if t in known]
            or None,
        )
        for key in keys
    ]


def register(user: User, answer_text: str, name: str, ceremony: Ceremony, *, settings: MfaSettings) -> Factor:
    """Check a new key's answer and store it as an active factor (its proof is the answer).

    Everything is checked before anything is written; the challenge is then used up, the
    factor and its credential item are written in one transaction, so a replay or a failure
    leaves nothing behind. ``BadRequest`` with a sentence for every refusal (S26).
    """
    from fido2 import cbor

    label = factors.clean_label(name)
    answer = parse_answer(answer_text, registration=True)
    server = _server(ceremony.rp, attestation="direct" if settings.webauthn_models else "none")
    try:
        auth_data = server.register_complete(
            _state(answer.challenge, settings.webauthn_user_verification), answer.response
        )
    except Exception as exc:  # fido2 raises ValueError and its own errors alike.
        raise BadRequest(f"The security key's answer was refused: {_reason(exc)}") from exc
    attested = auth_data.credential_data
    aaguid = str(attested.aaguid)
    _check_model(answer.response.response.attestation_object.fmt, aaguid, settings)
    try:
        factor_id = str(Transaction.get(ceremony.binding, consistent_read=True).factor_id or "")
    except Transaction.DoesNotExist:
        factor_id = ""
    if not factor_id:
        raise BadRequest(_STALE_REGISTRATION)
    existing = factors.list_factors(user.username)
    factors.ensure_room_for_another(user.username, existing)
    credential_id = b64url(attested.credential_id)
    if any(f.credential_id == credential_id for f in existing):
        raise BadRequest("This security key is already registered.")
    now = ceremony.clock.now()
    factor = Factor(
        user.username,
        factor_id,
        kind=MethodKind.WEBAUTHN.value,
        label=label,
        status="active",
        is_default=not any(f.status == "active" and f.is_default for f in existing),
        created_at=now,
        confirmed_at=now,
        credential_id=credential_id,
        public_key=b64url(cbor.encode(dict(attested.public_key))),
        sign_count=int(auth_data.counter),
        aaguid=aaguid,
        transports=set(answer.transports) or None,
        user_verified=auth_data.is_user_verified(),
        attestation_format=str(answer.response.response.attestation_object.fmt),
    )
    owner = WebAuthnCredential(credential_id, username=user.username, factor_id=factor_id, created_at=now)
    try:
        with new_transaction() as transaction:
            transaction.delete(
                Transaction(ceremony.binding), condition=_challenge_condition(answer.challenge, now)
            )
            transaction.save(factor, condition=Factor.factor_id.does_not_exist())
            transaction.save(owner, condition=WebAuthnCredential.credential_id.does_not_exist())
    except TransactWriteError as exc:
        raise BadRequest(_STALE_REGISTRATION) from exc
    audit.record(
        audit.EventType.MFA_FACTOR_ACTIVATED,
        "success",
        context=ceremony.context,
        subject=user.username,
        details={"factor": factor.kind, "factor_id": factor_id, "label": label, "aaguid": aaguid},
        clock=ceremony.clock,
    )
    return factor


def _reason(exc: Exception) -> str:
    text = str(exc).strip().rstrip(".")
    return (text[:200] or "it could not be verified") + "."


def _check_model(fmt: str, aaguid: str, settings: MfaSettings) -> None:
    """With an admin list of allowed models, only an attested key of a listed model is taken."""
    if not settings.webauthn_models:
        return
    if fmt == "none":
        raise BadRequest(
            "Only approved security key models are allowed here, and this key did not say which it is."
        )
    if aaguid not in settings.webauthn_models:
        raise BadRequest(f"This security key model ({aaguid}) is not one an administrator approved.")


# ---------------------------------------------------------------- signing in with a key


def authentication_options(
    keys: list[Factor], ceremony: Ceremony, *, username: str, purpose: str, user_verification: str
) -> str:
    """The JSON for ``navigator.credentials.get``: ``keys`` allowed (none: any discoverable
    credential of this site, the passkey sign-in)."""
    from fido2.webauthn import UserVerificationRequirement

    challenge = new_challenge(ceremony.binding, username=username, purpose=purpose, clock=ceremony.clock)
    server = _server(ceremony.rp)
    server.timeout = TIMEOUT_MS
    options, _ = server.authenticate_begin(
        _descriptors(keys) or None,
        user_verification=UserVerificationRequirement(user_verification),
        challenge=challenge,
    )
    return _options_json(options)


def verify_assertion(
    factor: Factor, answer: Answer, ceremony: Ceremony, *, require_user_verification: bool
) -> bool:
    """Accept a key's answer for ``factor`` or raise ``WrongCode`` (``CloneSuspected`` for a
    counter that did not grow); True when the key verified the user (PIN, biometrics). The
    challenge is used up and the counter advanced in one conditional transaction, so of two
    racing answers exactly one counts."""
    from fido2.cose import CoseKey
    from fido2.webauthn import Aaguid, AttestedCredentialData

    if not factor.credential_id or not factor.public_key:
        raise WrongCode()
    credential_id = _unb64url(str(factor.credential_id))
    if answer.response.raw_id != credential_id:
        raise WrongCode()  # Another key's answer (another user's, or a removed key's).
    stored_key = AttestedCredentialData.create(
        Aaguid.NONE, credential_id, CoseKey.parse(_cbor_decode(str(factor.public_key)))
    )
    try:
        _server(ceremony.rp).authenticate_complete(
            _state(answer.challenge, "required" if require_user_verification else "preferred"),
            [stored_key],
            answer.response,
        )
    except Exception as exc:  # Wrong origin, RP ID, signature, flags: all a wrong answer.
        raise WrongCode() from exc
    auth_data = answer.response.response.authenticator_data
    counts = Counts(stored=int(factor.sign_count or 0), answered=int(auth_data.counter))
    if (counts.stored or counts.answered) and counts.answered <= counts.stored:
        _clone_suspected(factor, counts, ceremony)
    verified = bool(auth_data.is_user_verified())
    _commit_use(factor, answer.challenge, ceremony, counts, user_verified=verified)
    return verified


def _cbor_decode(text: str) -> Any:
    from fido2 import cbor

    return cbor.decode(_unb64url(text))


def _commit_use(
    factor: Factor, challenge: bytes, ceremony: Ceremony, counts: Counts, *, user_verified: bool
) -> None:
    now = ceremony.clock.now()
    new = counts.answered
    counter_holds = (Factor.sign_count < new) if new else (Factor.sign_count == 0)
    try:
        with new_transaction() as transaction:
            transaction.delete(Transaction(ceremony.binding), condition=_challenge_condition(challenge, now))
            transaction.update(
                factor,
                actions=[
                    Factor.sign_count.set(new),
                    Factor.last_used_at.set(now),
                    Factor.user_verified.set(user_verified),
                ],
                condition=(Factor.status == "active") & counter_holds,
            )
    except TransactWriteError as exc:
        challenge_failed, counter_failed = [
            getattr(reason, "code", None) == "ConditionalCheckFailed" for reason in exc.cancellation_reasons
        ] or [True, False]
        if counter_failed and not challenge_failed:
            # The challenge was good but a parallel answer advanced the counter first.
            _clone_suspected(factor, counts, ceremony)
        raise WrongCode() from exc


def _clone_suspected(factor: Factor, counts: Counts, ceremony: Ceremony) -> None:
    audit.record(
        audit.EventType.WEBAUTHN_CLONE_SUSPECTED,
        "failure",
        context=ceremony.context,
        subject=factor.username,
        details={
            "factor_id": factor.factor_id,
            "label": factor.label,
            "aaguid": factor.aaguid or "",
            "stored_count": counts.stored,
            "answered_count": counts.answered,
        },
        clock=ceremony.clock,
    )
    raise CloneSuspected()


# ---------------------------------------------------------------- passkey sign-in


def owner_of(answer: Answer) -> WebAuthnCredential | None:
    """The credential item of the key that answered a passkey sign-in (None: unknown key)."""
    try:
        return WebAuthnCredential.get(b64url(answer.response.raw_id))
    except WebAuthnCredential.DoesNotExist:
        return None


def remove_credential(factor: Factor) -> bool:
    """Forget a removed key's credential item, so no passkey sign-in finds it any more."""
    if not factor.credential_id:
        return False
    WebAuthnCredential(str(factor.credential_id)).delete()
    return True
