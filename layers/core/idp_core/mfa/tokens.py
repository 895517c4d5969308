"""Hardware OATH tokens: CSV import by an admin, assignment to a user, TOTP and HOTP codes.

An imported token's secret is encrypted under the context {user: ":token-store",
factor: serial} (":" cannot occur in a username, so no user's factor shares it). On
assignment the secret is re-encrypted under the user's factor context, as every other
factor secret is (S6). The token is active from assignment: the admin hands the device
over, and no secret travels to the user that could have been mistyped (S11 is about
confirming a secret the user copied).

An HOTP factor is recognised by ``period is None``; its ``counter`` is the next expected
moving factor.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hmac
import io
import re
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from idp_core import audit, sealing
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from idp_core.mfa import WrongCode, factors, totp
from idp_core.mfa.methods import MethodKind
from idp_core.models import Factor, OathToken, User, condition_failed
from idp_core.names import canonical_username

TOKEN_STORE_USER = ":token-store"  # noqa: S105 - a context value, not a password
KINDS = ("totp", "hotp")
DIGITS_RANGE = (6, 8)
PERIODS = (30, 60)
# RFC 4226 section 7.4: the server checks the next few counter values so a button pressed
# without signing in does not lock the user out; accepting one moves the counter past it.
HOTP_LOOKAHEAD = 10
MIN_SECRET_BYTES = 20  # 160 bits, as for authenticator apps (S6)
MAX_SECRET_BYTES = 64
MAX_CSV_BYTES = 1024 * 1024
MAX_ROWS = 10_000
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_ERRORS_SHOWN = 5
# A row names serial, secret and type; digits and period may be left out for 6 and 30.
MIN_COLUMNS, MAX_COLUMNS = 3, 5
_MAX_NUMBER_CHARS = 4


@dataclass(frozen=True)
class TokenRow:
    serial: str
    secret: bytes
    kind: str
    digits: int
    period: int


def _decode_secret(raw: str) -> bytes | None:
    cleaned = "".join(raw.split()).upper().rstrip("=")
    if not cleaned or not re.fullmatch(r"[A-Z2-7]+", cleaned):
        return None
    try:
        return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        return None


def _whole_number(raw: str, *, default: int) -> int:
    """The number in a cell, ``default`` for an empty cell, -1 for anything else."""
    if raw == "":
        return default
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= _MAX_NUMBER_CHARS else -1


def _parse_row(cells: list[str]) -> TokenRow | str:
    """A valid row, or a sentence saying what is wrong with it."""
    cells = [cell.strip() for cell in cells]
    if not MIN_COLUMNS <= len(cells) <= MAX_COLUMNS:
        return "expected serial, secret, totp|hotp, digits, period"
    cells += [""] * (MAX_COLUMNS - len(cells))
    serial, raw_secret, kind, raw_digits, raw_period = cells
    if not _SERIAL.fullmatch(serial):
        return "the serial must be 1-64 letters, digits, '.', '_' or '-'"
    secret = _row_secret(raw_secret)
    if isinstance(secret, str):
        return f"token {serial}: {secret}"
    row = TokenRow(
        serial=serial,
        secret=secret,
        kind=kind.lower(),
        digits=_whole_number(raw_digits, default=6),
        period=_whole_number(raw_period, default=30),
    )
    problem = _code_problem(row)
    return f"token {serial}: {problem}" if problem else row


def _row_secret(raw: str) -> bytes | str:
    """The row's decoded secret, or what is wrong with it."""
    secret = _decode_secret(raw)
    if secret is None:
        return "the secret is not valid base32"
    if not MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES:
        return f"the secret must be {MIN_SECRET_BYTES * 8}-{MAX_SECRET_BYTES * 8} bits long"
    return secret


def _code_problem(row: TokenRow) -> str | None:
    """What is wrong with the codes the row's token shows (type, digits, period), if anything."""
    if row.kind not in KINDS:
        return "the type must be totp or hotp"
    if not DIGITS_RANGE[0] <= row.digits <= DIGITS_RANGE[1]:
        return f"digits must be {DIGITS_RANGE[0]}-{DIGITS_RANGE[1]}"
    if row.period not in PERIODS:
        return "the period must be 30 or 60 seconds"
    return None


def parse_csv(text: str) -> list[TokenRow]:
    """Every row of the file, validated; ``BadRequest`` listing the bad lines when any is wrong.

    Blank lines, lines starting with '#' and a header row starting with "serial" are skipped.
    """
    if not isinstance(text, str):
        raise BadRequest("The token file must be text.")
    if len(text.encode("utf-8")) > MAX_CSV_BYTES:
        raise PayloadTooLarge(f"The token file is larger than {MAX_CSV_BYTES // 1024} KiB; split it.")
    rows: list[TokenRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line_number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
            continue
        if not rows and not errors and cells[0].strip().lower() == "serial":
            continue
        parsed = _parse_row(cells)
        if isinstance(parsed, str):
            errors.append(f"line {line_number}: {parsed}")
            continue
        if parsed.serial in seen:
            errors.append(f"line {line_number}: token {parsed.serial} is also on line {seen[parsed.serial]}")
            continue
        seen[parsed.serial] = line_number
        rows.append(parsed)
        if len(rows) > MAX_ROWS:
            raise PayloadTooLarge(f"A token file holds at most {MAX_ROWS} tokens; split it.")
    if errors:
        shown = "; ".join(errors[:_MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
        raise BadRequest(f"Nothing was imported: {shown}{more}.")
    if not rows:
        raise BadRequest("Nothing was imported: the file lists no tokens.")
    return rows


def import_csv(
    text: str, *, kms: Any, key_id: str, clock: Clock = SYSTEM_CLOCK, context: AuditContext | None = None
) -> list[str]:
    """Import tokens from CSV (serial, base32 secret, totp|hotp, digits, period); returns the serials.

    Every row is checked, and every serial looked up, before the first write. Each token
    is written with a conditional put; if one appears meanwhile (a parallel import), the
    tokens this import wrote are deleted again and ``Conflict`` names the serial.
    """
    rows = parse_csv(text)
    existing = sorted(token.serial for token in OathToken.batch_get([row.serial for row in rows]))
    if existing:
        raise Conflict(f"Nothing was imported: these tokens exist already: {', '.join(existing[:10])}.")
    now = clock.now()
    written: list[OathToken] = []
    for row in rows:
        token = OathToken(
            row.serial,
            kind=row.kind,
            # Sealed by KMS itself: the CLI that imports may not unwrap the factor data key.
            secret=sealing.seal(
                kms,
                key_id,
                row.secret,
                sealing.factor_context(username=TOKEN_STORE_USER, factor_id=row.serial),
            ),
            digits=row.digits,
            period=row.period,
            counter=0,
            imported_at=now,
        )
        try:
            token.save(condition=OathToken.serial.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                _roll_back(written)
                raise Conflict(f"Nothing was imported: token {row.serial} exists already.") from exc
            _roll_back(written)
            raise
        written.append(token)
    serials = [row.serial for row in rows]
    audit.record(
        audit.EventType.MFA_TOKENS_IMPORTED,
        "success",
        context=context,
        details={"count": len(serials), "serials": ",".join(serials[:20])},
        clock=clock,
    )
    return serials


def _roll_back(written: list[OathToken]) -> None:
    for token in written:
        try:
            token.delete(condition=OathToken.assigned_to.does_not_exist())
        except DeleteError as exc:
            if not condition_failed(exc):
                raise


def list_tokens() -> list[OathToken]:
    return sorted(OathToken.scan(), key=lambda token: token.serial)


def get_token(serial: str) -> OathToken:
    if not isinstance(serial, str) or not _SERIAL.fullmatch(serial):
        raise NotFound("There is no such token.")
    try:
        return OathToken.get(serial)
    except OathToken.DoesNotExist as exc:
        raise NotFound(f"There is no token {serial}.") from exc


def assign(
    serial: str,
    username: str,
    *,
    kms: Any,
    key_id: str,
    clock: Clock = SYSTEM_CLOCK,
    context: AuditContext | None = None,
    label: str | None = None,
) -> Factor:
    """Give a token to a user as an active factor; the secret is re-encrypted for that factor."""
    username = canonical_username(username)
    token = get_token(serial)
    try:
        User.get(username)
    except User.DoesNotExist as exc:
        raise NotFound(f"There is no user {username!r}.") from exc
    if token.assigned_to:
        raise Conflict(f"Token {serial} is already assigned to {token.assigned_to}.")
    clean = factors.clean_label(label if label is not None else f"Hardware token {serial}")
    factors.ensure_room_for_another(username)
    secret = sealing.unseal(
        kms, token.secret, sealing.factor_context(username=TOKEN_STORE_USER, factor_id=token.serial)
    )
    factor_id = factors.new_factor_id()
    is_hotp = token.kind == "hotp"
    factor = Factor(
        username,
        factor_id,
        kind=MethodKind.TOKEN.value,
        label=clean,
        status="active",
        is_default=not factors.has_active_factor(username),
        created_at=clock.now(),
        confirmed_at=clock.now(),
        # The KMS form: the assigning CLI may not unwrap the factor data key; the first use
        # rewrites it in the envelope form (totp.read_secret).
        secret=sealing.seal(
            kms, key_id, secret, sealing.factor_context(username=username, factor_id=factor_id)
        ),
        digits=int(token.digits),
        period=None if is_hotp else int(token.period),
        counter=int(token.counter or 0) if is_hotp else None,
        token_serial=token.serial,
    )
    try:
        token.update(
            actions=[OathToken.assigned_to.set(username)],
            condition=OathToken.assigned_to.does_not_exist() & OathToken.serial.exists(),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise Conflict(f"Token {serial} was assigned or removed meanwhile.") from exc
        raise
    try:
        factor.save(condition=Factor.factor_id.does_not_exist())
    except PutError:
        token.update(actions=[OathToken.assigned_to.remove()], condition=OathToken.assigned_to == username)
        raise
    factors.end_trust(username)
    audit.record(
        audit.EventType.MFA_TOKEN_ASSIGNED,
        "success",
        context=context,
        subject=username,
        details={"serial": serial, "factor_id": factor_id, "kind": token.kind},
        clock=clock,
    )
    return factor


def unassign(
    serial: str,
    username: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    context: AuditContext | None = None,
) -> None:
    """Take the token ``serial`` back from ``username``: their token factor is removed (which ends
    their other sessions and device trust, S15) and the token is free again, with the HOTP
    counter they reached so that no code they already typed works for its next owner.

    The caller names the user the token is taken from, and a token that is not theirs is
    refused: a form crafted with another user's serial cannot take a token from that user.
    """
    username = canonical_username(username)
    token = get_token(serial)
    if token.assigned_to != username:
        raise BadRequest(f"Token {token.serial} is not assigned to {username}.")
    held = [f for f in Factor.query(username, consistent_read=True) if f.token_serial == token.serial]
    for factor in held:
        factors.remove_factor(username, factor.factor_id, context=context, clock=clock)
    if not held:
        # Assigned without a factor (left by an interrupted assignment): only free the token.
        factors.release_token(token.serial, username)
    audit.record(
        audit.EventType.MFA_TOKEN_UNASSIGNED,
        "success",
        context=context,
        subject=username,
        details={"serial": token.serial, "factors_removed": len(held)},
        clock=clock,
    )


def verify(
    factor: Factor, code: str, *, kms: Any, clock: Clock = SYSTEM_CLOCK, confirming: bool = False
) -> None:
    """Accept a code from a hardware token or raise ``WrongCode``.

    TOTP tokens work like authenticator apps (±1 step, each step once). HOTP tokens accept
    the expected counter value or one of the next ``HOTP_LOOKAHEAD``; the counter moves past
    the accepted value with a write conditional on the counter read, so a code works once.
    """
    expected_status = "pending" if confirming else "active"
    if factor.kind != MethodKind.TOKEN or factor.status != expected_status:
        raise WrongCode()
    secret, rewrapped_secret = totp.read_secret(factor, kms)
    if factor.period is not None:
        totp.accept_time_code(
            factor,
            secret,
            code,
            expected_status=expected_status,
            clock=clock,
            rewrapped_secret=rewrapped_secret,
        )
        return
    digits = int(factor.digits or totp.DIGITS)
    cleaned = totp.clean_code(code, digits)
    expected = int(factor.counter or 0)
    matched: int | None = None
    for counter in range(expected, expected + HOTP_LOOKAHEAD + 1):
        if hmac.compare_digest(totp.hotp(secret, counter, digits=digits), cleaned) and matched is None:
            matched = counter
    if matched is None:
        raise WrongCode()
    try:
        factor.update(
            actions=[
                Factor.counter.set(matched + 1),
                Factor.last_used_at.set(clock.now()),
                *([Factor.secret.set(rewrapped_secret)] if rewrapped_secret else []),
            ],
            condition=(Factor.counter == expected) & (Factor.status == expected_status),
        )
    except UpdateError as exc:
        if condition_failed(exc):  # Another request moved the counter first: this use lost.
            raise WrongCode() from exc
        raise
