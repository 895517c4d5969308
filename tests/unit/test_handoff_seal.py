"""The browser hand-off's SAMLResponse sealed to the command line's X25519 key
(``idp_core.handoff_seal``): it opens only with that key, for that hand-off, unchanged."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from idp_core import handoff_seal
from idp_core.errors import BadRequest
from idp_core.handoff_seal import Sealed, SealUnopenable

SAML_RESPONSE = base64.b64encode(b"<samlp:Response>...<saml:Assertion>...</samlp:Response>")
HANDOFF = handoff_seal.handoff_key("the-device-code")


def sealed_for_a_new_client() -> tuple[X25519PrivateKey, Sealed]:
    private_key, public_text = handoff_seal.new_client_key()
    public_key = handoff_seal.client_public_key(public_text)
    return private_key, handoff_seal.seal(SAML_RESPONSE, public_key, HANDOFF)


def flipped(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def test_the_command_lines_key_opens_what_was_sealed_to_it_for_its_handoff() -> None:
    private_key, sealed = sealed_for_a_new_client()

    travelled = Sealed.from_fields(json.loads(json.dumps(sealed.fields())))

    assert handoff_seal.open_sealed(travelled, private_key, HANDOFF) == SAML_RESPONSE
    assert sorted(sealed.fields()) == ["ciphertext", "idp_public_key", "nonce"]
    assert SAML_RESPONSE not in sealed.ciphertext
    assert (len(sealed.idp_public_key), len(sealed.nonce)) == (32, 12)


def test_each_seal_has_its_own_ephemeral_key_and_nonce() -> None:
    private_key, public_text = handoff_seal.new_client_key()
    public_key = handoff_seal.client_public_key(public_text)

    first, second = (handoff_seal.seal(SAML_RESPONSE, public_key, HANDOFF) for _ in range(2))

    assert first.idp_public_key != second.idp_public_key
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext
    assert handoff_seal.open_sealed(second, private_key, HANDOFF) == SAML_RESPONSE


def test_the_handoff_key_is_the_device_codes_hash() -> None:
    key = handoff_seal.handoff_key("the-device-code")

    assert key.startswith("handoff:") and "the-device-code" not in key
    assert len(key) == len("handoff:") + 64
    assert handoff_seal.handoff_key("another-device-code") != key


# ---------------------------------------------------------------- attacks


def test_attack_another_key_does_not_open_it() -> None:
    _, sealed = sealed_for_a_new_client()
    someone_else = X25519PrivateKey.generate()

    with pytest.raises(SealUnopenable, match="does not open with this command's key"):
        handoff_seal.open_sealed(sealed, someone_else, HANDOFF)


def test_attack_a_sealed_form_moved_to_another_handoff_does_not_open() -> None:
    private_key, sealed = sealed_for_a_new_client()

    with pytest.raises(SealUnopenable):
        handoff_seal.open_sealed(sealed, private_key, handoff_seal.handoff_key("another-device-code"))


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "idp_public_key"])
def test_attack_a_tampered_sealed_form_does_not_open(field: str) -> None:
    private_key, sealed = sealed_for_a_new_client()
    tampered = replace(sealed, **{field: flipped(getattr(sealed, field))})

    with pytest.raises(SealUnopenable):
        handoff_seal.open_sealed(tampered, private_key, HANDOFF)


def test_attack_a_truncated_or_extended_ciphertext_does_not_open() -> None:
    private_key, sealed = sealed_for_a_new_client()

    for ciphertext in (sealed.ciphertext[:-1], sealed.ciphertext + b"\x00", b""):
        with pytest.raises(SealUnopenable):
            handoff_seal.open_sealed(replace(sealed, ciphertext=ciphertext), private_key, HANDOFF)


def test_attack_an_idp_key_of_low_order_does_not_open() -> None:
    private_key, sealed = sealed_for_a_new_client()

    with pytest.raises(SealUnopenable):
        handoff_seal.open_sealed(replace(sealed, idp_public_key=bytes(32)), private_key, HANDOFF)


@pytest.mark.parametrize(
    "fields",
    [
        None,
        "a string",
        {"idp_public_key": "AAAA", "nonce": "AAAA"},
        {"idp_public_key": "A" * 43, "nonce": "A" * 16, "ciphertext": 12},
        {"idp_public_key": "A" * 42, "nonce": "A" * 16, "ciphertext": "AAAA"},
        {"idp_public_key": "A" * 43, "nonce": "A" * 15, "ciphertext": "AAAA"},
        {"idp_public_key": "A" * 43, "nonce": "A" * 16, "ciphertext": "not base64url!"},
        {"idp_public_key": "A" * 43, "nonce": "A" * 16, "ciphertext": "A" * (512 * 1024 + 1)},
    ],
)
def test_attack_malformed_sealed_fields_are_refused_with_the_sentence(fields: object) -> None:
    with pytest.raises(SealUnopenable, match="Nothing was written"):
        Sealed.from_fields(fields)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "client_public_key is required"),
        ("A" * 42, "32 bytes in unpadded base64url"),
        ("A" * 44, "32 bytes in unpadded base64url"),
        ("A" * 42 + "=", "32 bytes in unpadded base64url"),
        ("A" * 42 + "+", "32 bytes in unpadded base64url"),
        ("A" * 43, "not a usable X25519 public key"),
    ],
)
def test_attack_a_malformed_client_key_is_refused(text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        handoff_seal.client_public_key(text)
