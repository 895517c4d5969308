"""Secrets at rest under the KMS data key (S6): sealed by KMS itself, or by envelope encryption.

- ``seal``/``unseal``: KMS Encrypt/Decrypt under an encryption context, e.g. a directory's
  bind password under {"directory": name}. One KMS request per use.
- Factor secrets (TOTP and HOTP seeds): AES-256-GCM under a factor data key, with the user and
  the factor as associated data, so a ciphertext copied to another user's or factor's item
  does not decrypt (S6). The factor data key is generated once by KMS (GenerateDataKey), kept
  wrapped in the settings table, and unwrapped by a container at most every
  ``KEY_CACHE_SECONDS`` (as the AWS Encryption SDK's caching does): a sign-in with an
  authenticator app costs no KMS request. A stored secret reads ``v2.<key id>.<nonce and
  ciphertext>``; secrets sealed by KMS directly under {user, factor} (written before, or by the
  CLI, which may not unwrap the factor data key) still decrypt, and ``needs_rewrap`` tells the
  caller to store them in the envelope form.

Plaintext secrets and keys are never logged or stored.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from time import monotonic
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError

from idp_core.clock import SYSTEM_CLOCK
from idp_core.errors import IdpError
from idp_core.models import KeyValue, condition_failed
from idp_core.ttl_cache import TtlCache

# KMS Encrypt takes at most 4096 bytes of plaintext; an OATH secret is 20-64 bytes.
MAX_PLAINTEXT_BYTES = 1024
ENVELOPE_PREFIX = "v2."
# How long a container keeps an unwrapped factor data key (the Encryption SDK's guidance).
KEY_CACHE_SECONDS = 300.0
# The settings items: the current factor data key's id, and each key's wrapped form by id.
CURRENT_KEY_ITEM = "factor-data-key"
KEY_ITEM_PREFIX = "factor-data-key:"
# The KMS encryption context of a wrapped factor data key (its role and key policies allow
# exactly these keys).
FACTOR_KEY_CONTEXT_KEYS = ("purpose", "key")
_PURPOSE = "factor-secrets"
_NONCE_BYTES = 12


class SecretUnreadable(IdpError):
    """A stored secret did not decrypt: a damaged item, a wrong context or a KMS failure."""

    status = 500

    def __init__(self) -> None:
        super().__init__("The secret of this sign-in method cannot be read. Ask an administrator for help.")


# ---------------------------------------------------------------- KMS itself


def seal(kms: Any, key_id: str, plaintext: bytes, context: dict[str, str]) -> str:
    """Base64 KMS ciphertext of ``plaintext`` under ``context``."""
    if not plaintext or len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError("a sealed secret is between 1 and 1024 bytes")
    response = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
    return base64.b64encode(response["CiphertextBlob"]).decode("ascii")


def unseal(kms: Any, ciphertext_b64: str | None, context: dict[str, str]) -> bytes:
    """The plaintext of ``seal``; ``SecretUnreadable`` when the ciphertext or its context does not match."""
    if not ciphertext_b64:
        raise SecretUnreadable()
    try:
        response = kms.decrypt(CiphertextBlob=_b64decode(ciphertext_b64), EncryptionContext=context)
    except ClientError as exc:
        # A wrong context surfaces as InvalidCiphertextException: the item was moved or forged.
        if exc.response.get("Error", {}).get("Code") in (
            "InvalidCiphertextException",
            "IncorrectKeyException",
        ):
            raise SecretUnreadable() from exc
        raise
    return bytes(response["Plaintext"])


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretUnreadable() from exc


# ---------------------------------------------------------------- factor secrets


def factor_context(*, username: str, factor_id: str) -> dict[str, str]:
    if not username or not factor_id:
        raise ValueError("a secret is bound to a non-empty user and factor")
    return {"user": username, "factor": factor_id}


def encrypt_factor_secret(
    kms: Any, key_id: str | None, plaintext: bytes, *, username: str, factor_id: str
) -> str:
    """``plaintext`` (a TOTP or HOTP seed) in the envelope form, bound to the user and factor,
    under the current factor data key. When there is none yet, the KMS key ``key_id`` generates
    it; with ``key_id`` None (a function that may not generate keys) that is ``SecretUnreadable``.
    """
    if not plaintext or len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError("a sealed secret is between 1 and 1024 bytes")
    key = _current_key(kms, key_id)
    if key is None:
        raise SecretUnreadable()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _aead(key.plaintext).encrypt(nonce, plaintext, _associated_data(username, factor_id))
    return f"{ENVELOPE_PREFIX}{key.id}.{base64.b64encode(nonce + sealed).decode('ascii')}"


def decrypt_factor_secret(kms: Any, stored: str | None, *, username: str, factor_id: str) -> bytes:
    """The plaintext seed of either form; ``SecretUnreadable`` when it does not decrypt for this
    user and factor."""
    if not stored:
        raise SecretUnreadable()
    if not stored.startswith(ENVELOPE_PREFIX):
        return unseal(kms, stored, factor_context(username=username, factor_id=factor_id))
    key_id, _, body = stored[len(ENVELOPE_PREFIX) :].partition(".")
    blob = _b64decode(body)
    key = _key(kms, key_id)
    if key is None or len(blob) <= _NONCE_BYTES:
        raise SecretUnreadable()
    from cryptography.exceptions import InvalidTag

    try:
        return _aead(key.plaintext).decrypt(
            blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _associated_data(username, factor_id)
        )
    except InvalidTag as exc:
        raise SecretUnreadable() from exc


def needs_rewrap(stored: str | None) -> bool:
    """True for a secret sealed by KMS directly: reading it costs a KMS request each time."""
    return bool(stored) and not str(stored).startswith(ENVELOPE_PREFIX)


def rewrapped(kms: Any, stored: str, plaintext: bytes, *, username: str, factor_id: str) -> str | None:
    """The envelope form of a secret just read in the KMS form, when a factor data key exists
    (a reader does not create one); None otherwise."""
    if not needs_rewrap(stored):
        return None
    try:
        return encrypt_factor_secret(kms, None, plaintext, username=username, factor_id=factor_id)
    except SecretUnreadable:
        return None


def _associated_data(username: str, factor_id: str) -> bytes:
    context = factor_context(username=username, factor_id=factor_id)
    return f"user\x00{context['user']}\x00factor\x00{context['factor']}".encode()


def _aead(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


@dataclass(frozen=True)
class _Key:
    id: str
    plaintext: bytes


# Read through ``_monotonic`` so that tests move this container's time.
_monotonic = monotonic
# (settings table, key id) -> the unwrapped key; and settings table -> the current key's id.
_keys: TtlCache[tuple[str, str], _Key] = TtlCache(KEY_CACHE_SECONDS, now=lambda: _monotonic())
_current_ids: TtlCache[str, str] = TtlCache(KEY_CACHE_SECONDS, now=lambda: _monotonic())


def forget_cached_keys() -> None:
    _keys.clear()
    _current_ids.clear()


def _current_key(kms: Any, key_id: str | None) -> _Key | None:
    table = KeyValue.Meta.table_name
    current_id = _current_ids.get(table)
    if current_id is None:
        try:
            current_id = KeyValue.get(CURRENT_KEY_ITEM, consistent_read=True).value
        except KeyValue.DoesNotExist:
            if key_id is None:
                return None
            current_id = _create_key(kms, key_id)
    key = _key(kms, current_id)
    if key is not None:
        _current_ids.put(table, current_id)
    return key


def _key(kms: Any, key_name: str) -> _Key | None:
    """The unwrapped factor data key ``key_name``: from this container's cache, or unwrapped by
    KMS (one Decrypt) and kept ``KEY_CACHE_SECONDS``."""
    table = KeyValue.Meta.table_name
    cached = _keys.get((table, key_name))
    if cached is not None:
        return cached
    try:
        wrapped = KeyValue.get(KEY_ITEM_PREFIX + key_name).value
    except KeyValue.DoesNotExist:
        return None
    plaintext = unseal(kms, wrapped, _wrapping_context(key_name))
    return _keys.put((table, key_name), _Key(key_name, plaintext))


def _create_key(kms: Any, key_id: str) -> str:
    """Generate the factor data key, store it wrapped and make it current; when another
    container made one at the same moment, theirs is current and this one is never used."""
    name = secrets.token_hex(8)
    generated = kms.generate_data_key(
        KeyId=key_id, KeySpec="AES_256", EncryptionContext=_wrapping_context(name)
    )
    now = SYSTEM_CLOCK.now()
    wrapped = base64.b64encode(generated["CiphertextBlob"]).decode("ascii")
    KeyValue(KEY_ITEM_PREFIX + name, value=wrapped, updated_at=now).save(
        condition=KeyValue.name.does_not_exist()
    )
    try:
        KeyValue(CURRENT_KEY_ITEM, value=name, updated_at=now).save(condition=KeyValue.name.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        return str(KeyValue.get(CURRENT_KEY_ITEM, consistent_read=True).value)
    return name


def _wrapping_context(key_name: str) -> dict[str, str]:
    return {"purpose": _PURPOSE, "key": key_name}
