"""The SAML Response we build for AWS: structure, times, unique IDs, signatures; metadata; post form."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier  # type: ignore[attr-defined]

from idp_core.clock import FakeClock
from idp_core.errors import BadRequest
from idp_core.launch import choose_relay_state
from idp_core.models import App
from idp_core.saml.aws import AssertionRuleViolation, AwsAssertion, build_signed_response
from idp_core.saml.certificate import SigningIdentity, create_certificate, identity_for
from idp_core.saml.kms_key import KmsRsaPrivateKey
from idp_core.saml.metadata import build_idp_metadata
from idp_core.saml.post_form import AUTO_POST_SCRIPT_CSP_HASH, auto_post_form
from idp_core.saml.xml import NAMESPACES, parse_xml

ACS = "https://signin.aws.amazon.com/saml"
ROLE = "arn:aws:iam::123456789012:role/Developers"
PROVIDER = "arn:aws:iam::123456789012:saml-provider/serverless-idp"


class LocalKms:
    """A stand-in for the KMS client where KMS itself is not under test (the integration tests use moto)."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sign_calls = 0

    def sign(self, *, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> dict[str, Any]:
        assert (MessageType, SigningAlgorithm) == ("RAW", "RSASSA_PKCS1_V1_5_SHA_256")
        self.sign_calls += 1
        return {"Signature": self._key.sign(Message, padding.PKCS1v15(), hashes.SHA256())}

    def get_public_key(self, *, KeyId: str) -> dict[str, Any]:
        return {
            "KeyUsage": "SIGN_VERIFY",
            "SigningAlgorithms": ["RSASSA_PKCS1_V1_5_SHA_256"],
            "PublicKey": self._key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def identity(clock: FakeClock) -> SigningIdentity:
    key = KmsRsaPrivateKey(LocalKms(), "local-key")
    return identity_for(key, create_certificate(key, clock))


def assertion(**changes: Any) -> AwsAssertion:
    values: dict[str, Any] = {
        "issuer": "https://idp.example.com/saml/metadata",
        "acs_url": ACS,
        "name_id": "alice",
        "roles": ((ROLE, PROVIDER), (ROLE.replace("Developers", "ReadOnly"), PROVIDER)),
        "role_session_name": "alice",
        "session_duration": 7200,
        "source_identity": "alice",
        "principal_tags": {"team": "platform"},
    }
    values.update(changes)
    return AwsAssertion(**values)


def xpath(node: Any, path: str) -> list[Any]:
    return node.xpath(path, namespaces=NAMESPACES)  # type: ignore[no-any-return]


def test_response_has_the_structure_aws_requires(identity: SigningIdentity, clock: FakeClock) -> None:
    root = parse_xml(build_signed_response(assertion(), identity, clock))

    assert root.get("Destination") == ACS
    assert root.get("IssueInstant") == "2027-01-15T08:00:00Z"
    assert xpath(root, "samlp:Status/samlp:StatusCode/@Value") == [
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    ]
    (saml_assertion,) = xpath(root, "saml:Assertion")
    confirmations = xpath(saml_assertion, "saml:Subject/saml:SubjectConfirmation")
    assert len(confirmations) == 1
    assert confirmations[0].get("Method") == "urn:oasis:names:tc:SAML:2.0:cm:bearer"
    (data,) = xpath(confirmations[0], "saml:SubjectConfirmationData")
    assert data.get("Recipient") == ACS
    assert data.get("NotOnOrAfter") == "2027-01-15T08:05:00Z"
    assert xpath(saml_assertion, "saml:Subject/saml:NameID/text()") == ["alice"]
    (conditions,) = xpath(saml_assertion, "saml:Conditions")
    assert (conditions.get("NotBefore"), conditions.get("NotOnOrAfter")) == (
        "2027-01-15T08:00:00Z",
        "2027-01-15T08:05:00Z",
    )
    assert xpath(conditions, "saml:AudienceRestriction/saml:Audience/text()") == ["urn:amazon:webservices"]
    assert xpath(
        saml_assertion, "saml:AuthnStatement/saml:AuthnContext/saml:AuthnContextClassRef/text()"
    ) == ["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"]

    def values(name: str) -> list[str]:
        return xpath(
            saml_assertion,
            f"saml:AttributeStatement/saml:Attribute[@Name='{name}']/saml:AttributeValue/text()",
        )

    prefix = "https://aws.amazon.com/SAML/Attributes/"
    assert values(prefix + "Role") == [
        f"{ROLE},{PROVIDER}",
        f"{ROLE.replace('Developers', 'ReadOnly')},{PROVIDER}",
    ]
    assert values(prefix + "RoleSessionName") == ["alice"]
    assert values(prefix + "SessionDuration") == ["7200"]
    assert values(prefix + "SourceIdentity") == ["alice"]
    assert values(prefix + "PrincipalTag:team") == ["platform"]


def test_signatures_follow_issuer_and_use_rsa_sha256_with_exclusive_c14n(
    identity: SigningIdentity, clock: FakeClock
) -> None:
    root = parse_xml(build_signed_response(assertion(), identity, clock))
    for signed in (root, xpath(root, "saml:Assertion")[0]):
        children = [child.tag for child in signed]
        assert children[0] == "{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"
        assert children[1] == "{http://www.w3.org/2000/09/xmldsig#}Signature"
        (signature,) = xpath(signed, "ds:Signature")
        assert xpath(signature, "ds:SignedInfo/ds:SignatureMethod/@Algorithm") == [
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        ]
        assert xpath(signature, "ds:SignedInfo/ds:CanonicalizationMethod/@Algorithm") == [
            "http://www.w3.org/2001/10/xml-exc-c14n#"
        ]
        assert xpath(signature, "ds:SignedInfo/ds:Reference/ds:DigestMethod/@Algorithm") == [
            "http://www.w3.org/2001/04/xmlenc#sha256"
        ]
        assert xpath(signature, "ds:SignedInfo/ds:Reference/@URI") == ["#" + signed.get("ID")]
        assert xpath(signature, "ds:KeyInfo/ds:X509Data/ds:X509Certificate")


def test_both_signatures_verify_against_our_certificate(identity: SigningIdentity, clock: FakeClock) -> None:
    when = datetime.datetime.fromtimestamp(clock.now(), tz=datetime.UTC)

    def verified(data: Any, location: str) -> Any:
        config = SignatureConfiguration(location=location, verification_time=when)
        result: Any = XMLVerifier().verify(data, x509_cert=identity.certificate, expect_config=config)
        return result.signed_xml

    response = verified(build_signed_response(assertion(), identity, clock), "./")
    signed_assertion = verified(response, "./{urn:oasis:names:tc:SAML:2.0:assertion}Assertion/")
    assert response.tag == "{urn:oasis:names:tc:SAML:2.0:protocol}Response"
    assert signed_assertion.tag == "{urn:oasis:names:tc:SAML:2.0:assertion}Assertion"


def test_ids_are_unique_across_builds(identity: SigningIdentity, clock: FakeClock) -> None:
    ids: list[str] = []
    for _ in range(2):
        root = parse_xml(build_signed_response(assertion(), identity, clock))
        ids += xpath(root, "//@ID") + xpath(root, "//@SessionIndex")
    assert len(ids) == 6
    assert len(set(ids)) == 6
    assert all(len(value) == 33 and value.startswith("_") for value in ids)


def test_rule_violation_is_refused_before_anything_is_signed(clock: FakeClock) -> None:
    kms = LocalKms()
    key = KmsRsaPrivateKey(kms, "local-key")
    identity = identity_for(key, create_certificate(key, clock))
    calls_before = kms.sign_calls
    with pytest.raises(AssertionRuleViolation):
        build_signed_response(assertion(session_duration=60), identity, clock)
    assert kms.sign_calls == calls_before


def test_metadata_describes_the_idp_with_its_signing_certificate(identity: SigningIdentity) -> None:
    root = parse_xml(
        build_idp_metadata(
            entity_id="https://idp.example.com/saml/metadata",
            base_url="https://idp.example.com/",
            certificate_der_b64=identity.certificate_der_b64,
        )
    )
    assert root.get("entityID") == "https://idp.example.com/saml/metadata"
    (idp,) = xpath(root, "md:IDPSSODescriptor")
    assert idp.get("WantAuthnRequestsSigned") == "false"
    assert idp.get("protocolSupportEnumeration") == "urn:oasis:names:tc:SAML:2.0:protocol"
    assert xpath(
        idp, "md:KeyDescriptor[@use='signing']/ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()"
    ) == [identity.certificate_der_b64]
    assert sorted(xpath(idp, "md:SingleSignOnService/@Binding")) == [
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
    ]
    assert set(xpath(idp, "md:SingleSignOnService/@Location")) == {"https://idp.example.com/saml/sso"}


def test_metadata_during_a_key_rotation_publishes_the_signing_then_the_next_certificate(
    identity: SigningIdentity, clock: FakeClock
) -> None:
    kms = LocalKms()
    next_key = KmsRsaPrivateKey(kms, "next-key")
    following = identity_for(next_key, create_certificate(next_key, clock))

    root = parse_xml(
        build_idp_metadata(
            entity_id="https://idp.example.com/saml/metadata",
            base_url="https://idp.example.com/",
            certificate_der_b64=identity.certificate_der_b64,
            next_certificates_der_b64=[following.certificate_der_b64],
        )
    )

    # Two signing KeyDescriptors: an SP (an IAM SAML provider too) accepts a signature by either.
    (idp,) = xpath(root, "md:IDPSSODescriptor")
    assert xpath(idp, "md:KeyDescriptor/@use") == ["signing", "signing"]
    assert xpath(idp, "md:KeyDescriptor/ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()") == [
        identity.certificate_der_b64,
        following.certificate_der_b64,
    ]
    # The KeyDescriptors come first, as the schema orders an IDPSSODescriptor's children.
    assert [etree.QName(child).localname for child in idp][:3] == [
        "KeyDescriptor",
        "KeyDescriptor",
        "SingleLogoutService",
    ]


def test_auto_post_form_escapes_values_and_carries_the_nonce() -> None:
    page = auto_post_form(ACS, "PHNhbWw+", 'https://console.aws.amazon.com/"><script>', "n0nce")
    html = etree.HTML(page)
    (form,) = html.xpath("//form")
    assert (form.get("method"), form.get("action")) == ("post", ACS)
    assert html.xpath("//input[@name='SAMLResponse']/@value") == ["PHNhbWw+"]
    assert html.xpath("//input[@name='RelayState']/@value") == ['https://console.aws.amazon.com/"><script>']
    assert len(html.xpath("//script")) == 1
    assert html.xpath("//script/@nonce") == ["n0nce"]
    assert "Continue" in html.xpath("string(//noscript)") or "Continue" in page
    assert AUTO_POST_SCRIPT_CSP_HASH.startswith("'sha256-")


def _app(relay_state: str = "https://console.aws.amazon.com/") -> App:
    return App(
        "aws",
        display_name="AWS",
        account_id="123456789012",
        provider_name="serverless-idp",
        relay_state=relay_state,
        acs_url=ACS,
        audience="urn:amazon:webservices",
        created_at=0,
    )


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (None, "https://console.aws.amazon.com/"),
        ("", "https://console.aws.amazon.com/"),
        (
            "https://us-east-1.console.aws.amazon.com/s3/home",
            "https://us-east-1.console.aws.amazon.com/s3/home",
        ),
        ("https://console.amazonaws-us-gov.com/", "https://console.amazonaws-us-gov.com/"),
        ("https://console.amazonaws.cn/ec2", "https://console.amazonaws.cn/ec2"),
    ],
)
def test_relay_state_defaults_to_the_app_and_accepts_console_pages(
    requested: str | None, expected: str
) -> None:
    assert choose_relay_state(_app(), requested) == expected


@pytest.mark.parametrize(
    "requested",
    [
        "https://evil.example.com/",
        "http://console.aws.amazon.com/",
        "https://console.aws.amazon.com.evil.example/",
        "https://evilconsole.aws.amazon.com/",
        "https://user@console.aws.amazon.com/",
        "https://console.aws.amazon.com:8443/",
        "javascript:alert(1)",
        "//evil.example.com",
    ],
)
def test_relay_state_outside_the_allowlist_is_refused(requested: str) -> None:
    with pytest.raises(BadRequest, match="open redirect"):
        choose_relay_state(_app(), requested)


def test_relay_state_equal_to_the_apps_own_is_accepted() -> None:
    app = _app(relay_state="https://myapp.example.com/start")
    assert choose_relay_state(app, "https://myapp.example.com/start") == "https://myapp.example.com/start"
