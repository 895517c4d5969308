"""The directory option "Send configured attributes": a directory user's mapped attributes go
into the AWS assertion as session tags (PrincipalTag), through the sso function over HTTP with
a real slapd; the local AWS sign-in emulator checks the signed response and assumes the role."""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
from dataclasses import replace
from typing import Any

import boto3
import pytest
import requests

from idp_core import apps
from idp_core.accounts import create_group
from idp_core.apps import saml_trust_policy
from idp_core.directories import store
from idp_core.directories.settings import DirectorySettings
from idp_core.models import Directory
from idp_core.saml.aws import ATTR_PRINCIPAL_TAG_PREFIX
from idp_core.saml.xml import NAMESPACES, parse_xml
from idp_local.aws_emulator import AwsSignInEmulator
from tests.helpers.adaptive import launch_from_login
from tests.helpers.mfa import add_user
from tests.helpers.sso import PASSWORD, Sso
from tests.support.slapd import Slapd, Subtree

SERVICE_PASSWORD = "service-secret"
DIRECTORY_PASSWORD = "alice-Directory-1"
APP = "aws-tagged"
_SAML_RESPONSE = re.compile(r'name="SAMLResponse" value="([^"]+)"')


@pytest.fixture
def account() -> str:
    # moto's IAM outlives each test's tables and signing key: an account of its own per test
    # keeps the SAML provider and the roles the emulator registers from meeting another test's.
    return "".join(secrets.choice("0123456789") for _ in range(12))


pytestmark = pytest.mark.sso_setup("password_only")


@pytest.fixture
def sso(sso: Sso, account: str) -> Sso:
    """With the group engineers and an app that maps it to a role and asks for no second factor."""
    create_group("engineers", clock=sso.clock)
    apps.create_aws_app(
        APP,
        apps.AwsAppChoices(account_id=account, roles=[("Reader", "engineers")]),
        mfa_required=False,
        clock=sso.clock,
    )
    return sso


@pytest.fixture
def corp(sso: Sso, slapd: Slapd, ldap_tree: Subtree) -> Any:
    """A directory with alice (in engineers); returns a saver that stores it with the given
    switches and alice's display name (the ``cn``)."""
    ldap_tree.add_user("svc", SERVICE_PASSWORD, parent=ldap_tree.dn)

    def save(display_name: str = "Alice Example", **switches: bool) -> None:
        alice = ldap_tree.add_user(
            "alice", DIRECTORY_PASSWORD, cn=display_name, sn="Example", mail="alice+aws@corp.example"
        )
        ldap_tree.add_group("engineers", [alice])
        settings = DirectorySettings(
            name="corp",
            display_name="Corp LDAP",
            kind="openldap",
            urls=(slapd.url,),
            allow_cleartext=True,  # slapd speaks plain LDAP on 127.0.0.1 (S30)
            bind_dn=f"uid=svc,{ldap_tree.dn}",
            bases=(ldap_tree.people,),
            activate=True,
            sync_users=True,
            **switches,
        )
        _store(sso, settings, create=True)

    return save


def _store(sso: Sso, settings: DirectorySettings, *, create: bool) -> None:
    store.save_directory(
        settings,
        create=create,
        bind_password=SERVICE_PASSWORD,
        kms=boto3.client("kms"),
        key_id=sso.settings.require_data_key(),
        clock=sso.clock,
    )


def _launch(sso: Sso, username: str, password: str) -> tuple[requests.Session, str, str]:
    """Sign in and launch the open app; the browser, the launch path and the SAMLResponse."""
    browser = sso.browser()
    signed_in = sso.sign_in(browser, username, password, app=APP)
    return browser, f"/apps/{APP}/launch", _saml_response(launch_from_login(sso, browser, signed_in))


def _saml_response(page: requests.Response) -> str:
    match = _SAML_RESPONSE.search(page.text)
    assert match, page.text[:800]
    return html.unescape(match.group(1))


def _principal_tags(saml_response: str) -> dict[str, list[str]]:
    root = parse_xml(base64.b64decode(saml_response))
    tags: dict[str, list[str]] = {}
    for attribute in root.iterfind(".//saml:Attribute", NAMESPACES):
        name = attribute.get("Name", "")
        if name.startswith(ATTR_PRINCIPAL_TAG_PREFIX):
            tags[name.removeprefix(ATTR_PRINCIPAL_TAG_PREFIX)] = [
                value.text or "" for value in attribute.iterfind("saml:AttributeValue", NAMESPACES)
            ]
    return tags


def _emulator(sso: Sso) -> AwsSignInEmulator:
    """The local stand-in for the AWS console's SAML endpoint, trusting this IdP's metadata."""

    def metadata() -> bytes:
        answer = requests.get(sso.url + "/saml/metadata", timeout=30)
        assert answer.status_code == 200, answer.text[:300]
        return answer.content

    app = apps.get_app(APP)
    return AwsSignInEmulator(boto3.client("iam"), boto3.client("sts"), sso.clock, metadata, str(app.acs_url))


def test_with_the_switch_on_the_assertion_carries_the_mapped_attributes_as_session_tags(
    sso: Sso, corp: Any, account: str
) -> None:
    corp(send_configured_attributes=True)

    _, _, saml_response = _launch(sso, "alice", DIRECTORY_PASSWORD)

    assert _principal_tags(saml_response) == {
        "username": ["alice"],
        "email": ["alice+aws@corp.example"],
        "displayName": ["Alice Example"],
    }
    status, page = _emulator(sso).handle({"SAMLResponse": saml_response})
    assert status == 200, page
    assert f"arn:aws:sts::{account}:assumed-role/Reader/alice" in page
    assert "<code>displayName</code>: Alice Example" in page  # AWS would tag the session with it


def test_with_the_switch_off_the_assertion_has_no_session_tags(sso: Sso, corp: Any) -> None:
    corp(send_configured_attributes=False)

    _, _, saml_response = _launch(sso, "alice", DIRECTORY_PASSWORD)

    assert _principal_tags(saml_response) == {}
    assert _emulator(sso).handle({"SAMLResponse": saml_response})[0] == 200


def test_a_local_user_gets_no_session_tags_even_when_a_directory_sends_them(sso: Sso, corp: Any) -> None:
    corp(send_configured_attributes=True)
    add_user("bob", sso.clock, email="bob@example.com")

    _, _, saml_response = _launch(sso, "bob", PASSWORD)

    assert _principal_tags(saml_response) == {}


def test_a_value_iam_refuses_is_left_out_and_the_launch_goes_on(sso: Sso, corp: Any) -> None:
    # IAM tag values allow letters, digits, spaces and _ . : / = + - @ only: not parentheses.
    corp(display_name="Alice (Ops) Example", send_configured_attributes=True)

    _, _, saml_response = _launch(sso, "alice", DIRECTORY_PASSWORD)

    tags = _principal_tags(saml_response)
    assert tags == {"username": ["alice"], "email": ["alice+aws@corp.example"]}
    assert _emulator(sso).handle({"SAMLResponse": saml_response})[0] == 200


def test_the_switch_is_read_at_most_once_per_30_seconds(
    sso: Sso, corp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(store, "_monotonic", lambda: now[0])
    corp(send_configured_attributes=True)
    browser, launch_path, first = _launch(sso, "alice", DIRECTORY_PASSWORD)
    assert "email" in _principal_tags(first)
    # Written as another container would: a save in this one forgets this container's copy.
    changed = replace(store.load("corp"), send_configured_attributes=False)
    Directory("corp").update(actions=[Directory.settings.set(changed.to_json())])

    # Within 30 s the container keeps what it read; after that it reads the switch again.
    now[0] += store.DIRECTORIES_CACHE_SECONDS - 1
    assert "email" in _principal_tags(_saml_response(sso.get(browser, launch_path)))
    now[0] += 2
    assert _principal_tags(_saml_response(sso.get(browser, launch_path))) == {}


def test_aws_refuses_session_tags_when_the_roles_trust_policy_lacks_tag_session(
    sso: Sso, corp: Any, account: str
) -> None:
    corp(send_configured_attributes=True)
    _, _, saml_response = _launch(sso, "alice", DIRECTORY_PASSWORD)
    app = apps.get_app(APP)
    policy = saml_trust_policy(apps.provider_arn(app), str(app.acs_url))
    policy["Statement"][0]["Action"] = ["sts:AssumeRoleWithSAML"]
    iam = boto3.client("iam")
    iam.meta.events.register(
        "before-sign.iam.*", lambda request, **_: request.headers.add_header("x-moto-account-id", account)
    )
    iam.create_role(RoleName="Reader", AssumeRolePolicyDocument=json.dumps(policy))

    status, page = _emulator(sso).handle({"SAMLResponse": saml_response})

    assert status == 403
    assert "Not authorized to perform sts:TagSession" in page
