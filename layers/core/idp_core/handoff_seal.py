"""The browser hand-off's SAMLResponse sealed to the command line that asked for it.

Why: between "Approve" and the command line's pick-up (up to ten minutes) the SAMLResponse waits
on the hand-off's item in the transactions table, and whoever holds it can post it to STS
AssumeRoleWithSAML and get the user's AWS credentials: a backup, an over-broad IAM reader or a
support person reading the table could. The IdP keeps only a hash of the device code, so it
cannot derive a key from it. Instead the command line makes an X25519 key pair for each
hand-off, sends the public key with /device/authorize and keeps the private key in memory only.
At approve the IdP seals the SAMLResponse to that key with an ephemeral X25519 key of its own:
HKDF-SHA256 over the shared secret, with both public keys and a fixed info string, gives an
AES-256-GCM key; the nonce is random and the hand-off's key is the associated data, so a sealed
form copied onto another hand-off does not open. Only the sealed form (the IdP's ephemeral
public key, the nonce and the ciphertext) is stored and handed out.

Both sides use this module: ``idp_core.device_login`` seals, the CLI's ``idp_cli.aws_device``
opens.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from idp_core.errors import BadRequest

# The field of /device/authorize that carries the command line's public key.
CLIENT_KEY_FIELD = "client_public_key"
PUBLIC_KEY_BYTES = 32
# Unpadded base64url of 32 bytes.
_PUBLIC_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}")
NONCE_BYTES = 12
AES_KEY_BYTES = 32
# Fixed and versioned: a key derived here serves this one purpose only.
INFO = b"serverless-idp browser hand-off v1: SAMLResponse sealed to the command line"
HANDOFF_KEY_PREFIX = "handoff:"
# The sealed form's fields, as /device/token hands them out and the hand-off's item keeps them.
FIELDS = ("idp_public_key", "nonce", "ciphertext")
# A SAMLResponse of many roles is a few tens of KiB; nothing larger is opened.
MAX_CIPHERTEXT_CHARS = 512 * 1024
_UNOPENABLE = (
    "The IdP's answer does not open with this command's key: it was sealed for another sign-in "
    "or changed on the way. Nothing was written; run the command again."
)


class SealUnopenable(Exception):
    """A sealed SAMLResponse that does not open with the command line's key and hand-off."""

    def __init__(self) -> None:
        super().__init__(_UNOPENABLE)


@dataclass(frozen=True)
class Sealed:
    idp_public_key: bytes
    nonce: bytes
    ciphertext: bytes

    def fields(self) -> dict[str, str]:
        return {name: _encode(getattr(self, name)) for name in FIELDS}

    @classmethod
    def from_fields(cls, fields: object) -> Sealed:
        """The sealed form of its ``fields``; ``SealUnopenable`` when they cannot be one."""
        if not isinstance(fields, dict) or not all(isinstance(fields.get(name), str) for name in FIELDS):
            raise SealUnopenable()
        if len(fields["ciphertext"]) > MAX_CIPHERTEXT_CHARS:
            raise SealUnopenable()
        try:
            idp_public_key, nonce, ciphertext = (_decode(fields[name]) for name in FIELDS)
        except ValueError as exc:
            raise SealUnopenable() from exc
        if len(idp_public_key) != PUBLIC_KEY_BYTES or len(nonce) != NONCE_BYTES:
            raise SealUnopenable()
        return cls(idp_public_key, nonce, ciphertext)


def handoff_key(device_code: str) -> str:
    """The hand-off's key: its item's key in the transactions table (the device code's hash),
    and the associated data of its sealed SAMLResponse."""
    return HANDOFF_KEY_PREFIX + hashlib.sha256(device_code.encode("utf-8")).hexdigest()


def new_client_key() -> tuple[X25519PrivateKey, str]:
    """The command line's key pair for one hand-off: the private key (kept in memory only) and
    the public key as /device/authorize takes it."""
    private_key = X25519PrivateKey.generate()
    return private_key, _encode(_raw(private_key.public_key()))


def client_public_key(text: str) -> bytes:
    """The command line's public key as sent; ``BadRequest`` unless it is an X25519 key."""
    if not text:
        raise BadRequest(
            f"{CLIENT_KEY_FIELD} is required: the command line's X25519 public key ({PUBLIC_KEY_BYTES} "
            "bytes, base64url), to which the SAMLResponse is sealed. Update the idp command."
        )
    if not _PUBLIC_KEY_TEXT.fullmatch(text):
        raise BadRequest(
            f"{CLIENT_KEY_FIELD} must be an X25519 public key: {PUBLIC_KEY_BYTES} bytes in unpadded "
            "base64url (43 characters)."
        )
    raw = _decode(text)
    try:
        # A low-order point gives an all-zero shared secret, which the exchange refuses: refused
        # here, before anything is stored, rather than at approve.
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError as exc:
        raise BadRequest(f"{CLIENT_KEY_FIELD} is not a usable X25519 public key.") from exc
    return raw


def seal(plaintext: bytes, client_public: bytes, handoff: str) -> Sealed:
    """``plaintext`` sealed to the command line's public key, for the hand-off ``handoff``."""
    ephemeral = X25519PrivateKey.generate()
    idp_public = _raw(ephemeral.public_key())
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(client_public))
    nonce = os.urandom(NONCE_BYTES)
    aead = AESGCM(_derived_key(shared, idp_public, client_public))
    return Sealed(idp_public, nonce, aead.encrypt(nonce, plaintext, handoff.encode("utf-8")))


def open_sealed(sealed: Sealed, client_private: X25519PrivateKey, handoff: str) -> bytes:
    """The plaintext of ``sealed``; ``SealUnopenable`` unless it was sealed to this key for this
    hand-off and is unchanged."""
    client_public = _raw(client_private.public_key())
    try:
        shared = client_private.exchange(X25519PublicKey.from_public_bytes(sealed.idp_public_key))
        aead = AESGCM(_derived_key(shared, sealed.idp_public_key, client_public))
        return aead.decrypt(sealed.nonce, sealed.ciphertext, handoff.encode("utf-8"))
    except (InvalidTag, ValueError) as exc:
        raise SealUnopenable() from exc


def _derived_key(shared: bytes, idp_public: bytes, client_public: bytes) -> bytes:
    # Both public keys in the info bind the key to this exchange (as HPKE's key schedule does).
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=AES_KEY_BYTES, salt=None, info=INFO + idp_public + client_public
    )
    return hkdf.derive(shared)


def _raw(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    """Unpadded base64url; ``ValueError`` (binascii.Error) for anything else."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
