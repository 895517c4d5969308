"""Authenticator apps end to end against moto: enrolment, confirmation, replay, parallel use (S6, S11)."""

from __future__ import annotations

import pytest

from idp_core import audit, sealing
from idp_core.errors import BadRequest
from idp_core.mfa import WrongCode, factors, totp
from idp_core.models import AuditEvent, Factor
from tests.support.parallel import outcomes_of_parallel

ISSUER = "Example IdP"


def _secret(kms, factor):
    return sealing.decrypt_factor_secret(
        kms, factor.secret, username=factor.username, factor_id=factor.factor_id
    )


def _enrol_and_confirm(kms, key_id, clock, username="alice"):
    enrolment = totp.start_enrolment(username, "Phone", kms=kms, key_id=key_id, issuer=ISSUER, clock=clock)
    code = totp.totp_at(_secret(kms, enrolment.factor), clock.now())
    totp.confirm_enrolment(enrolment.factor, code, kms=kms, clock=clock)
    clock.advance(30)  # the next sign-in happens a step later
    return factors.get_factor(username, enrolment.factor.factor_id)


def test_enrolment_creates_a_pending_factor_with_an_encrypted_160_bit_secret(tables, kms, key_id, clock):
    enrolment = totp.start_enrolment("alice", "Phone", kms=kms, key_id=key_id, issuer=ISSUER, clock=clock)
    stored = Factor.get("alice", enrolment.factor.factor_id)
    assert stored.status == "pending" and stored.kind == "totp"
    assert (stored.digits, stored.period) == (6, 30)
    assert enrolment.secret_base32 not in stored.secret
    assert len(_secret(kms, stored)) == 20
    assert f"secret={enrolment.secret_base32}" in enrolment.otpauth_uri
    assert enrolment.otpauth_uri.startswith("otpauth://totp/Example%20IdP:alice?")
    assert "<title>" in enrolment.qr_svg
    events = [e for e in AuditEvent.scan() if e.type == "mfa.factor.enrolment_started"]
    assert len(events) == 1 and enrolment.secret_base32 not in str(events[0].details)


def test_an_unconfirmed_factor_cannot_be_used_for_sign_in(tables, kms, key_id, clock):
    enrolment = totp.start_enrolment("alice", "Phone", kms=kms, key_id=key_id, issuer=ISSUER, clock=clock)
    code = totp.totp_at(_secret(kms, enrolment.factor), clock.now())
    with pytest.raises(WrongCode):
        totp.verify(enrolment.factor, code, kms=kms, clock=clock)
    # Even a stale object that claims "active" is refused by the conditional write.
    forged = Factor.get("alice", enrolment.factor.factor_id)
    forged.status = "active"
    with pytest.raises(WrongCode):
        totp.verify(forged, code, kms=kms, clock=clock)
    assert Factor.get("alice", enrolment.factor.factor_id).status == "pending"
    assert not factors.has_active_factor("alice")


def test_first_valid_code_activates_and_later_codes_sign_in(tables, kms, key_id, clock):
    factor = _enrol_and_confirm(kms, key_id, clock)
    assert factor.status == "active" and factor.is_default and factor.confirmed_at is not None
    totp.verify(factor, totp.totp_at(_secret(kms, factor), clock.now()), kms=kms, clock=clock)
    # An active factor cannot go through the confirmation path again.
    clock.advance(30)
    with pytest.raises(WrongCode):
        totp.verify(
            factor, totp.totp_at(_secret(kms, factor), clock.now()), kms=kms, clock=clock, confirming=True
        )
    assert [e.type for e in AuditEvent.scan() if e.type == "mfa.factor.activated"] == ["mfa.factor.activated"]


def test_a_wrong_confirmation_code_leaves_the_factor_pending(tables, kms, key_id, clock):
    enrolment = totp.start_enrolment("alice", "Phone", kms=kms, key_id=key_id, issuer=ISSUER, clock=clock)
    right = totp.totp_at(_secret(kms, enrolment.factor), clock.now())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    with pytest.raises(WrongCode):
        totp.confirm_enrolment(enrolment.factor, wrong, kms=kms, clock=clock)
    assert Factor.get("alice", enrolment.factor.factor_id).status == "pending"


def test_replayed_code_fails_with_the_wrong_code_message(tables, kms, key_id, clock):
    factor = _enrol_and_confirm(kms, key_id, clock)
    code = totp.totp_at(_secret(kms, factor), clock.now())
    totp.verify(factor, code, kms=kms, clock=clock)
    with pytest.raises(WrongCode) as replay:
        totp.verify(factors.get_factor("alice", factor.factor_id), code, kms=kms, clock=clock)
    with pytest.raises(WrongCode) as wrong:
        totp.verify(factor, "000000" if code != "000000" else "111111", kms=kms, clock=clock)
    assert replay.value.message == wrong.value.message == "The verification code is not correct."
    # A code of an earlier step within the window is refused too: the stored step only moves forward.
    clock.advance(30)
    earlier = totp.totp_at(_secret(kms, factor), clock.now() - 30)
    assert earlier == code  # still inside the ±1 window, yet refused
    with pytest.raises(WrongCode):
        totp.verify(factors.get_factor("alice", factor.factor_id), earlier, kms=kms, clock=clock)


def test_two_parallel_submissions_of_one_code_give_exactly_one_success(tables, kms, key_id, clock):
    factor = _enrol_and_confirm(kms, key_id, clock)
    code = totp.totp_at(_secret(kms, factor), clock.now())
    copies = [factors.get_factor("alice", factor.factor_id) for _ in range(2)]
    calls = [lambda copy=copy: totp.verify(copy, code, kms=kms, clock=clock) for copy in copies]
    assert outcomes_of_parallel(calls, WrongCode) == ["ok", "refused"]


def test_window_through_the_stored_factor_at_29_31_and_61_seconds(tables, kms, key_id, clock):
    factor = _enrol_and_confirm(kms, key_id, clock)
    secret = _secret(kms, factor)
    start = clock.now() - clock.now() % 30 + 300
    clock.advance(start - clock.now())
    code = totp.totp_at(secret, clock.now())

    clock.advance(61)
    with pytest.raises(WrongCode):
        totp.verify(factor, code, kms=kms, clock=clock)
    clock.advance(-61 + 31)
    totp.verify(factor, code, kms=kms, clock=clock)

    next_code = totp.totp_at(secret, start + 30)  # the step the 31-second clock is in
    clock.advance(-31 + 29 + 30)  # 29 s into the next step
    totp.verify(factors.get_factor("alice", factor.factor_id), next_code, kms=kms, clock=clock)


def test_a_new_enrolment_drops_the_abandoned_pending_one(tables, kms, key_id, clock):
    first = totp.start_enrolment("alice", "Phone", kms=kms, key_id=key_id, issuer=ISSUER, clock=clock)
    second = totp.start_enrolment("alice", "Tablet", kms=kms, key_id=key_id, issuer=ISSUER, clock=clock)
    assert [f.factor_id for f in factors.list_factors("alice")] == [second.factor.factor_id]
    assert first.factor.factor_id != second.factor.factor_id


def test_the_secret_is_shown_again_only_while_pending(tables, kms, key_id, clock):
    enrolment = totp.start_enrolment("alice", "Phone", kms=kms, key_id=key_id, issuer=ISSUER, clock=clock)
    again = totp.enrolment_view(enrolment.factor, kms=kms, issuer=ISSUER, account="alice")
    assert again == (enrolment.secret_base32, enrolment.otpauth_uri, enrolment.qr_svg)
    totp.confirm_enrolment(
        enrolment.factor, totp.totp_at(_secret(kms, enrolment.factor), clock.now()), kms=kms, clock=clock
    )
    with pytest.raises(BadRequest):
        totp.enrolment_view(enrolment.factor, kms=kms, issuer=ISSUER, account="alice")


def test_bad_label_writes_nothing(tables, kms, key_id, clock):
    for label in ("", "   ", "x" * 65, "tab\x07bell"):
        with pytest.raises(BadRequest):
            totp.start_enrolment("alice", label, kms=kms, key_id=key_id, issuer=ISSUER, clock=clock)
    assert list(Factor.scan()) == []
    assert audit.recent(clock=clock) == []
