"""One-time codes sent by SMS or e-mail (S7).

A code is 6 digits from ``secrets``, valid for 5 minutes, for 5 tries, once, and only in the
transaction (sign-in, enrolment, test, re-authentication step) that asked for it and for the
factor it was sent to. The transaction item stores only an HMAC-SHA256 of the code and the
factor id, keyed by a key derived from the session's cookie value (``key_for_session``).
The server stores only a hash of that value, so a copy of the tables cannot be used to try
the million possible codes offline, and a hash is worthless in any other session.

Every check is a conditional DynamoDB write, never a read followed by a write: a try is
counted with ``ADD tries :1`` under ``tries < 5``, and a correct code is spent by removing
its hash under ``code_hash = :hash``, so parallel submissions of one code succeed once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pynamodb.exceptions import UpdateError

from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import AuthenticationRequired, BadRequest
from idp_core.mfa import WrongCode
from idp_core.models import Factor, Transaction, condition_failed

CODE_DIGITS = 6
CODE_TTL_SECONDS = 5 * 60
MAX_TRIES = 5
# Longer input is refused before any lookup (S26); it could never be a code.
MAX_CODE_INPUT_CHARS = 64


class TransactionExpired(AuthenticationRequired):
    """The sign-in or enrolment step this code belongs to is gone or over."""

    def __init__(self) -> None:
        super().__init__("This step has expired. Please start again.")


def key_for_session(session_token: str) -> bytes:
    """The key code hashes are made with: from the cookie value, which is never stored."""
    return hmac.new(session_token.encode("utf-8"), b"idp one-time code key", hashlib.sha256).digest()


def code_hash(key: bytes, factor_id: str, code: str) -> str:
    message = f"{factor_id}\x00{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def issue_code(txn: Transaction, factor: Factor, *, key: bytes, clock: Clock = SYSTEM_CLOCK) -> str:
    """Make a new code for ``factor`` in ``txn`` and return it (to be sent, never stored or logged).

    The new code replaces any earlier one and gets a fresh count of tries; the user's lockout
    counters are not touched (S2: sending a code never resets them). Raises
    ``TransactionExpired`` when the transaction is gone, over, or belongs to another user.
    """
    now = clock.now()
    code = new_code()
    try:
        txn.update(
            actions=[
                Transaction.factor_id.set(factor.factor_id),
                Transaction.code_hash.set(code_hash(key, factor.factor_id, code)),
                Transaction.code_expires_at.set(now + CODE_TTL_SECONDS),
                Transaction.tries.set(0),
            ],
            condition=(
                Transaction.id_hash.exists()
                & (Transaction.username == factor.username)
                & (Transaction.expires_at > now)
            ),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise TransactionExpired() from exc
        raise
    return code


def clean_code(raw: str) -> str:
    """The digits of a submitted code (spaces and dashes allowed), or ``BadRequest``."""
    if len(raw) > MAX_CODE_INPUT_CHARS:
        raise BadRequest(f"The verification code is the {CODE_DIGITS}-digit number we sent you.")
    code = "".join(raw.split()).replace("-", "")
    if not code.isascii() or not code.isdigit() or len(code) != CODE_DIGITS:
        raise BadRequest(f"The verification code is the {CODE_DIGITS}-digit number we sent you.")
    return code


def verify_code(
    txn_id_hash: str, factor: Factor, code: str, *, key: bytes, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Accept ``code`` once for ``factor`` in the transaction ``txn_id_hash`` or raise ``WrongCode``.

    A code from another transaction or for another factor, an expired, already used or wrong
    code, and any try after the fifth all get the same ``WrongCode``. Malformed input (not 6
    digits) raises ``BadRequest`` before anything is written.
    """
    code = clean_code(code)
    now = clock.now()
    txn = Transaction(id_hash=txn_id_hash)
    # Count the try first, atomically: the 6th try fails here whatever code it carries.
    try:
        txn.update(
            actions=[Transaction.tries.add(1)],
            condition=(
                Transaction.code_hash.exists()
                & (Transaction.factor_id == factor.factor_id)
                & (Transaction.username == factor.username)
                & (Transaction.code_expires_at > now)
                & (Transaction.expires_at > now)
                & (Transaction.tries.does_not_exist() | (Transaction.tries < MAX_TRIES))
            ),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise WrongCode() from exc
        raise
    expected = code_hash(key, factor.factor_id, code)
    if not hmac.compare_digest(expected, txn.code_hash or ""):
        raise WrongCode()
    # Spend the code: only one of several parallel submissions can remove this hash.
    try:
        txn.update(
            actions=[Transaction.code_hash.remove(), Transaction.code_expires_at.remove()],
            condition=Transaction.code_hash == expected,
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise WrongCode() from exc
        raise
