"""The local stand-in for https://signin.aws.amazon.com/saml checks what AWS checks, then uses STS."""

from __future__ import annotations

import base64
import copy
import re
import secrets
from typing import Any

import boto3
import pytest
from lxml import etree

from idp_core.clock import FakeClock
from idp_core.saml.aws import AwsAssertion, build_signed_response
from idp_core.saml.certificate import SigningIdentity, signing_identity
from idp_core.saml.metadata import build_idp_metadata
from idp_local.aws_emulator import AwsSignInEmulator

ACS_URL = "http://127.0.0.1:8000/_local/aws/saml"
BASE_URL = "http://127.0.0.1:8000"
ISSUER = BASE_URL + "/saml/metadata"


@pytest.fixture
def account() -> str:
    # Any 12-digit account id an admin configures must work, not only moto's default one.
    return "".join(secrets.choice("0123456789") for _ in range(12))


@pytest.fixture
def emulator(identity: SigningIdentity, clock: FakeClock) -> AwsSignInEmulator:
    def metadata() -> bytes:
        return build_idp_metadata(
            entity_id=ISSUER, base_url=BASE_URL, certificate_der_b64=identity.certificate_der_b64
        )

    return AwsSignInEmulator(boto3.client("iam"), boto3.client("sts"), clock, metadata, ACS_URL)


def _response(identity: SigningIdentity, clock: FakeClock, account: str, **changes: Any) -> str:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "acs_url": ACS_URL,
        "name_id": "alice",
        "roles": (
            (f"arn:aws:iam::{account}:role/Developers", f"arn:aws:iam::{account}:saml-provider/local-idp"),
        ),
        "role_session_name": "alice",
        "session_duration": 3600,
    }
    values.update(changes)
    return base64.b64encode(build_signed_response(AwsAssertion(**values), identity, clock)).decode("ascii")


def _reason(page: str) -> str:
    match = re.search(r'<p id="reason">(.*?)</p>', page)
    assert match is not None, page
    return match.group(1)


def test_valid_response_assumes_the_role_and_shows_it(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    status, page = emulator.handle(
        {"SAMLResponse": _response(identity, clock, account), "RelayState": "https://console.aws.amazon.com/"}
    )

    assert status == 200, page
    assert f"arn:aws:sts::{account}:assumed-role/Developers/alice" in page
    assert 'href="https://console.aws.amazon.com/"' in page
    assert 'id="expiration"' in page


def test_registered_provider_holds_our_metadata_and_role_trusts_it(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    status, _ = emulator.handle({"SAMLResponse": _response(identity, clock, account)})
    assert status == 200

    iam = boto3.client("iam")
    iam.meta.events.register(
        "before-sign.iam.*", lambda request, **_: request.headers.add_header("x-moto-account-id", account)
    )
    provider = iam.get_saml_provider(SAMLProviderArn=f"arn:aws:iam::{account}:saml-provider/local-idp")
    assert identity.certificate_der_b64 in provider["SAMLMetadataDocument"]
    role = iam.get_role(RoleName="Developers")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{account}:role/Developers"


def test_tampered_response_is_refused_with_the_reason(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    raw = base64.b64decode(_response(identity, clock, account))
    tampered = raw.replace(b">alice</saml:NameID>", b">mallory</saml:NameID>")
    assert tampered != raw

    status, page = emulator.handle({"SAMLResponse": base64.b64encode(tampered).decode("ascii")})

    assert status == 403
    assert "signature" in _reason(page).lower()


def test_response_signed_by_another_key_is_refused_even_with_its_cert_in_keyinfo(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    # Register the provider with the genuine metadata first.
    assert emulator.handle({"SAMLResponse": _response(identity, clock, account)})[0] == 200
    kms = boto3.client("kms")
    other_key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    attacker = signing_identity(kms, other_key, clock)

    status, page = emulator.handle({"SAMLResponse": _response(attacker, clock, account)})

    assert status == 403
    assert "does not verify against the certificate registered" in _reason(page)


def test_wrong_audience_is_refused(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    status, page = emulator.handle(
        {"SAMLResponse": _response(identity, clock, account, audience="urn:example:other")}
    )
    assert status == 403
    assert "Audience must be urn:amazon:webservices" in _reason(page)


def test_wrong_recipient_is_refused(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    status, page = emulator.handle(
        {"SAMLResponse": _response(identity, clock, account, acs_url="https://signin.aws.amazon.com/saml")}
    )
    assert status == 403
    assert "is not this endpoint" in _reason(page)


def test_expired_response_is_refused(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    response = _response(identity, clock, account)
    clock.advance(301)

    status, page = emulator.handle({"SAMLResponse": response})

    assert status == 403
    assert "expired" in _reason(page)


def test_response_still_valid_just_before_expiry_is_accepted(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    response = _response(identity, clock, account)
    clock.advance(299)
    assert emulator.handle({"SAMLResponse": response})[0] == 200


def test_several_roles_show_a_chooser_then_assume_the_chosen_role(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    provider = f"arn:aws:iam::{account}:saml-provider/local-idp"
    roles = (
        (f"arn:aws:iam::{account}:role/Developers", provider),
        (f"arn:aws:iam::{account}:role/teams/ReadOnly", provider),
    )
    response = _response(identity, clock, account, roles=roles)

    status, chooser = emulator.handle(
        {"SAMLResponse": response, "RelayState": "https://console.aws.amazon.com/"}
    )

    assert status == 200
    assert "Select a role" in chooser
    assert '<label for="role-1">' + roles[1][0] + "</label>" in chooser
    assert f'name="SAMLResponse" value="{response}"' in chooser
    assert ">Sign In</button>" in chooser

    status, page = emulator.handle(
        {"SAMLResponse": response, "RelayState": "https://console.aws.amazon.com/", "roleIndex": "1"}
    )

    assert status == 200, page
    assert f"arn:aws:sts::{account}:assumed-role/ReadOnly/alice" in page


def test_out_of_range_role_choice_is_refused(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    provider = f"arn:aws:iam::{account}:saml-provider/local-idp"
    roles = ((f"arn:aws:iam::{account}:role/A", provider), (f"arn:aws:iam::{account}:role/B", provider))
    status, page = emulator.handle(
        {"SAMLResponse": _response(identity, clock, account, roles=roles), "roleIndex": "2"}
    )
    assert status == 400
    assert "Choose one of the offered roles" in _reason(page)


def test_missing_or_garbage_response_gets_a_clear_400(emulator: AwsSignInEmulator) -> None:
    assert emulator.handle({})[0] == 400
    status, page = emulator.handle({"SAMLResponse": "not base64!"})
    assert status == 400
    assert "not valid base64" in _reason(page)
    doctype = base64.b64encode(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>').decode("ascii")
    status, page = emulator.handle({"SAMLResponse": doctype})
    assert status == 400
    assert "DOCTYPE" in _reason(page)


def test_signature_wrapping_with_the_signed_response_nested_in_a_forged_one_is_refused(
    emulator: AwsSignInEmulator, identity: SigningIdentity, clock: FakeClock, account: str
) -> None:
    genuine = etree.fromstring(base64.b64decode(_response(identity, clock, account)))
    forged = copy.deepcopy(genuine)
    forged.set("ID", "_" + "f" * 32)
    name_id = forged.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}NameID")
    assert name_id is not None
    name_id.text = "mallory"
    # The genuine, signed Response hides inside the forged one; the Signature still points at it.
    forged.find("{urn:oasis:names:tc:SAML:2.0:protocol}Status").append(genuine)  # type: ignore[union-attr]

    status, page = emulator.handle({"SAMLResponse": base64.b64encode(etree.tostring(forged)).decode("ascii")})

    assert status == 403
    reason = _reason(page)
    assert "signature" in reason.lower() or "does not cover the Response" in reason
