"""An RSA private key whose private half never leaves AWS KMS (S19).

``KmsRsaPrivateKey`` plugs into every library that signs with a ``cryptography`` RSA key
(signxml for XML signatures, ``CertificateBuilder.sign`` for the self-signed certificate):
``sign`` sends the bytes to KMS ``Sign`` and everything that would expose key material raises.
"""

from __future__ import annotations

import threading
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

KMS_SIGNING_ALGORITHM = "RSASSA_PKCS1_V1_5_SHA_256"
KEY_SIZE = 2048
# KMS Sign accepts at most 4096 bytes with MessageType=RAW. Everything this product signs (an
# XML SignedInfo, a certificate's TBS part) is far smaller, so RAW is used: moto's KMS ignores
# MessageType=DIGEST and would hash the digest again, while RAW behaves the same in moto and AWS.
# Larger inputs are hashed here and sent as DIGEST, which only real KMS handles.
MAX_RAW_MESSAGE_BYTES = 4096


class KmsKeyError(RuntimeError):
    """The KMS key cannot be used for SAML signing, or an operation would need the private key."""


class KmsRsaPrivateKey(rsa.RSAPrivateKey):
    """A KMS ``RSA_2048`` ``SIGN_VERIFY`` key seen through the ``cryptography`` private-key interface."""

    def __init__(self, kms_client: Any, key_id: str, *, public_key: rsa.RSAPublicKey | None = None) -> None:
        self._kms = kms_client
        self.key_id = key_id
        # A caller that already holds the public key (from the stored certificate) passes it, so a
        # cold start needs no GetPublicKey call.
        self._public_key = public_key
        self._lock = threading.Lock()

    # The one operation KMS performs for us.
    def sign(
        self,
        data: bytes,
        padding: asym_padding.AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | Any,
    ) -> bytes:
        if not isinstance(padding, asym_padding.PKCS1v15):
            raise KmsKeyError(
                "The KMS signing key signs only with PKCS#1 v1.5 padding (RSASSA_PKCS1_V1_5_SHA_256)."
            )
        if isinstance(algorithm, Prehashed) or not isinstance(algorithm, hashes.SHA256):
            raise KmsKeyError("The KMS signing key signs only with SHA-256 over the whole message.")
        message = bytes(data)
        if len(message) <= MAX_RAW_MESSAGE_BYTES:
            request = {"Message": message, "MessageType": "RAW"}
        else:
            digest = hashes.Hash(hashes.SHA256())
            digest.update(message)
            request = {"Message": digest.finalize(), "MessageType": "DIGEST"}
        response = self._kms.sign(KeyId=self.key_id, SigningAlgorithm=KMS_SIGNING_ALGORITHM, **request)
        signature = bytes(response["Signature"])
        # A signature that does not verify against the published key is never handed out: it would
        # only surface later as a confusing failure at the service provider.
        try:
            self.public_key().verify(signature, message, asym_padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise KmsKeyError(
                f"KMS returned a signature that does not match the public key of {self.key_id}."
            ) from exc
        return signature

    def public_key(self) -> rsa.RSAPublicKey:
        if self._public_key is None:
            with self._lock:
                if self._public_key is None:
                    self._public_key = self._fetch_public_key()
        return self._public_key

    def _fetch_public_key(self) -> rsa.RSAPublicKey:
        response = self._kms.get_public_key(KeyId=self.key_id)
        if response.get("KeyUsage") != "SIGN_VERIFY":
            raise KmsKeyError(f"The KMS key {self.key_id} is not a SIGN_VERIFY key.")
        if KMS_SIGNING_ALGORITHM not in response.get("SigningAlgorithms", ()):
            raise KmsKeyError(f"The KMS key {self.key_id} does not support {KMS_SIGNING_ALGORITHM}.")
        key = serialization.load_der_public_key(bytes(response["PublicKey"]))
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size != KEY_SIZE:
            raise KmsKeyError(f"The KMS key {self.key_id} must be an RSA_2048 key.")
        return key

    @property
    def key_size(self) -> int:
        return KEY_SIZE

    # Everything below would need the private key, which exists only inside KMS (S19).
    def _refuse(self, operation: str) -> NoReturn:
        raise KmsKeyError(
            f"{operation} is impossible: the private key of {self.key_id} never leaves AWS KMS."
        )

    def decrypt(self, ciphertext: bytes, padding: asym_padding.AsymmetricPadding) -> bytes:
        self._refuse("Decrypting with the SAML signing key")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        self._refuse("Reading the private numbers")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        self._refuse("Exporting the private key")

    def __copy__(self) -> KmsRsaPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[Any, Any]) -> KmsRsaPrivateKey:
        return self

    def __repr__(self) -> str:
        return f"KmsRsaPrivateKey(key_id={self.key_id!r})"
