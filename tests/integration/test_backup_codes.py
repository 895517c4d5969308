"""Backup codes (S12): ten 80-bit codes, stored hashed, single use, regeneration voids the old set."""

from __future__ import annotations

import pytest

from idp_core.mfa import WrongCode, backup_codes
from idp_core.models import AuditEvent, Factor
from tests.support.parallel import outcomes_of_parallel


def test_at_least_ten_distinct_codes_of_at_least_64_bits_stored_only_as_hashes(tables, clock):
    codes = backup_codes.generate("alice", clock=clock)
    assert len(codes) >= 10 and len(set(codes)) == len(codes)
    assert backup_codes.BITS_PER_CODE >= 64
    for code in codes:
        normalised = backup_codes.normalise(code)
        assert normalised is not None and len(normalised) * 5 >= 80
    stored = Factor.get("alice", backup_codes.FACTOR_ID)
    assert stored.status == "active" and stored.kind == "backup"
    assert len(stored.code_hashes) == len(codes)
    dump = str(stored.serialize())
    for code in codes:
        assert code not in dump and backup_codes.normalise(code) not in dump
    # Two users never share a set: the codes come from `secrets`.
    assert not set(codes) & set(backup_codes.generate("bob", clock=clock))


def test_a_code_works_once_and_input_is_normalised(tables, clock):
    codes = backup_codes.generate("alice", clock=clock)
    sloppy = codes[0].lower().replace("-", " ")
    assert backup_codes.verify("alice", sloppy, clock=clock) == len(codes) - 1
    with pytest.raises(WrongCode) as again:
        backup_codes.verify("alice", codes[0], clock=clock)
    assert again.value.message == WrongCode().message
    assert backup_codes.remaining("alice") == len(codes) - 1


def test_codes_of_one_user_do_not_work_for_another(tables, clock):
    codes = backup_codes.generate("alice", clock=clock)
    backup_codes.generate("bob", clock=clock)
    with pytest.raises(WrongCode):
        backup_codes.verify("bob", codes[0], clock=clock)


def test_regenerating_voids_the_old_set(tables, clock):
    old = backup_codes.generate("alice", clock=clock)
    new = backup_codes.generate("alice", clock=clock)
    for code in old:
        with pytest.raises(WrongCode):
            backup_codes.verify("alice", code, clock=clock)
    backup_codes.verify("alice", new[3], clock=clock)
    generated = [e for e in AuditEvent.scan() if e.type == "mfa.backup_codes.generated"]
    assert len(generated) == 2
    for event in generated:
        for code in old + new:
            assert code not in str(event.details)


@pytest.mark.parametrize("bad", ["", "ABCD", "A" * 17, "1111-1111-1111-1111", "x" * 1_000_000, None])
def test_malformed_codes_are_wrong_codes_and_change_nothing(tables, clock, bad):
    codes = backup_codes.generate("alice", clock=clock)
    with pytest.raises(WrongCode):
        backup_codes.verify("alice", bad, clock=clock)
    assert backup_codes.remaining("alice") == len(codes)


def test_two_parallel_uses_of_one_code_give_exactly_one_success(tables, clock):
    code = backup_codes.generate("alice", clock=clock)[0]

    def submit():
        backup_codes.verify("alice", code, clock=clock)

    assert outcomes_of_parallel([submit] * 2, WrongCode) == ["ok", "refused"]
