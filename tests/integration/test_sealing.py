"""Factor secrets under envelope encryption (S6) against moto's KMS: bound to user and
factor, the factor data key unwrapped at most every five minutes per container, the KMS form
of older secrets still read and rewritten on use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from idp_core import sealing
from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.mfa import totp
from idp_core.models import Factor, KeyValue
from tests.support.parallel import outcomes_of_parallel

SEED = b"s" * 20


@pytest.fixture(autouse=True)
def fresh_key_cache() -> Iterator[None]:
    sealing.forget_cached_keys()
    yield
    sealing.forget_cached_keys()


class CountingKms:
    """The real (moto) KMS client, counting the calls that reach it."""

    def __init__(self, kms: Any) -> None:
        self.kms = kms
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.kms, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            return method(**kwargs)

        return call


def test_a_secret_decrypts_only_for_its_own_user_and_factor(tables: Tables, kms: Any, key_id: str) -> None:
    stored = sealing.encrypt_factor_secret(kms, key_id, SEED, username="alice", factor_id="f1")
    assert stored.startswith(sealing.ENVELOPE_PREFIX) and SEED not in stored.encode()
    assert sealing.decrypt_factor_secret(kms, stored, username="alice", factor_id="f1") == SEED
    for username, factor_id in (("bob", "f1"), ("alice", "f2"), ("alice\x00factor", "f1")):
        with pytest.raises(sealing.SecretUnreadable):
            sealing.decrypt_factor_secret(kms, stored, username=username, factor_id=factor_id)


@pytest.mark.parametrize(
    "damaged",
    ["v2.", "v2.nokey.AAAA", "v2.{key}.not base64!", "v2.{key}.AAAA", "v2.{key}.{flipped}"],
)
def test_attack_a_damaged_or_forged_envelope_is_unreadable(
    tables: Tables, kms: Any, key_id: str, damaged: str
) -> None:
    stored = sealing.encrypt_factor_secret(kms, key_id, SEED, username="alice", factor_id="f1")
    _, key, body = stored.split(".", 2)
    flipped = body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB")
    with pytest.raises(sealing.SecretUnreadable):
        sealing.decrypt_factor_secret(
            kms, damaged.format(key=key, flipped=flipped), username="alice", factor_id="f1"
        )


def test_the_factor_data_key_is_unwrapped_once_per_container_for_five_minutes(
    tables: Tables, kms: Any, key_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(sealing, "_monotonic", clock.now)
    counting = CountingKms(kms)
    stored = sealing.encrypt_factor_secret(counting, key_id, SEED, username="alice", factor_id="f1")
    assert counting.calls == ["generate_data_key", "decrypt"]
    sealing.forget_cached_keys()  # another container
    for _ in range(5):
        sealing.decrypt_factor_secret(counting, stored, username="alice", factor_id="f1")
    assert counting.calls.count("decrypt") == 2
    clock.advance(sealing.KEY_CACHE_SECONDS)
    sealing.decrypt_factor_secret(counting, stored, username="alice", factor_id="f1")
    assert counting.calls.count("decrypt") == 3


def test_a_function_that_may_not_generate_keys_never_makes_one(tables: Tables, kms: Any) -> None:
    with pytest.raises(sealing.SecretUnreadable):
        sealing.encrypt_factor_secret(kms, None, SEED, username="alice", factor_id="f1")
    assert list(KeyValue.scan()) == []


def test_containers_that_make_the_first_key_at_once_agree_on_one(
    tables: Tables, kms: Any, key_id: str
) -> None:
    stored: list[str] = []
    lock = threading.Lock()

    def encrypt() -> None:
        value = sealing.encrypt_factor_secret(kms, key_id, SEED, username="alice", factor_id="f1")
        with lock:
            stored.append(value)

    assert outcomes_of_parallel([encrypt] * 6, sealing.SecretUnreadable) == ["ok"] * 6
    current = KeyValue.get(sealing.CURRENT_KEY_ITEM).value
    sealing.forget_cached_keys()
    later = sealing.encrypt_factor_secret(kms, key_id, SEED, username="alice", factor_id="f2")
    assert later.split(".")[1] == current
    for value in stored:  # every secret written during the race still decrypts
        assert sealing.decrypt_factor_secret(kms, value, username="alice", factor_id="f1") == SEED


def test_a_secret_in_the_kms_form_is_read_and_rewritten_on_its_first_use(
    tables: Tables, kms: Any, key_id: str, clock: FakeClock
) -> None:
    enrolment = totp.start_enrolment("alice", "Phone", kms=kms, key_id=key_id, issuer="IdP", clock=clock)
    factor = enrolment.factor
    seed = sealing.decrypt_factor_secret(kms, factor.secret, username="alice", factor_id=factor.factor_id)
    # As an older version stored it: KMS ciphertext under {user, factor}.
    old_form = sealing.seal(
        kms, key_id, seed, sealing.factor_context(username="alice", factor_id=factor.factor_id)
    )
    factor.update(actions=[Factor.secret.set(old_form), Factor.status.set("active")])
    counting = CountingKms(kms)

    totp.verify(
        Factor.get("alice", factor.factor_id), totp.totp_at(seed, clock.now()), kms=counting, clock=clock
    )
    rewritten = Factor.get("alice", factor.factor_id)
    assert rewritten.secret.startswith(sealing.ENVELOPE_PREFIX)
    assert (
        sealing.decrypt_factor_secret(kms, rewritten.secret, username="alice", factor_id=factor.factor_id)
        == seed
    )
    counting.calls.clear()
    clock.advance(30)
    totp.verify(rewritten, totp.totp_at(seed, clock.now()), kms=counting, clock=clock)
    assert counting.calls == []  # the next sign-in asks KMS nothing
