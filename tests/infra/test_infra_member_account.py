"""infra/constructs/member_account.py builds, for CDK users, exactly the resources and
conditions ``idp aws member-template`` prints, and passes cdk-nag and cfn-lint."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from idp_core.member_accounts import MemberAccounts, MemberProvider, MemberRole, member_template
from idp_core.saml.metadata import build_idp_metadata
from tests.infra.template import cfn_lint

# IAM takes a metadata document of 1,000 characters or more; the certificate's bytes do not matter here.
METADATA = build_idp_metadata(
    entity_id="https://idp.example.com/saml/metadata",
    base_url="https://idp.example.com",
    certificate_der_b64=base64.b64encode(bytes(900)).decode("ascii"),
).decode("utf-8")
ACS = "https://signin.aws.amazon.com/saml"
# Twelve accounts: the provider's condition nests Fn::Or beyond its ten-condition limit.
ACCOUNTS = tuple(f"{number:012d}" for number in range(111111111111, 111111111111 + 12))


def _role(account: str, name: str, *, path: str = "/", provider: str = "corp-idp") -> MemberRole:
    return MemberRole(
        account_id=account,
        name=name,
        path=path,
        provider_name=provider,
        audience=ACS,
        max_session_duration=7200,
        apps=("org",),
    )


MEMBERS = MemberAccounts(
    providers=(MemberProvider("corp-idp", ACCOUNTS), MemberProvider("legacy-idp", (ACCOUNTS[0],))),
    roles=(
        *(_role(account, "Reader") for account in ACCOUNTS),
        _role(ACCOUNTS[1], "Ops", path="/team/"),
        _role(ACCOUNTS[0], "Old", provider="legacy-idp"),
    ),
)


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    from aws_cdk import App, Stack, Validations
    from cdk_nag import AwsSolutionsChecks

    from infra.constructs.member_account import MemberAccount

    outdir = tmp_path_factory.mktemp("cdk-member")
    app = App(outdir=str(outdir))
    stack = Stack(app, "IdpMemberAccount")
    MemberAccount(stack, "Idp", metadata_xml=METADATA, members=MEMBERS)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    app.synth()  # cdk-nag fails the synthesis on any finding
    path = outdir / "IdpMemberAccount.template.json"
    return json.loads(path.read_text()), path


def test_the_construct_makes_what_the_printed_template_makes(
    synthesised: tuple[dict[str, Any], Path],
) -> None:
    template, _ = synthesised
    printed = member_template(METADATA, MEMBERS)

    assert template["Conditions"] == printed["Conditions"]
    resources = {
        logical_id: {key: value for key, value in resource.items() if key != "Metadata"}
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] != "AWS::CDK::Metadata"
    }
    assert resources == printed["Resources"]
    provider_condition = printed["Conditions"][
        printed["Resources"][_provider_id(printed, "corp-idp")]["Condition"]
    ]
    assert len(provider_condition["Fn::Or"]) == 2  # twelve accounts: ten, then two


def _provider_id(template: dict[str, Any], name: str) -> str:
    (found,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::SAMLProvider" and resource["Properties"]["Name"] == name
    ]
    return found


def test_the_roles_trust_their_own_provider_with_the_saml_audience(
    synthesised: tuple[dict[str, Any], Path],
) -> None:
    template, _ = synthesised
    [old] = [r for r in template["Resources"].values() if r["Properties"].get("RoleName") == "Old"]
    [statement] = old["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"]["Federated"] == {"Ref": _provider_id(template, "legacy-idp")}
    assert statement["Action"] == ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"]
    assert statement["Condition"] == {"StringEquals": {"SAML:aud": ACS}}
    assert old["Condition"] == f"InAccount{ACCOUNTS[0]}"


def test_the_construct_template_is_cfn_lint_clean(synthesised: tuple[dict[str, Any], Path]) -> None:
    _, path = synthesised
    assert cfn_lint(path) == []
