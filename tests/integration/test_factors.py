"""Shared factor operations and the secret box against moto (S6, S11, S15, S25)."""

from __future__ import annotations

import pytest

from idp_core import sealing, sessions
from idp_core.config import SessionPolicy
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.mfa import backup_codes, factors, totp
from idp_core.models import AuditEvent, Factor, Session
from tests.helpers.scope import scope_at


def _active_totp(kms, key_id, clock, label="Phone", username="alice"):
    enrolment = totp.start_enrolment(username, label, kms=kms, key_id=key_id, issuer="IdP", clock=clock)
    secret = sealing.decrypt_factor_secret(
        kms, enrolment.factor.secret, username=username, factor_id=enrolment.factor.factor_id
    )
    return totp.confirm_enrolment(enrolment.factor, totp.totp_at(secret, clock.now()), kms=kms, clock=clock)


def test_secret_decrypts_only_under_its_own_user_and_factor(tables, kms, key_id):
    blob = sealing.encrypt_factor_secret(kms, key_id, b"s" * 20, username="alice", factor_id="f1")
    assert sealing.decrypt_factor_secret(kms, blob, username="alice", factor_id="f1") == b"s" * 20
    with pytest.raises(sealing.SecretUnreadable):
        sealing.decrypt_factor_secret(kms, blob, username="bob", factor_id="f1")
    with pytest.raises(sealing.SecretUnreadable):
        sealing.decrypt_factor_secret(kms, blob, username="alice", factor_id="f2")
    with pytest.raises(sealing.SecretUnreadable):
        sealing.decrypt_factor_secret(kms, "not base64!", username="alice", factor_id="f1")


def test_a_secret_copied_to_another_users_factor_does_not_verify(tables, kms, key_id, clock):
    alice = _active_totp(kms, key_id, clock, username="alice")
    bob = _active_totp(kms, key_id, clock, username="bob")
    bob.secret = alice.secret  # an attacker with write access to the table swaps ciphertexts
    with pytest.raises(sealing.SecretUnreadable):
        totp.verify(bob, "123456", kms=kms, clock=clock)


def test_first_active_factor_becomes_default_and_listing_puts_it_first(tables, kms, key_id, clock):
    first = _active_totp(kms, key_id, clock, label="Phone")
    clock.advance(1)
    second = _active_totp(kms, key_id, clock, label="Tablet")
    listed = factors.list_factors("alice")
    assert [f.factor_id for f in listed] == [first.factor_id, second.factor_id]
    assert listed[0].is_default and not listed[1].is_default
    assert factors.has_active_factor("alice")

    factors.set_default_factor("alice", second.factor_id, clock=clock)
    assert [(f.factor_id, f.is_default) for f in factors.list_factors("alice")] == [
        (second.factor_id, True),
        (first.factor_id, False),
    ]


def test_activation_is_conditional_on_pending(tables, kms, key_id, clock):
    factor = _active_totp(kms, key_id, clock)
    with pytest.raises(Conflict):
        factors.activate_factor(factor, clock)


def test_rename_validates_before_writing(tables, kms, key_id, clock):
    factor = _active_totp(kms, key_id, clock)
    for bad in ("", "x" * 65, "bell\x07"):
        with pytest.raises(BadRequest):
            factors.rename_factor("alice", factor.factor_id, bad, clock=clock)
    assert factors.get_factor("alice", factor.factor_id).label == "Phone"
    factors.rename_factor("alice", factor.factor_id, "  Work   phone ", clock=clock)
    assert factors.get_factor("alice", factor.factor_id).label == "Work phone"


def test_unknown_or_malformed_factor_ids_are_not_found(tables):
    for bad in ("nope", "../../etc", "x" * 1000, ""):
        with pytest.raises(NotFound):
            factors.get_factor("alice", bad)
        with pytest.raises(NotFound):
            factors.remove_factor("alice", bad)


def test_pending_factor_cannot_be_the_default(tables, kms, key_id, clock):
    enrolment = totp.start_enrolment("alice", "Phone", kms=kms, key_id=key_id, issuer="IdP", clock=clock)
    with pytest.raises(BadRequest):
        factors.set_default_factor("alice", enrolment.factor.factor_id, clock=clock)


def test_removing_a_factor_ends_the_other_sessions_and_moves_the_default(tables, kms, key_id, clock):
    first = _active_totp(kms, key_id, clock, label="Phone")
    clock.advance(1)
    second = _active_totp(kms, key_id, clock, label="Tablet")
    policy = SessionPolicy()
    current = sessions.start_session(
        sessions.NewSession("alice", factors=["password"]), scope_at(clock, sessions=policy)
    )
    sessions.start_session(
        sessions.NewSession("alice", factors=["password"]), scope_at(clock, sessions=policy)
    )
    sessions.start_session(sessions.NewSession("bob", factors=["password"]), scope_at(clock, sessions=policy))

    ended = factors.remove_factor(
        "alice", first.factor_id, keep_session_hash=current.session.id_hash, clock=clock
    )
    assert ended == 1
    remaining = {(s.username, s.id_hash) for s in Session.scan()}
    assert ("alice", current.session.id_hash) in remaining and len(remaining) == 2
    assert [(f.factor_id, f.is_default) for f in factors.list_factors("alice")] == [(second.factor_id, True)]
    with pytest.raises(NotFound):
        factors.remove_factor("alice", first.factor_id)


def test_a_spent_backup_code_set_is_not_an_active_factor(tables, clock):
    codes = backup_codes.generate("alice", clock=clock)
    assert factors.has_active_factor("alice")
    for code in codes:
        backup_codes.verify("alice", code, clock=clock)
    assert not factors.has_active_factor("alice")
    assert factors.list_factors("alice", active_only=True) == []


def test_changes_are_audited_without_secrets(tables, kms, key_id, clock):
    factor = _active_totp(kms, key_id, clock)
    factors.rename_factor("alice", factor.factor_id, "Work phone", clock=clock)
    factors.set_default_factor("alice", factor.factor_id, clock=clock)
    factors.remove_factor("alice", factor.factor_id, clock=clock)
    types = sorted(e.type for e in AuditEvent.scan())
    assert types == sorted(
        [
            "mfa.factor.enrolment_started",
            "mfa.factor.activated",
            "mfa.factor.renamed",
            "mfa.factor.default_changed",
            "mfa.factor.removed",
        ]
    )
    for event in AuditEvent.scan():
        assert factor.secret not in str(event.details)
    assert list(Factor.scan()) == []
