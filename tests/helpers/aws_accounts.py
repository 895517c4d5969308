"""Steps for tests of AWS apps with roles in several accounts: an account id of a test's own,
boto3 clients that act in a given account of the embedded AWS, the SAMLResponse a launch
page posts, and the local AWS sign-in emulator trusting this IdP's published metadata."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

import boto3
import requests

from idp_core.apps import saml_trust_policy
from idp_core.saml.aws import ATTR_ROLE
from idp_core.saml.xml import NAMESPACES, parse_xml
from idp_local.aws_emulator import ACCOUNT_HEADER, AwsSignInEmulator
from idp_local.stack import DEMO_APP
from idp_local.state import DemoAccount, LocalState, write_state
from tests.helpers.sso import Sso

_SAML_RESPONSE = re.compile(r'name="SAMLResponse" value="([^"]+)"')


def new_account() -> str:
    """A 12-digit account id of the test's own: moto's IAM outlives each test's tables."""
    return "".join(secrets.choice("0123456789") for _ in range(12))


def client_in(service: Any, account: str) -> Any:
    """A boto3 client that acts in ``account`` of the embedded AWS (moto reads the header)."""
    client = boto3.client(service)

    def add_header(request: Any, **_: Any) -> None:
        request.headers[ACCOUNT_HEADER] = account

    client.meta.events.register(f"before-sign.{service}.*", add_header)
    return client


def saml_response_of(page: requests.Response) -> str:
    """The base64 SAMLResponse of the page that posts it to the ACS."""
    match = _SAML_RESPONSE.search(page.text)
    assert match, page.text[:800]
    return html.unescape(match.group(1))


def attribute_values(saml_response: str, name: str) -> list[str]:
    """The values of the assertion's attribute ``name``."""
    root = parse_xml(base64.b64decode(saml_response))
    return [
        value.text or ""
        for attribute in root.iterfind(".//saml:Attribute", NAMESPACES)
        if attribute.get("Name") == name
        for value in attribute.iterfind("saml:AttributeValue", NAMESPACES)
    ]


def role_values(saml_response: str) -> list[str]:
    return attribute_values(saml_response, ATTR_ROLE)


def published_metadata(sso: Sso) -> bytes:
    answer = requests.get(sso.url + "/saml/metadata", timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    return answer.content


def emulator_for(sso: Sso, acs_url: str, home_account: str) -> AwsSignInEmulator:
    """The local stand-in for AWS's SAML endpoint, as the local stack runs it: only
    ``home_account`` gets a missing provider or role made for it."""
    return AwsSignInEmulator(
        boto3.client("iam"),
        boto3.client("sts"),
        sso.clock,
        lambda: published_metadata(sso),
        acs_url,
        home_account=home_account,
    )


def set_up_member_account(
    account: str, *, provider: str, metadata: bytes | str, roles: list[str], acs_url: str
) -> None:
    """What an operator does by hand in a member account: the SAML provider with ``metadata``
    and each role trusting it."""
    iam = client_in("iam", account)
    text = metadata.decode("utf-8") if isinstance(metadata, bytes) else metadata
    iam.create_saml_provider(SAMLMetadataDocument=text, Name=provider)
    provider_arn = f"arn:aws:iam::{account}:saml-provider/{provider}"
    for role in roles:
        iam.create_role(
            RoleName=role, AssumeRolePolicyDocument=json.dumps(saml_trust_policy(provider_arn, acs_url))
        )


def point_cli_at(sso: Sso, aws_endpoint: str, state_dir: Path) -> None:
    """Write the state file that points `idp --local` (tests.helpers.cli, with IDP_STATE_DIR set
    to ``state_dir``) at the running sso's tables, signing key and gateway."""
    settings = sso.settings
    write_state(
        LocalState(
            base_url=sso.url,
            aws_endpoint_url=aws_endpoint,
            region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            tables={"users": settings.tables.users},
            signing_key_id=str(settings.signing_key_id),
            data_key_id=str(settings.data_key_id or "unused-key"),
            admin=DemoAccount("admin", "unused"),
            user=DemoAccount("alice", "unused"),
            demo_group="engineers",
            demo_app=DEMO_APP,
            pid=os.getpid(),
            settings_env=settings.to_env(),
        ),
        state_dir / "local.json",
    )
