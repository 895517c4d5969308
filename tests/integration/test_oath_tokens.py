"""Hardware OATH tokens: CSV import, assignment, TOTP and HOTP with look-ahead and resync."""

from __future__ import annotations

import base64

import pytest

from idp_core import accounts, sealing
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.mfa import WrongCode, factors, tokens, totp
from idp_core.models import AuditEvent, OathToken

SECRET_A = b"A" * 20
SECRET_B = b"B" * 20
SECRET_C = b"C" * 32


def b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode()


GOOD_CSV = f"""serial,secret,kind,digits,period
HOTP-1,{b32(SECRET_A)},hotp,6,
TOTP-1,{b32(SECRET_B).lower()},TOTP,8,60
TOTP-2,{b32(SECRET_C)},totp,6,30
"""


@pytest.fixture
def alice(tables):
    return accounts.create_user(accounts.NewUser("alice"))


def test_import_stores_every_token_encrypted(tables, kms, key_id, clock):
    assert tokens.import_csv(GOOD_CSV, kms=kms, key_id=key_id, clock=clock) == ["HOTP-1", "TOTP-1", "TOTP-2"]
    stored = {t.serial: t for t in tokens.list_tokens()}
    assert (stored["TOTP-1"].kind, stored["TOTP-1"].digits, stored["TOTP-1"].period) == ("totp", 8, 60)
    assert stored["HOTP-1"].kind == "hotp" and stored["HOTP-1"].counter == 0
    assert b32(SECRET_A) not in stored["HOTP-1"].secret
    assert [e.type for e in AuditEvent.scan()] == ["mfa.tokens.imported"]


@pytest.mark.parametrize(
    "bad_row",
    [
        "BAD-1,not*base32,totp,6,30",
        f"BAD-1,{b32(b'short')},totp,6,30",
        f"BAD-1,{b32(SECRET_A)},motp,6,30",
        f"BAD-1,{b32(SECRET_A)},totp,5,30",
        f"BAD-1,{b32(SECRET_A)},totp,9,30",
        f"BAD-1,{b32(SECRET_A)},totp,6,45",
        f"bad serial!,{b32(SECRET_A)},totp,6,30",
        f"HOTP-1,{b32(SECRET_A)},totp,6,30",  # duplicate of a serial earlier in the file
        "only-one-cell",
    ],
)
def test_one_bad_row_means_nothing_is_written(tables, kms, key_id, clock, bad_row):
    with pytest.raises(BadRequest) as caught:
        tokens.import_csv(GOOD_CSV + bad_row + "\n", kms=kms, key_id=key_id, clock=clock)
    assert "line 5" in caught.value.message
    assert list(OathToken.scan()) == []


def test_an_existing_serial_is_named_and_nothing_is_written(tables, kms, key_id, clock):
    tokens.import_csv(f"TOTP-2,{b32(SECRET_C)},totp,6,30\n", kms=kms, key_id=key_id, clock=clock)
    with pytest.raises(Conflict, match="TOTP-2"):
        tokens.import_csv(GOOD_CSV, kms=kms, key_id=key_id, clock=clock)
    assert [t.serial for t in tokens.list_tokens()] == ["TOTP-2"]


def test_empty_file_is_refused(tables, kms, key_id, clock):
    with pytest.raises(BadRequest):
        tokens.import_csv("serial,secret,kind,digits,period\n\n", kms=kms, key_id=key_id, clock=clock)


def test_assign_reencrypts_for_the_users_factor(tables, kms, key_id, clock, alice):
    tokens.import_csv(GOOD_CSV, kms=kms, key_id=key_id, clock=clock)
    factor = tokens.assign("TOTP-1", "Alice", kms=kms, key_id=key_id, clock=clock)
    assert factor.username == "alice" and factor.kind == "token" and factor.status == "active"
    assert factor.is_default and factor.token_serial == "TOTP-1"
    assert (factor.digits, factor.period) == (8, 60)
    assert (
        sealing.decrypt_factor_secret(kms, factor.secret, username="alice", factor_id=factor.factor_id)
        == SECRET_B
    )
    with pytest.raises(sealing.SecretUnreadable):
        sealing.decrypt_factor_secret(
            kms, factor.secret, username=tokens.TOKEN_STORE_USER, factor_id="TOTP-1"
        )
    assert OathToken.get("TOTP-1").assigned_to == "alice"
    with pytest.raises(Conflict):
        tokens.assign("TOTP-1", "alice", kms=kms, key_id=key_id, clock=clock)
    with pytest.raises(NotFound):
        tokens.assign("NOPE", "alice", kms=kms, key_id=key_id, clock=clock)
    with pytest.raises(NotFound):
        tokens.assign("TOTP-2", "nobody", kms=kms, key_id=key_id, clock=clock)
    assert OathToken.get("TOTP-2").assigned_to is None
    assert "mfa.token.assigned" in {e.type for e in AuditEvent.scan()}


def test_totp_token_accepts_a_code_once(tables, kms, key_id, clock, alice):
    tokens.import_csv(GOOD_CSV, kms=kms, key_id=key_id, clock=clock)
    factor = tokens.assign("TOTP-1", "alice", kms=kms, key_id=key_id, clock=clock)
    code = totp.totp_at(SECRET_B, clock.now(), digits=8, period=60)
    tokens.verify(factor, code, kms=kms, clock=clock)
    with pytest.raises(WrongCode):
        tokens.verify(factors.get_factor("alice", factor.factor_id), code, kms=kms, clock=clock)
    clock.advance(60)
    tokens.verify(factor, totp.totp_at(SECRET_B, clock.now(), digits=8, period=60), kms=kms, clock=clock)


def test_hotp_look_ahead_resynchronises_and_never_goes_back(tables, kms, key_id, clock, alice):
    tokens.import_csv(GOOD_CSV, kms=kms, key_id=key_id, clock=clock)
    factor = tokens.assign("HOTP-1", "alice", kms=kms, key_id=key_id, clock=clock)
    assert factor.counter == 0 and factor.period is None

    # The button was pressed 7 times without signing in: counter 7 is inside the window.
    tokens.verify(factor, totp.hotp(SECRET_A, 7), kms=kms, clock=clock)
    assert factors.get_factor("alice", factor.factor_id).counter == 8
    # With this fixed secret no value below lies inside the window by chance (checked once).
    window = {totp.hotp(SECRET_A, c) for c in range(8, 8 + tokens.HOTP_LOOKAHEAD + 1)}
    too_far = totp.hotp(SECRET_A, 8 + tokens.HOTP_LOOKAHEAD + 1)
    for refused in (totp.hotp(SECRET_A, 7), totp.hotp(SECRET_A, 3), too_far):
        assert refused not in window
        with pytest.raises(WrongCode):
            tokens.verify(factors.get_factor("alice", factor.factor_id), refused, kms=kms, clock=clock)
    # Used, older and beyond-the-window (8..18) codes leave the counter where it was.
    assert factors.get_factor("alice", factor.factor_id).counter == 8
    # The next expected value works and moves the counter by one.
    tokens.verify(factors.get_factor("alice", factor.factor_id), totp.hotp(SECRET_A, 8), kms=kms, clock=clock)
    assert factors.get_factor("alice", factor.factor_id).counter == 9


def test_a_stale_hotp_counter_loses_to_a_parallel_use(tables, kms, key_id, clock, alice):
    tokens.import_csv(GOOD_CSV, kms=kms, key_id=key_id, clock=clock)
    factor = tokens.assign("HOTP-1", "alice", kms=kms, key_id=key_id, clock=clock)
    stale = factors.get_factor("alice", factor.factor_id)
    tokens.verify(factor, totp.hotp(SECRET_A, 0), kms=kms, clock=clock)
    with pytest.raises(WrongCode):
        tokens.verify(stale, totp.hotp(SECRET_A, 0), kms=kms, clock=clock)


def test_removing_the_factor_frees_the_token_with_its_counter(tables, kms, key_id, clock, alice):
    tokens.import_csv(GOOD_CSV, kms=kms, key_id=key_id, clock=clock)
    factor = tokens.assign("HOTP-1", "alice", kms=kms, key_id=key_id, clock=clock)
    tokens.verify(factor, totp.hotp(SECRET_A, 2), kms=kms, clock=clock)
    factors.remove_factor("alice", factor.factor_id, clock=clock)
    token = OathToken.get("HOTP-1")
    assert token.assigned_to is None and token.counter == 3
