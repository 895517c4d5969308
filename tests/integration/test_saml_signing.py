"""SAML issuing with a real (moto) KMS key, checked by pysaml2 as the service provider and by STS."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from saml2 import BINDING_HTTP_POST
from saml2.client import Saml2Client
from saml2.config import SPConfig

from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.models import KeyValue
from idp_core.saml import certificate as certificate_module
from idp_core.saml.aws import REFEDS_MFA, AwsAssertion, build_signed_response
from idp_core.saml.certificate import (
    SigningIdentity,
    create_certificate,
    setting_name,
    signing_identity,
    store_or_reload,
)
from idp_core.saml.kms_key import KmsKeyError, KmsRsaPrivateKey
from idp_core.saml.metadata import build_idp_metadata

ACCOUNT = "123456789012"
ACS_URL = "https://signin.aws.amazon.com/saml"
ISSUER = "https://idp.example.test/saml/metadata"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/serverless-idp"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Developers"


@pytest.fixture
def kms(aws_endpoint: str) -> Any:
    return boto3.client("kms")


@pytest.fixture
def key_id(kms: Any) -> Iterator[str]:
    key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    yield key
    certificate_module.forget_cached_identities()


@pytest.fixture
def real_time_clock() -> FakeClock:
    # pysaml2 checks validity against the real time, so the issuing clock starts at "now".
    return FakeClock(start=time.time())


@pytest.fixture
def identity(kms: Any, key_id: str, tables: Tables, real_time_clock: FakeClock) -> SigningIdentity:
    return signing_identity(kms, key_id, real_time_clock)


def _assertion(**changes: Any) -> AwsAssertion:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "acs_url": ACS_URL,
        "name_id": "alice",
        "roles": ((ROLE, PROVIDER),),
        "role_session_name": "alice@example.com",
        "session_duration": 3600,
        "principal_tags": {"team": "platform"},
    }
    values.update(changes)
    return AwsAssertion(**values)


def _service_provider(identity: SigningIdentity) -> Saml2Client:
    metadata = build_idp_metadata(
        entity_id=ISSUER,
        base_url="https://idp.example.test",
        certificate_der_b64=identity.certificate_der_b64,
    ).decode("utf-8")
    config = SPConfig()
    config.load(
        {
            "entityid": "urn:amazon:webservices",
            "metadata": {"inline": [metadata]},
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(ACS_URL, BINDING_HTTP_POST)]},
                    "allow_unsolicited": True,
                    "want_response_signed": True,
                    "want_assertions_signed": True,
                    "authn_requests_signed": False,
                }
            },
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "accepted_time_diff": 0,
            "allow_unknown_attributes": True,
        }
    )
    return Saml2Client(config=config)


def test_kms_key_signs_with_pkcs1v15_sha256_verifiable_by_its_public_key(kms: Any, key_id: str) -> None:
    key = KmsRsaPrivateKey(kms, key_id)
    signature = key.sign(b"hello", padding.PKCS1v15(), hashes.SHA256())
    key.public_key().verify(signature, b"hello", padding.PKCS1v15(), hashes.SHA256())
    assert key.key_size == 2048


def test_kms_key_refuses_to_export_or_decrypt(kms: Any, key_id: str) -> None:
    key = KmsRsaPrivateKey(kms, key_id)
    with pytest.raises(KmsKeyError, match="never leaves AWS KMS"):
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    with pytest.raises(KmsKeyError, match="never leaves AWS KMS"):
        key.private_numbers()
    with pytest.raises(KmsKeyError, match="never leaves AWS KMS"):
        key.decrypt(b"x", padding.PKCS1v15())


def test_kms_key_refuses_other_paddings_and_hashes(kms: Any, key_id: str) -> None:
    key = KmsRsaPrivateKey(kms, key_id)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    with pytest.raises(KmsKeyError, match=r"PKCS#1 v1\.5"):
        key.sign(b"x", pss, hashes.SHA256())
    with pytest.raises(KmsKeyError, match="SHA-256"):
        key.sign(b"x", padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - the point is that it is refused


def test_certificate_is_self_signed_by_the_kms_key_and_created_once(
    kms: Any, key_id: str, tables: Tables, real_time_clock: FakeClock
) -> None:
    first = signing_identity(kms, key_id, real_time_clock)
    certificate_module.forget_cached_identities()
    second = signing_identity(kms, key_id, real_time_clock)

    assert first.certificate_pem == second.certificate_pem
    certificate = first.certificate
    certificate.verify_directly_issued_by(certificate)
    kms_public = kms.get_public_key(KeyId=key_id)["PublicKey"]
    assert certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == bytes(kms_public)
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert validity.days >= 3650
    assert KeyValue.get(setting_name(key_id)).value == first.certificate_pem


def test_warm_process_reuses_the_identity_without_reading_again(
    kms: Any, key_id: str, tables: Tables, real_time_clock: FakeClock
) -> None:
    first = signing_identity(kms, key_id, real_time_clock)
    KeyValue(setting_name(key_id)).delete()
    assert signing_identity(kms, key_id, real_time_clock) is first


def test_two_racing_cold_starts_store_exactly_one_certificate(
    kms: Any, key_id: str, tables: Tables, real_time_clock: FakeClock
) -> None:
    key = KmsRsaPrivateKey(kms, key_id)
    candidates = [create_certificate(key, real_time_clock) for _ in range(2)]
    assert candidates[0] != candidates[1]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def store(index: int) -> None:
        barrier.wait()
        results[index] = store_or_reload(key_id, candidates[index], real_time_clock)

    threads = [threading.Thread(target=store, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = KeyValue.get(setting_name(key_id)).value
    assert results[0] == results[1]
    assert results[0].public_bytes(serialization.Encoding.PEM).decode("ascii") == stored


def test_pysaml2_service_provider_accepts_our_signed_response(identity: SigningIdentity) -> None:
    response = build_signed_response(_assertion(), identity, FakeClock(start=time.time()))
    client = _service_provider(identity)

    parsed = client.parse_authn_request_response(
        base64.b64encode(response).decode("ascii"), BINDING_HTTP_POST
    )

    assert parsed is not None
    assert parsed.name_id.text == "alice"
    attributes = parsed.ava
    assert attributes["https://aws.amazon.com/SAML/Attributes/Role"] == [f"{ROLE},{PROVIDER}"]
    assert attributes["https://aws.amazon.com/SAML/Attributes/RoleSessionName"] == ["alice@example.com"]
    assert attributes["https://aws.amazon.com/SAML/Attributes/PrincipalTag:team"] == ["platform"]


def test_pysaml2_reads_the_mfa_authn_context_from_the_signed_assertion(identity: SigningIdentity) -> None:
    response = build_signed_response(
        _assertion(authn_context=REFEDS_MFA), identity, FakeClock(start=time.time())
    )
    parsed = _service_provider(identity).parse_authn_request_response(
        base64.b64encode(response).decode("ascii"), BINDING_HTTP_POST
    )
    assert [class_ref for class_ref, _, _ in parsed.authn_info()] == [REFEDS_MFA]


@pytest.mark.parametrize(
    ("original", "tampered"),
    [
        (b">alice</saml:NameID>", b">alicf</saml:NameID>"),
        (b">alice@example.com</saml:AttributeValue>", b">alicf@example.com</saml:AttributeValue>"),
        (b"role/Developers,", b"role/Developerz,"),
    ],
)
def test_pysaml2_rejects_a_response_with_one_changed_byte(
    identity: SigningIdentity, original: bytes, tampered: bytes
) -> None:
    response = build_signed_response(_assertion(), identity, FakeClock(start=time.time()))
    assert response.count(original) == 1
    client = _service_provider(identity)

    with pytest.raises(Exception, match=r"(?i)signature"):
        client.parse_authn_request_response(
            base64.b64encode(response.replace(original, tampered)).decode("ascii"), BINDING_HTTP_POST
        )


def test_pysaml2_rejects_a_response_signed_by_another_key(
    kms: Any, identity: SigningIdentity, tables: Tables
) -> None:
    other_key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    other = signing_identity(kms, other_key_id, FakeClock(start=time.time()))
    response = build_signed_response(_assertion(), other, FakeClock(start=time.time()))

    with pytest.raises(Exception, match=r"(?i)signature"):
        _service_provider(identity).parse_authn_request_response(
            base64.b64encode(response).decode("ascii"), BINDING_HTTP_POST
        )


def test_sts_assume_role_with_saml_returns_credentials_for_the_mapped_role(
    identity: SigningIdentity, aws_endpoint: str
) -> None:
    iam = boto3.client("iam")
    role_name = f"Developers{uuid.uuid4().hex[:6]}"
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    provider = iam.create_saml_provider(
        SAMLMetadataDocument=build_idp_metadata(
            entity_id=ISSUER,
            base_url="https://idp.example.test",
            certificate_der_b64=identity.certificate_der_b64,
        ).decode("utf-8"),
        Name=f"idp{uuid.uuid4().hex[:6]}",
    )["SAMLProviderArn"]
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}')
    response = build_signed_response(
        _assertion(roles=((role_arn, provider),)), identity, FakeClock(start=time.time())
    )

    result = boto3.client("sts").assume_role_with_saml(
        RoleArn=role_arn,
        PrincipalArn=provider,
        SAMLAssertion=base64.b64encode(response).decode("ascii"),
        DurationSeconds=3600,
    )

    assert (
        result["AssumedRoleUser"]["Arn"]
        == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/alice@example.com"
    )
    assert result["Credentials"]["AccessKeyId"]
    assert result["Credentials"]["SecretAccessKey"]
