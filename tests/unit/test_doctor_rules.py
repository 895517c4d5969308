"""`idp doctor`'s reading of trust policies and SAML metadata."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from idp_cli.doctor import PROBLEM, parse_provider_metadata, trust_policy_gaps

PROVIDER = "arn:aws:iam::111122223333:saml-provider/serverless-idp"
SIGNIN = "https://signin.aws.amazon.com/saml"
README_ACTIONS = ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"]


def statement(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER},
        "Action": README_ACTIONS,
        "Condition": {"StringEquals": {"SAML:aud": SIGNIN}},
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def gaps(document: Any) -> list[tuple[str, str]]:
    return [(gap.status, gap.sentence) for gap in trust_policy_gaps(document, PROVIDER, SIGNIN)]


# ---------------------------------------------------------------- trust policies


@pytest.mark.parametrize(
    "document",
    [
        policy(statement()),
        # IAM hands the document out URL-encoded.
        quote(json.dumps(policy(statement()))),
        policy(statement(Action="sts:*")),
        policy(statement(Action="*")),
        policy(statement(Action=["STS:assumerolewithsaml", "sts:tagsession", "sts:setsourceidentity"])),
        policy(
            statement(Principal={"Federated": ["arn:aws:iam::111122223333:saml-provider/other", PROVIDER]})
        ),
        policy(statement(Condition={"StringLike": {"saml:aud": "https://signin.aws.amazon.com/*"}})),
        policy(statement(Condition={"ForAnyValue:StringEquals": {"SAML:aud": [SIGNIN, "https://other"]}})),
        # The actions may be granted by two statements, as long as the sign-in one is pinned.
        policy(
            statement(Action="sts:AssumeRoleWithSAML"),
            statement(Action=["sts:TagSession", "sts:SetSourceIdentity"], Condition=None),
        ),
        # A conditional Deny may not apply; only an unconditional one is sure to.
        policy(statement(), statement(Effect="Deny", Condition={"Bool": {"aws:ViaAWSService": "true"}})),
    ],
)
def test_trust_policies_that_work_have_no_gaps(document: Any) -> None:
    assert trust_policy_gaps(document, PROVIDER, SIGNIN) == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            policy(statement(), statement(Effect="Deny", Condition=None)),
            [(PROBLEM, "denies sts:AssumeRoleWithSAML")],
        ),
        (policy(), [(PROBLEM, f"does not trust the IAM SAML provider {PROVIDER}")]),
        ("not json", [(PROBLEM, f"does not trust the IAM SAML provider {PROVIDER}")]),
        (
            policy(statement(Principal={"Service": "lambda.amazonaws.com"})),
            [(PROBLEM, f"does not trust the IAM SAML provider {PROVIDER}")],
        ),
        (policy(statement(Action=["sts:TagSession"])), [(PROBLEM, "does not allow sts:AssumeRoleWithSAML")]),
        (
            policy(statement(Condition=None)),
            [(PROBLEM, "without a SAML:aud condition")],
        ),
        (
            policy(
                statement(Condition={"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml/"}})
            ),
            [(PROBLEM, "requires SAML:aud https://signin.aws.amazon.com/saml/, but")],
        ),
        (
            policy(statement(Action=["sts:AssumeRoleWithSAML"])),
            [(PROBLEM, "does not allow sts:TagSession"), (PROBLEM, "does not allow sts:SetSourceIdentity")],
        ),
        (
            policy(statement(Effect="Allow"), statement(Effect="Deny", Principal="*", Condition=None)),
            [(PROBLEM, "denies sts:AssumeRoleWithSAML")],
        ),
    ],
)
def test_trust_policy_gaps(document: Any, expected: list[tuple[str, str]]) -> None:
    found = gaps(document)

    assert [status for status, _ in found] == [status for status, _ in expected]
    assert all(phrase in sentence for (_, sentence), (_, phrase) in zip(found, expected, strict=True))


def test_a_pinned_statement_wins_over_an_unpinned_one() -> None:
    document = policy(statement(), statement(Action="sts:AssumeRoleWithSAML", Condition=None))

    assert trust_policy_gaps(document, PROVIDER, SIGNIN) == []


# ---------------------------------------------------------------- metadata


METADATA = (
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
    'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.com/saml/metadata">'
    '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
    '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n  AAEC\n  Aw==\n'
    "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    '<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>BAUG'
    "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    "<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>BwgJ"
    "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    "</md:IDPSSODescriptor></md:EntityDescriptor>"
)


def test_metadata_gives_the_entity_id_and_the_signing_certificates() -> None:
    metadata = parse_provider_metadata(METADATA)

    assert metadata.entity_id == "https://idp.example.com/saml/metadata"
    # A KeyDescriptor without "use" signs too; an encryption key does not.
    assert metadata.certificates == (b"\x00\x01\x02\x03", b"\x07\x08\x09")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("<notmetadata/>", "not a SAML EntityDescriptor"),
        ("<md:EntityDescriptor", "not well-formed"),
        (METADATA.replace("BwgJ", "not base64!"), "not base64"),
    ],
)
def test_unreadable_metadata_says_why(document: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_provider_metadata(document)
