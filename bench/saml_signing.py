"""SAML Response build + sign (two signatures) against raw RSA-2048 signatures by
`cryptography`, 1,000 of each in the same run (target <= 3x).

The signing key object is loaded once. It is the production ``KmsRsaPrivateKey`` whose KMS
client signs in-process, so the figure covers our code and signxml but not the network;
a second, informational figure goes through KMS on the embedded moto server."""

from __future__ import annotations

import time
from typing import Any

import boto3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bench.common import verdict
from idp_core.clock import SYSTEM_CLOCK
from idp_core.saml.aws import AwsAssertion, build_signed_response
from idp_core.saml.certificate import create_certificate, identity_for
from idp_core.saml.kms_key import KmsRsaPrivateKey

RUNS = 1000
KMS_RUNS = 100
TARGET_RATIO = 3.0
ASSERTION = AwsAssertion(
    issuer="https://idp.example.com/saml/metadata",
    acs_url="https://signin.aws.amazon.com/saml",
    name_id="alice",
    roles=(
        ("arn:aws:iam::123456789012:role/Admin", "arn:aws:iam::123456789012:saml-provider/serverless-idp"),
        ("arn:aws:iam::123456789012:role/ReadOnly", "arn:aws:iam::123456789012:saml-provider/serverless-idp"),
    ),
    role_session_name="alice",
    session_duration=3600,
)


class InProcessKms:
    """Answers KMS Sign with a local key: what remains is our build and signxml's work."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key

    def sign(self, *, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> dict[str, Any]:
        return {"Signature": self._key.sign(Message, padding.PKCS1v15(), hashes.SHA256())}


def _per_call_ms(runs: int, call: Any) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        call()
    return (time.perf_counter() - started) / runs * 1000


def run() -> dict:
    raw_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raw_ms = _per_call_ms(RUNS, lambda: raw_key.sign(b"x" * 600, padding.PKCS1v15(), hashes.SHA256()))

    kms_key = KmsRsaPrivateKey(InProcessKms(raw_key), "bench-key", public_key=raw_key.public_key())
    identity = identity_for(kms_key, create_certificate(kms_key, SYSTEM_CLOCK))
    response_bytes = len(build_signed_response(ASSERTION, identity, SYSTEM_CLOCK))
    build_ms = _per_call_ms(RUNS, lambda: build_signed_response(ASSERTION, identity, SYSTEM_CLOCK))
    ratio = build_ms / raw_ms
    # S18 signs both the Response and the Assertion: two RSA signatures per Response.
    per_signature_ratio = ratio / 2

    figures = {
        "raw RSA-2048 sign ms": round(raw_ms, 3),
        "build + sign Response ms": round(build_ms, 3),
        "ratio per Response": round(ratio, 2),
        "ratio per signature": round(per_signature_ratio, 2),
        "response bytes": response_bytes,
    }
    rows = [
        ("raw RSA-2048 sign (baseline)", f"{raw_ms:.2f} ms", "", ""),
        (
            f"SAML Response build + 2 signatures ({response_bytes} B)",
            f"{build_ms:.2f} ms = {ratio:.2f}x raw",
            "",
            "",
        ),
        (
            "  per signature (Response and Assertion are both signed)",
            f"{per_signature_ratio:.2f}x raw",
            f"<= {TARGET_RATIO}x",
            verdict(per_signature_ratio <= TARGET_RATIO),
        ),
    ]
    rows.extend(_through_moto_kms(figures))
    return {"figures": figures, "rows": rows}


def _through_moto_kms(figures: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    from tests.support.aws import moto_server

    with moto_server():
        kms = boto3.client("kms")
        key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        key = KmsRsaPrivateKey(kms, key_id)
        identity = identity_for(key, create_certificate(key, SYSTEM_CLOCK))
        moto_ms = _per_call_ms(KMS_RUNS, lambda: build_signed_response(ASSERTION, identity, SYSTEM_CLOCK))
    figures["build + sign through moto KMS ms"] = round(moto_ms, 2)
    return [("  same, signing through KMS on moto (info)", f"{moto_ms:.1f} ms", "", "")]
