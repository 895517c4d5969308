"""``idp aws member-template`` (issue 16 point 2): the CloudFormation template a member account
(or an organization's StackSet) deploys is cfn-lint clean, deploys into the embedded AWS with
moto's CloudFormation, and a user signs in through the local stack to a role of that second
account: the AWS sign-in emulator verifies the assertion against the provider the template
made and calls STS AssumeRoleWithSAML in that account."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from idp_core import accounts, apps
from idp_core.models import App
from tests.helpers.adaptive import launch_from_login
from tests.helpers.aws_accounts import (
    client_in,
    emulator_for,
    point_cli_at,
    published_metadata,
    saml_response_of,
)
from tests.helpers.cli import idp, ok
from tests.helpers.sso import PASSWORD, Sso

pytestmark = pytest.mark.sso_setup("password_only")

APP = "org"
PROVIDER = "corp-idp"
TRUSTED_ACTIONS = ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"]


@pytest.fixture
def org(sso: Sso, home: str, member: str, aws_endpoint: str, tmp_path: Path, monkeypatch: Any) -> App:
    """An app with Admin at home and Reader and team/Ops in the member account; `idp --local`
    acts on this sso."""
    for group in ("admins", "readers"):
        accounts.create_group(group)
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD, groups=["admins", "readers"]))
    monkeypatch.setenv("IDP_STATE_DIR", str(tmp_path / "state"))
    point_cli_at(sso, aws_endpoint, tmp_path / "state")
    return apps.create_aws_app(
        APP,
        apps.AwsAppChoices(
            account_id=home,
            roles=[("Admin", "admins"), (f"{member}:Reader", "readers"), (f"{member}:/team/Ops", "admins")],
            provider_name=PROVIDER,
            session_duration=7200,
        ),
        mfa_required=False,
    )


def _cfn_lint(template: dict[str, Any], path: Path) -> list[str]:
    path.write_text(json.dumps(template))
    return [str(match) for match in lint_file(path, ManualArgs(regions=["us-east-1", "eu-west-1"]))]


def _deploy(account: str, template: dict[str, Any]) -> dict[str, Any]:
    cloudformation = client_in("cloudformation", account)
    cloudformation.create_stack(
        StackName="idp-member", TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_NAMED_IAM"]
    )
    [stack] = cloudformation.describe_stacks(StackName="idp-member")["Stacks"]
    return dict(stack)


def _role_names(account: str) -> set[str]:
    return {role["RoleName"] for role in client_in("iam", account).list_roles()["Roles"]}


def test_the_template_is_cfn_lint_clean_and_makes_the_provider_and_roles_of_each_account(
    capsys: pytest.CaptureFixture[str], sso: Sso, org: App, home: str, member: str, tmp_path: Path
) -> None:
    template = json.loads(ok(capsys, "aws", "member-template", "--app", APP))

    assert _cfn_lint(template, tmp_path / "member.json") == []
    [provider] = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::SAMLProvider"]
    assert provider["Properties"]["Name"] == PROVIDER
    assert provider["Properties"]["SamlMetadataDocument"] == published_metadata(sso).decode("utf-8")
    roles = {
        (r["Condition"], r["Properties"]["Path"], r["Properties"]["RoleName"]): r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
    }
    assert set(roles) == {
        (f"InAccount{home}", "/", "Admin"),
        (f"InAccount{member}", "/", "Reader"),
        (f"InAccount{member}", "/team/", "Ops"),
    }
    reader = roles[(f"InAccount{member}", "/", "Reader")]
    assert reader["MaxSessionDuration"] == 7200
    [statement] = reader["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == TRUSTED_ACTIONS
    assert statement["Condition"] == {"StringEquals": {"SAML:aud": apps.AWS_SIGNIN_ACS_URL}}
    assert statement["Principal"]["Federated"] == {
        "Ref": next(iter(template["Outputs"].values()))["Value"]["Ref"]
    }


def test_deployed_in_a_second_account_a_user_signs_in_to_its_role_through_the_local_stack(
    capsys: pytest.CaptureFixture[str], sso: Sso, org: App, home: str, member: str
) -> None:
    template = json.loads(ok(capsys, "aws", "member-template"))

    stack = _deploy(member, template)

    assert stack["StackStatus"] == "CREATE_COMPLETE"
    iam = client_in("iam", member)
    provider_arn = f"arn:aws:iam::{member}:saml-provider/{PROVIDER}"
    assert [output["OutputValue"] for output in stack["Outputs"]] == [provider_arn]
    held = iam.get_saml_provider(SAMLProviderArn=provider_arn)["SAMLMetadataDocument"]
    assert held == published_metadata(sso).decode("utf-8")
    assert {"Reader", "Ops"} <= _role_names(member) and "Admin" not in _role_names(member)
    trust = iam.get_role(RoleName="Reader")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Federated": provider_arn}

    browser = sso.browser()
    response = saml_response_of(launch_from_login(sso, browser, sso.sign_in(browser, "alice", app=APP)))
    emulator = emulator_for(sso, str(org.acs_url), home_account=home)
    status, chooser = emulator.handle({"SAMLResponse": response})
    assert status == 200 and f"Account: {member}" in chooser
    status, page = emulator.handle({"SAMLResponse": response, "roleIndex": "1"})

    assert status == 200, page
    assert f"arn:aws:sts::{member}:assumed-role/Reader/alice" in page


def test_deployed_in_the_apps_own_account_it_makes_only_that_accounts_roles(
    capsys: pytest.CaptureFixture[str], org: App, home: str, member: str
) -> None:
    template = json.loads(ok(capsys, "aws", "member-template", "--app", APP))

    assert _deploy(home, template)["StackStatus"] == "CREATE_COMPLETE"

    assert "Admin" in _role_names(home) and not {"Reader", "Ops"} & _role_names(home)


def test_org_template_is_a_stack_set_of_the_member_template_and_cfn_lint_clean(
    capsys: pytest.CaptureFixture[str], org: App, tmp_path: Path
) -> None:
    member_template = json.loads(ok(capsys, "aws", "member-template", "--app", APP))
    template = json.loads(ok(capsys, "aws", "member-template", "--app", APP, "--org"))

    assert _cfn_lint(template, tmp_path / "org.json") == []
    [stack_set] = template["Resources"].values()
    assert stack_set["Type"] == "AWS::CloudFormation::StackSet"
    properties = stack_set["Properties"]
    assert properties["PermissionModel"] == "SERVICE_MANAGED" and properties["AutoDeployment"]["Enabled"]
    assert properties["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert json.loads(properties["TemplateBody"]) == member_template


def test_an_unknown_app_is_a_clear_exit_2(capsys: pytest.CaptureFixture[str], org: App) -> None:
    code, out, err = idp(capsys, "aws", "member-template", "--app", "nope")
    assert (code, out) == (2, "") and "There is no app 'nope'" in err


def test_a_role_two_apps_need_trusting_different_providers_is_a_clear_exit_2(
    capsys: pytest.CaptureFixture[str], org: App, member: str
) -> None:
    # One IAM role has one trust policy: the template could not serve both apps' sign-ins.
    apps.create_aws_app(
        "other",
        apps.AwsAppChoices(account_id=member, roles=[("Reader", "readers")], provider_name="other-idp"),
        mfa_required=False,
    )

    code, out, err = idp(capsys, "aws", "member-template")

    assert (code, out) == (2, "")
    assert f"The role Reader of account {member} is mapped by the apps org and other" in err
    # Each app alone is fine.
    assert json.loads(ok(capsys, "aws", "member-template", "--app", "other"))["Resources"]
