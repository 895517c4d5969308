"""TOTP and HOTP secrets encrypted with the KMS data key (S6).

Every ciphertext is bound to one user and one factor by the KMS encryption context
{"user": username, "factor": factor_id}: a ciphertext copied to another user's or another
factor's item does not decrypt. Plaintext secrets are never logged or stored.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from botocore.exceptions import ClientError

from idp_core.errors import IdpError

# KMS Encrypt takes at most 4096 bytes of plaintext; an OATH secret is 20-64 bytes.
MAX_PLAINTEXT_BYTES = 1024


class SecretUnreadable(IdpError):
    """A stored secret did not decrypt: a damaged item, a wrong context or a KMS failure."""

    status = 500

    def __init__(self) -> None:
        super().__init__("The secret of this sign-in method cannot be read. Ask an administrator for help.")


def encryption_context(*, username: str, factor_id: str) -> dict[str, str]:
    if not username or not factor_id:
        raise ValueError("a secret is bound to a non-empty user and factor")
    return {"user": username, "factor": factor_id}


def encrypt_secret(kms: Any, key_id: str, plaintext: bytes, *, username: str, factor_id: str) -> str:
    """Base64 KMS ciphertext of ``plaintext`` under the context {user, factor}."""
    return seal(kms, key_id, plaintext, encryption_context(username=username, factor_id=factor_id))


def decrypt_secret(kms: Any, ciphertext_b64: str | None, *, username: str, factor_id: str) -> bytes:
    """The plaintext secret; ``SecretUnreadable`` when the ciphertext or its context does not match."""
    return unseal(kms, ciphertext_b64, encryption_context(username=username, factor_id=factor_id))


def seal(kms: Any, key_id: str, plaintext: bytes, context: dict[str, str]) -> str:
    """Base64 KMS ciphertext of ``plaintext`` under ``context`` (also an LDAP bind password,
    under {"directory": name})."""
    if not plaintext or len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError("a sealed secret is between 1 and 1024 bytes")
    response = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
    return base64.b64encode(response["CiphertextBlob"]).decode("ascii")


def unseal(kms: Any, ciphertext_b64: str | None, context: dict[str, str]) -> bytes:
    """The plaintext of ``seal``; ``SecretUnreadable`` when the ciphertext or its context does not match."""
    if not ciphertext_b64:
        raise SecretUnreadable()
    try:
        blob = base64.b64decode(ciphertext_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretUnreadable() from exc
    try:
        response = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    except ClientError as exc:
        # A wrong context surfaces as InvalidCiphertextException: the item was moved or forged.
        code = exc.response.get("Error", {}).get("Code")
        if code in ("InvalidCiphertextException", "IncorrectKeyException"):
            raise SecretUnreadable() from exc
        raise
    return bytes(response["Plaintext"])
