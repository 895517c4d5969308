"""Backup codes (S12): 10 single-use codes of 80 bits each, shown once, stored hashed.

A user has at most one set, kept in the factor ``"backup"``; generating a new set
overwrites the item, which voids every old code at once. The codes are random enough
(80 bits) that a fast hash is sufficient: a table dump gives no usable code. A use
removes its hash with a conditional DELETE, so one code works once even under parallel
submissions.
"""

from __future__ import annotations

import hashlib
import secrets

from pynamodb.exceptions import UpdateError

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.mfa import WrongCode, factors, methods
from idp_core.mfa.methods import MethodKind
from idp_core.models import Factor, condition_failed

FACTOR_ID = "backup"
CODE_COUNT = 10
CODE_CHARS = 16  # 16 base32 characters = 80 bits
GROUP_CHARS = 4
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648 base32: no 0/1/8/9 to confuse with O/I/B
BITS_PER_CODE = CODE_CHARS * 5
_MAX_INPUT_CHARS = 64


def _hash(username: str, normalised: str) -> str:
    # The username is mixed in so equal codes of two users (never expected) still differ.
    return hashlib.sha256(f"backup\x00{username}\x00{normalised}".encode()).hexdigest()


def normalise(code: object) -> str | None:
    """Upper case without spaces or dashes, or None when it cannot be a backup code."""
    if not isinstance(code, str) or len(code) > _MAX_INPUT_CHARS:
        return None
    cleaned = "".join(code.split()).replace("-", "").upper()
    if len(cleaned) != CODE_CHARS or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    return "-".join(raw[i : i + GROUP_CHARS] for i in range(0, CODE_CHARS, GROUP_CHARS))


def generate(username: str, *, clock: Clock = SYSTEM_CLOCK, context: AuditContext | None = None) -> list[str]:
    """A new set of codes, returned once in readable groups (e.g. ``ABCD-EFGH-JKLM-NPQR``).

    The set is active at once (the user holds the codes in hand); it replaces, and so
    voids, any earlier set. The default flag of an earlier set is kept.
    """
    codes: list[str] = []
    while len(codes) < CODE_COUNT:
        code = _new_code()
        if code not in codes:
            codes.append(code)
    hashes = {_hash(username, normalise(code) or "") for code in codes}
    now = clock.now()
    try:
        previous: Factor | None = Factor.get(username, FACTOR_ID)
    except Factor.DoesNotExist:
        previous = None
        factors.ensure_room_for_another(username)
    Factor(
        username,
        FACTOR_ID,
        kind=MethodKind.BACKUP.value,
        label=previous.label if previous is not None else methods.label(MethodKind.BACKUP),
        status="active",
        is_default=bool(previous.is_default) if previous is not None else False,
        created_at=now,
        confirmed_at=now,
        code_hashes=hashes,
    ).save()
    factors.factor_activated(username)
    audit.record(
        audit.EventType.MFA_BACKUP_CODES_GENERATED,
        "success",
        context=context,
        subject=username,
        details={"count": len(codes), "replaced_previous_set": previous is not None},
        clock=clock,
    )
    return codes


def remaining(username: str) -> int:
    """How many unused codes the user has left (0 without a set)."""
    try:
        return len(Factor.get(username, FACTOR_ID).code_hashes or ())
    except Factor.DoesNotExist:
        return 0


def verify(username: str, code: str, *, clock: Clock = SYSTEM_CLOCK) -> int:
    """Use one code or raise ``WrongCode``; returns how many codes are left.

    The hash leaves the set in the same conditional write that checks it is there, so a
    code works exactly once, also when two requests carry it at the same moment.
    """
    normalised = normalise(code)
    if normalised is None:
        raise WrongCode()
    code_hash = _hash(username, normalised)
    item = Factor(username, FACTOR_ID)
    try:
        item.update(
            actions=[Factor.code_hashes.delete({code_hash}), Factor.last_used_at.set(clock.now())],
            condition=Factor.code_hashes.contains(code_hash)
            & (Factor.status == "active")
            & (Factor.kind == MethodKind.BACKUP.value),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise WrongCode() from exc
        raise
    return len(item.code_hashes or ())
