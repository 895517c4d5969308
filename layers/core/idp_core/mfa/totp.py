"""Authenticator apps: TOTP (RFC 6238) with SHA1, 6 digits and 30-second steps (S6, S11).

The time always comes from the injected clock (the server's), never from the request. A
code is accepted at most once: the accepted time step is stored with a conditional write
(``last_used_step < step``), so a replay and the second of two parallel submissions both
fail with the one wrong-code message. A pending factor passes only the explicit
confirmation path (``confirming=True``) that precedes ``factors.activate_factor``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import math
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from idp_core import audit, sealing
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest
from idp_core.mfa import WrongCode, factors
from idp_core.mfa.methods import MethodKind
from idp_core.models import Factor, condition_failed

SECRET_BYTES = 20  # 160 bits (S6, RFC 4226 section 4)
DIGITS = 6
PERIOD_SECONDS = 30
ALGORITHM = "SHA1"
# Steps accepted either side of the current one: tolerates 30 s of clock drift or typing time.
WINDOW_STEPS = 1
# A phone camera reads a QR code off a screen reliably from about 200 CSS pixels.
QR_MIN_PIXELS = 200
MAX_ISSUER_CHARS = 64
_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
_MAX_CODE_CHARS = 16


@dataclass(frozen=True)
class TotpEnrolment:
    """A pending authenticator app: what the set-up page shows once."""

    factor: Factor
    secret_base32: str
    otpauth_uri: str
    qr_svg: str


# ---------------------------------------------------------------- OATH arithmetic


def hotp(secret: bytes, counter: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 HOTP value of ``counter`` (pyotp's dynamic truncation), zero-padded to ``digits``."""
    # pyotp and segno load where a code or a QR code is made, not with the handlers that import
    # the challenge flow: a cold start needs neither (tests/unit/test_cold_start.py).
    import pyotp

    return pyotp.HOTP(secret_base32(secret), digits=digits, digest=_DIGESTS[digest]).at(counter)


def time_step(now: float, period: int = PERIOD_SECONDS) -> int:
    return int(now // period)


def totp_at(
    secret: bytes,
    for_time: float,
    *,
    digits: int = DIGITS,
    period: int = PERIOD_SECONDS,
    digest: str = "sha1",
) -> str:
    """RFC 6238 TOTP value at ``for_time`` (seconds since the epoch)."""
    return hotp(secret, time_step(for_time, period), digits=digits, digest=digest)


def matching_step(
    secret: bytes, code: str, *, now: float, digits: int, period: int, window: int = WINDOW_STEPS
) -> int | None:
    """The time step within ±``window`` of ``now`` whose value is ``code``, or None.

    Every candidate is computed and compared in constant time, so the answer's timing does
    not tell which step matched.
    """
    import pyotp

    current = time_step(now, period)
    generator = pyotp.HOTP(secret_base32(secret), digits=digits, digest=hashlib.sha1)
    found: int | None = None
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(generator.at(step), code) and found is None:
            found = step
    return found


def clean_code(code: object, digits: int) -> str:
    """The code without spaces and dashes; anything but ``digits`` ASCII digits is a wrong code."""
    if not isinstance(code, str) or len(code) > 4 * _MAX_CODE_CHARS:
        raise WrongCode()
    cleaned = "".join(code.split()).replace("-", "")
    if len(cleaned) != digits or not (cleaned.isascii() and cleaned.isdigit()):
        raise WrongCode()
    return cleaned


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def secret_base32(secret: bytes) -> str:
    """Base32 without padding, as authenticator apps expect it."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


# ---------------------------------------------------------------- URI and QR code


def _check_issuer(issuer: str) -> str:
    issuer = (issuer or "").strip()
    if not issuer or len(issuer) > MAX_ISSUER_CHARS or ":" in issuer or not issuer.isprintable():
        raise BadRequest(f"The issuer name must be 1-{MAX_ISSUER_CHARS} printable characters without ':'.")
    return issuer


def otpauth_uri(secret_b32: str, *, issuer: str, account: str) -> str:
    """The Key URI Format that Google Authenticator, Microsoft Authenticator and Authy read."""
    issuer = _check_issuer(issuer)
    label = f"{quote(issuer, safe='')}:{quote(account, safe='@')}"
    return (
        f"otpauth://totp/{label}?secret={secret_b32}&issuer={quote(issuer, safe='')}"
        f"&algorithm={ALGORITHM}&digits={DIGITS}&period={PERIOD_SECONDS}"
    )


def qr_svg(uri: str, *, title: str = "QR code for your authenticator app") -> str:
    """An inline SVG of the URI, scaled so it renders at least ``QR_MIN_PIXELS`` wide."""
    import segno

    code = segno.make(uri, error="m")
    width, _ = code.symbol_size(scale=1)
    scale = max(1, math.ceil(QR_MIN_PIXELS / width))
    out = io.BytesIO()
    code.save(out, kind="svg", scale=scale, title=title, xmldecl=False, svgns=True, svgclass="qr-code")
    return out.getvalue().decode("utf-8")


# ---------------------------------------------------------------- enrolment


def start_enrolment(
    username: str,
    label: str,
    *,
    kms: Any,
    key_id: str,
    issuer: str,
    clock: Clock = SYSTEM_CLOCK,
    account: str | None = None,
    context: AuditContext | None = None,
) -> TotpEnrolment:
    """Create a pending authenticator-app factor with a new secret (S6, S11).

    The factor is unusable until ``verify(..., confirming=True)`` and
    ``factors.activate_factor`` confirm the first code. Earlier pending authenticator apps
    of the same user are dropped: an abandoned enrolment leaves nothing behind.
    """
    clean = factors.clean_label(label)
    issuer = _check_issuer(issuer)
    existing = list(Factor.query(username))
    stale = [f for f in existing if f.kind == MethodKind.TOTP and f.status == "pending"]
    factors.ensure_room_for_another(username, [f for f in existing if f not in stale])
    secret = new_secret()
    factor_id = factors.new_factor_id()
    factor = Factor(
        username,
        factor_id,
        kind=MethodKind.TOTP.value,
        label=clean,
        status="pending",
        is_default=False,
        created_at=clock.now(),
        secret=sealing.encrypt_factor_secret(kms, key_id, secret, username=username, factor_id=factor_id),
        digits=DIGITS,
        period=PERIOD_SECONDS,
    )
    try:
        factor.save(condition=Factor.factor_id.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):  # A 96-bit id collision: practically impossible, but never overwrite.
            raise BadRequest("Please try again.") from exc
        raise
    for old in stale:
        try:
            old.delete(condition=Factor.status == "pending")
        except DeleteError as exc:
            if not condition_failed(exc):  # Confirmed meanwhile in another tab: keep it.
                raise
    audit.record(
        audit.EventType.MFA_FACTOR_ENROLMENT_STARTED,
        "success",
        context=context,
        subject=username,
        details={"factor": MethodKind.TOTP.value, "factor_id": factor_id, "label": clean},
        clock=clock,
    )
    b32 = secret_base32(secret)
    uri = otpauth_uri(b32, issuer=issuer, account=account or username)
    return TotpEnrolment(factor=factor, secret_base32=b32, otpauth_uri=uri, qr_svg=qr_svg(uri))


def enrolment_view(factor: Factor, *, kms: Any, issuer: str, account: str) -> tuple[str, str, str]:
    """(secret_base32, otpauth_uri, qr_svg) of a *pending* factor, to show the set-up page again.

    An active factor's secret is never shown again: that would let anyone with a
    session copy the user's authenticator.
    """
    if factor.kind != MethodKind.TOTP or factor.status != "pending":
        raise BadRequest("This authenticator app is already set up; its secret is not shown again.")
    secret = sealing.decrypt_factor_secret(
        kms, factor.secret, username=factor.username, factor_id=factor.factor_id
    )
    b32 = secret_base32(secret)
    uri = otpauth_uri(b32, issuer=issuer, account=account)
    return b32, uri, qr_svg(uri)


# ---------------------------------------------------------------- verification


def accept_time_code(
    factor: Factor,
    secret: bytes,
    code: str,
    *,
    expected_status: str,
    clock: Clock,
    rewrapped_secret: str | None = None,
) -> int:
    """Accept a TOTP ``code`` for ``factor`` once, or raise WrongCode; returns the accepted step.

    Shared by authenticator apps and TOTP hardware tokens. The conditional write is the
    only guard that counts: two parallel requests with one code both find the step, and
    exactly one of them can move ``last_used_step`` forward to it. A ``rewrapped_secret``
    (``sealing.rewrapped``) replaces the stored one in the same write.
    """
    digits = int(factor.digits or DIGITS)
    period = int(factor.period or PERIOD_SECONDS)
    cleaned = clean_code(code, digits)
    now = clock.now()
    step = matching_step(secret, cleaned, now=now, digits=digits, period=period)
    if step is None:
        raise WrongCode()
    if factor.last_used_step is not None and step <= int(factor.last_used_step):
        raise WrongCode()
    try:
        factor.update(
            actions=[
                Factor.last_used_step.set(step),
                Factor.last_used_at.set(now),
                *([Factor.secret.set(rewrapped_secret)] if rewrapped_secret else []),
            ],
            condition=(Factor.last_used_step.does_not_exist() | (Factor.last_used_step < step))
            & (Factor.status == expected_status)
            & (Factor.kind == factor.kind),
        )
    except UpdateError as exc:
        if condition_failed(exc):  # A replay, a parallel use, or the factor changed/was removed.
            raise WrongCode() from exc
        raise
    return step


def verify(
    factor: Factor, code: str, *, kms: Any, clock: Clock = SYSTEM_CLOCK, confirming: bool = False
) -> None:
    """Accept ``code`` for an authenticator app or raise ``WrongCode`` (one message for all).

    Only an *active* factor is accepted, unless ``confirming=True``: that is the first code
    of a *pending* factor, after which the caller activates it with
    ``factors.activate_factor``. A pending factor never passes a sign-in check (S11).
    """
    expected_status = "pending" if confirming else "active"
    if factor.kind != MethodKind.TOTP or factor.status != expected_status:
        raise WrongCode()
    secret, rewrapped_secret = read_secret(factor, kms)
    accept_time_code(
        factor, secret, code, expected_status=expected_status, clock=clock, rewrapped_secret=rewrapped_secret
    )


def read_secret(factor: Factor, kms: Any) -> tuple[bytes, str | None]:
    """The factor's seed, and its envelope form when it is still stored in the KMS form (which
    costs a KMS request at every use): the caller writes it with the use (S6)."""
    secret = sealing.decrypt_factor_secret(
        kms, factor.secret, username=factor.username, factor_id=factor.factor_id
    )
    return secret, sealing.rewrapped(
        kms, str(factor.secret), secret, username=factor.username, factor_id=factor.factor_id
    )


def confirm_enrolment(
    factor: Factor, code: str, *, kms: Any, clock: Clock = SYSTEM_CLOCK, context: AuditContext | None = None
) -> Factor:
    """The first valid code of a pending authenticator app activates it (S11)."""
    verify(factor, code, kms=kms, clock=clock, confirming=True)
    return factors.activate_factor(factor, clock, context=context)
