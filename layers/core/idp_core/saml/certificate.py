"""The IdP's self-signed certificate, created once by signing with the KMS key.

The certificate only carries the KMS public key to service providers (in the metadata and in
KeyInfo); nobody validates a chain, so self-signed is what AWS and other SPs expect. It is
stored in the settings table, created with a conditional put so that two cold starts racing
store exactly one, and cached per key id in the process so a warm Lambda reads nothing.
"""

from __future__ import annotations

import base64
import datetime
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pynamodb.exceptions import PutError

from idp_core.clock import Clock
from idp_core.models import KeyValue, condition_failed
from idp_core.saml.kms_key import KmsKeyError, KmsRsaPrivateKey

CERTIFICATE_VALIDITY = datetime.timedelta(days=3650)
# Starting the validity a little in the past keeps an SP whose clock lags from refusing a fresh one.
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(minutes=5)
COMMON_NAME = "Serverless IdP SAML signing"


@dataclass(frozen=True)
class SigningIdentity:
    key: KmsRsaPrivateKey
    certificate_pem: str
    certificate_der_b64: str  # what goes into ds:X509Certificate and the metadata

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode("ascii"))


_cache: dict[str, SigningIdentity] = {}
_cache_lock = threading.Lock()


def setting_name(key_id: str) -> str:
    return f"saml-certificate:{key_id}"


def signing_identity(kms_client: Any, key_id: str, clock: Clock) -> SigningIdentity:
    """The key and certificate for ``key_id``; DynamoDB and KMS are consulted once per process."""
    cached = _cache.get(key_id)
    if cached is not None:
        return cached
    with _cache_lock:
        cached = _cache.get(key_id)
        if cached is None:
            cached = _load_identity(kms_client, key_id, clock)
            _cache[key_id] = cached
        return cached


def forget_cached_identities() -> None:
    """Drop the in-process cache (tests, and a local stack that switches keys)."""
    with _cache_lock:
        _cache.clear()


def _load_identity(kms_client: Any, key_id: str, clock: Clock) -> SigningIdentity:
    certificate = stored_certificate(key_id)
    if certificate is None:
        key = KmsRsaPrivateKey(kms_client, key_id)
        certificate = store_or_reload(key_id, create_certificate(key, clock), clock)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise KmsKeyError(f"The stored certificate for {key_id} does not hold an RSA key.")
    return identity_for(KmsRsaPrivateKey(kms_client, key_id, public_key=public_key), certificate)


def identity_for(key: KmsRsaPrivateKey, certificate: x509.Certificate) -> SigningIdentity:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return SigningIdentity(
        key=key,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        certificate_der_b64=base64.b64encode(der).decode("ascii"),
    )


def create_certificate(key: KmsRsaPrivateKey, clock: Clock) -> x509.Certificate:
    """A new self-signed certificate for the KMS key, signed by KMS (one Sign call)."""
    now = datetime.datetime.fromtimestamp(clock.now(), tz=datetime.UTC).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + CERTIFICATE_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(private_key=key, algorithm=hashes.SHA256())


def stored_certificate(key_id: str) -> x509.Certificate | None:
    try:
        item = KeyValue.get(setting_name(key_id), consistent_read=True)
    except KeyValue.DoesNotExist:
        return None
    return x509.load_pem_x509_certificate(item.value.encode("ascii"))


def store_or_reload(key_id: str, certificate: x509.Certificate, clock: Clock) -> x509.Certificate:
    """Store ``certificate`` unless another process stored one first; return the stored one."""
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    item = KeyValue(setting_name(key_id), value=pem, updated_at=clock.now())
    try:
        item.save(condition=KeyValue.name.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        winner = stored_certificate(key_id)
        if winner is None:
            raise KmsKeyError(f"The certificate for {key_id} vanished while it was being created.") from exc
        return winner
    return certificate
