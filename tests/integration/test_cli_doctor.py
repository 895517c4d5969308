"""`idp --stack NAME doctor` against the embedded AWS: a stack deployed there through CloudFormation,
wired as the README says, then each problem planted one at a time.

The "deployed stack" is a CloudFormation stack in the embedded AWS with what doctor reads from a
real one: the outputs (tables, signing key, API URL), a function whose environment names the
e-mail sender, the REST API with its prod stage, and the AWS WAF web ACL associated with it.
Account-wide settings (SES production access, the SMS sandbox and spend limit, API Gateway's
CloudWatch role) are shared by the session's tests, so every test sets them up again.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization

from idp_cli.main import main
from idp_cli.stack import settings_from_outputs
from idp_core import accounts, apps
from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.mfa import policy
from idp_core.saml import signing_keys
from idp_core.saml.metadata import build_idp_metadata, entity_id_for
from idp_local.idp_metadata import idp_metadata_xml
from idp_local.moto_extensions import set_sms_sandbox
from tests.support.slapd import certificate_authority

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
AWS_SIGNIN = "https://signin.aws.amazon.com/saml"
SESSION_SECONDS = 7200
README = Path(__file__).resolve().parents[2] / "README.md"
README_PROVIDER_ARN = "arn:aws:iam::111122223333:saml-provider/serverless-idp"


@dataclass
class Deployed:
    name: str
    base_url: str
    provider_name: str
    provider_arn: str
    role_name: str
    sender: str
    api_id: str
    web_acl_arn: str | None
    metadata: str

    @property
    def stage_arn(self) -> str:
        return f"arn:aws:apigateway:{REGION}::/restapis/{self.api_id}/stages/prod"


def readme_trust_policy(provider_arn: str) -> dict[str, Any]:
    """The trust policy of README step 3 ("Create the roles"), for ``provider_arn``."""
    step = README.read_text(encoding="utf-8").split("**Create the roles**", 1)[1]
    document = step.split("```json", 1)[1].split("```", 1)[0]
    return dict(json.loads(document.replace(README_PROVIDER_ARN, provider_arn)))


def stack_template(
    tables: Tables, signing_key_id: str, sender: str, *, waf: bool, next_signing_key_id: str | None = None
) -> dict[str, Any]:
    """The parts of the CDK stack that doctor reads, as CloudFormation resources and outputs."""
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    function = {
        "Runtime": "python3.13",
        "Handler": "functions.otp.handler.lambda_handler",
        "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
        "Code": {"ZipFile": "def lambda_handler(event, context): pass"},
    }
    resources: dict[str, Any] = {
        "FunctionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]}},
        },
        # A function without messaging settings first: the sender is found in any function.
        "AdaptiveFunction": {"Type": "AWS::Lambda::Function", "Properties": function},
        "OtpFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {**function, "Environment": {"Variables": {"EMAIL_SENDER": sender}}},
        },
        "RestApi": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "serverless-idp"}},
        "RootMethod": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "RestApi"},
                "ResourceId": {"Fn::GetAtt": ["RestApi", "RootResourceId"]},
                "HttpMethod": "ANY",
                "AuthorizationType": "NONE",
                "Integration": {
                    "Type": "AWS_PROXY",
                    "IntegrationHttpMethod": "POST",
                    "Uri": {
                        "Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
                        "${OtpFunction.Arn}/invocations"
                    },
                },
            },
        },
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": ["RootMethod"],
            "Properties": {"RestApiId": {"Ref": "RestApi"}},
        },
        "Stage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {
                "RestApiId": {"Ref": "RestApi"},
                "DeploymentId": {"Ref": "Deployment"},
                "StageName": "prod",
            },
        },
    }
    if waf:
        resources["WebAcl"] = {
            "Type": "AWS::WAFv2::WebACL",
            "Properties": {
                "Name": f"idp-{secrets.token_hex(4)}",
                "Scope": "REGIONAL",
                "DefaultAction": {"Allow": {}},
                "VisibilityConfig": {
                    "SampledRequestsEnabled": True,
                    "CloudWatchMetricsEnabled": True,
                    "MetricName": "idp",
                },
                "Rules": [],
            },
        }
        resources["WebAclAssociation"] = {
            "Type": "AWS::WAFv2::WebACLAssociation",
            "DependsOn": ["Stage"],
            "Properties": {
                "WebACLArn": {"Fn::GetAtt": ["WebAcl", "Arn"]},
                "ResourceArn": {
                    "Fn::Sub": "arn:aws:apigateway:${AWS::Region}::/restapis/${RestApi}/stages/prod"
                },
            },
        }
    outputs: dict[str, Any] = {
        "ApiUrl": {"Value": {"Fn::Sub": "https://${RestApi}.execute-api.${AWS::Region}.amazonaws.com/prod/"}},
        "SigningKeyId": {"Value": signing_key_id},
        **({"NextSigningKeyId": {"Value": next_signing_key_id}} if next_signing_key_id else {}),
        **{Tables.output_name(concern): {"Value": getattr(tables, concern)} for concern in Tables.concerns()},
    }
    return {"Resources": resources, "Outputs": outputs}


def deploy(tables: Tables, kms: Any, *, waf: bool = True, next_signing_key: bool = False) -> Deployed:
    """Deploy the stack and wire the account as README's "Deploying to your account" says."""
    suffix = secrets.token_hex(4)
    # A domain of its own, so verifying one test's domain verifies no other test's sender.
    name, sender = f"Idp{suffix}", f"Sign-in <idp@s{suffix}.example.com>"
    signing_key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    cloudformation = boto3.client("cloudformation")
    next_signing_key_id = (
        kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        if next_signing_key
        else None
    )
    template = stack_template(
        tables, signing_key_id, sender, waf=waf, next_signing_key_id=next_signing_key_id
    )
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack["Outputs"]}
    settings = settings_from_outputs(name, outputs)
    # Step 2: `idp metadata` (which makes the certificate) into a new IAM SAML provider.
    metadata = idp_metadata_xml(settings, kms, FakeClock())
    iam = boto3.client("iam")
    provider_name = f"serverless-idp-{suffix}"
    provider_arn = iam.create_saml_provider(Name=provider_name, SAMLMetadataDocument=metadata)[
        "SAMLProviderArn"
    ]
    # Step 3: the role, with the README's trust policy and a session as long as the app's.
    role_name = f"Admin{suffix}"
    iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=json.dumps(readme_trust_policy(provider_arn)),
        MaxSessionDuration=SESSION_SECONDS,
    )
    # Step 4: the group and the AWS app that maps it to the role.
    accounts.create_group("cloud-admins")
    apps.create_aws_app(
        "aws-prod",
        apps.AwsAppChoices(
            account_id=ACCOUNT,
            roles=[(role_name, "cloud-admins")],
            provider_name=provider_name,
            session_duration=SESSION_SECONDS,
        ),
    )
    # "Leaving the SES sandbox" and "Leaving the SNS SMS sandbox".
    address = sender.split("<")[1].rstrip(">")
    boto3.client("ses").verify_email_identity(EmailAddress=address)
    boto3.client("sesv2").put_account_details(
        MailType="TRANSACTIONAL",
        WebsiteURL="https://example.com",
        UseCaseDescription="Sign-in codes",
        ProductionAccessEnabled=True,
    )
    set_sms_sandbox(ACCOUNT, REGION, in_sandbox=False)
    boto3.client("sns").set_sms_attributes(attributes={"MonthlySpendLimit": "200"})
    # The account's API Gateway CloudWatch role.
    logs_role = iam.create_role(
        RoleName=f"ApiGatewayLogs{suffix}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "apigateway.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    boto3.client("apigateway").update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": logs_role}]
    )
    api_id = next(
        resource["PhysicalResourceId"]
        for resource in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
        if resource["ResourceType"] == "AWS::ApiGateway::RestApi"
    )
    web_acl_arn = None
    if waf:
        web_acl = boto3.client("wafv2").get_web_acl_for_resource(
            ResourceArn=f"arn:aws:apigateway:{REGION}::/restapis/{api_id}/stages/prod"
        )
        web_acl_arn = web_acl["WebACL"]["ARN"]
    return Deployed(
        name=name,
        base_url=outputs["ApiUrl"],
        provider_name=provider_name,
        provider_arn=provider_arn,
        role_name=role_name,
        sender=sender,
        api_id=api_id,
        web_acl_arn=web_acl_arn,
        metadata=metadata,
    )


@pytest.fixture
def stack(tables: Tables, kms: Any) -> Deployed:
    return deploy(tables, kms)


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Exit status, findings (from --json) and the stderr of `idp ARGS doctor --json`."""
    code = main([*args, "doctor", "--json"], stdin=io.StringIO(""))
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else [], captured.err


def not_ok(findings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(finding["check"], finding["status"]) for finding in findings if finding["status"] != "ok"]


def the_problem(findings: list[dict[str, Any]]) -> dict[str, Any]:
    [problem] = [finding for finding in findings if finding["status"] == "problem"]
    return problem


def iam() -> Any:
    return boto3.client("iam")


def set_trust(stack: Deployed, document: dict[str, Any]) -> None:
    iam().update_assume_role_policy(RoleName=stack.role_name, PolicyDocument=json.dumps(document))


# ---------------------------------------------------------------- all good


def test_a_stack_wired_as_the_readme_says_passes_every_check(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings, err = doctor(capsys, "--stack", stack.name)

    assert (code, err) == (0, "")
    assert not_ok(findings) == []
    assert {finding["check"] for finding in findings} == {
        "region",
        "saml-provider",
        "role",
        "ses",
        "sns-sms",
        "api-gateway-logs",
        "waf",
    }
    messages = " ".join(finding["message"] for finding in findings)
    assert f"The CLI uses {REGION} (AWS_REGION), the stack's region." in messages
    assert f"entity ID {entity_id_for(stack.base_url)}" in messages
    assert "USD 200" in messages and "behind the AWS WAF web ACL idp-" in messages


def test_the_text_report_says_all_is_well(stack: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--stack", stack.name, "doctor"])
    out = capsys.readouterr().out

    assert code == 0
    assert out.startswith(f"Checking the stack {stack.name} in {REGION}, account {ACCOUNT}.\n")
    assert out.rstrip().endswith("All is well: 9 checks passed.")
    assert "PROBLEM" not in out and "fix:" not in out


def test_the_text_report_prints_each_fix_under_its_finding_once(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    document = readme_trust_policy(stack.provider_arn)
    document["Statement"][0]["Action"] = "sts:AssumeRoleWithSAML"
    set_trust(stack, document)

    code = main(["--stack", stack.name, "doctor"])
    lines = capsys.readouterr().out.splitlines()

    assert code == 1
    tag_session = next(index for index, line in enumerate(lines) if "sts:TagSession" in line)
    assert lines[tag_session].startswith("PROBLEM  role ")
    assert (
        lines[tag_session + 1]
        .lstrip()
        .startswith(f"fix: aws --region {REGION} iam update-assume-role-policy")
    )
    assert (
        lines[tag_session + 2].lstrip()
        == "(this replaces the trust policy: keep any other statement you need in it)"
    )
    # The SetSourceIdentity problem has the same fix, which is not printed twice.
    assert (
        lines[tag_session + 3].startswith("PROBLEM  role ")
        and "sts:SetSourceIdentity" in lines[tag_session + 3]
    )
    assert lines[tag_session + 4].lstrip() == "fix: (as above)"
    assert lines[-1] == "2 problems, 0 warnings."


# ---------------------------------------------------------------- the IAM SAML provider


def test_a_missing_provider_is_a_problem_with_the_commands_that_create_it(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    iam().delete_saml_provider(SAMLProviderArn=stack.provider_arn)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["check"] == "saml-provider"
    assert f"The IAM SAML provider {stack.provider_name} (app aws-prod) does not exist" in problem["message"]
    assert problem["fix"] == (
        f"idp --stack {stack.name} metadata > idp-metadata.xml\n"
        f"aws --region {REGION} iam create-saml-provider --name {stack.provider_name} "
        "--saml-metadata-document file://idp-metadata.xml"
    )


def _other_certificate_der_b64() -> str:
    """A certificate of some other key (an old IdP key, or an intruder's)."""
    certificate = certificate_authority("another SAML signing key").certificate
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


def _replace_provider_metadata(stack: Deployed, document: str | bytes) -> None:
    text = document.decode("utf-8") if isinstance(document, bytes) else document
    iam().update_saml_provider(SAMLProviderArn=stack.provider_arn, SAMLMetadataDocument=text)


def test_a_provider_with_an_old_certificate_is_a_problem(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    old = build_idp_metadata(
        entity_id=entity_id_for(stack.base_url),
        base_url=stack.base_url,
        certificate_der_b64=_other_certificate_der_b64(),
    )
    _replace_provider_metadata(stack, old)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["check"] == "saml-provider"
    assert "not the IdP's current one" in problem["message"]
    assert "AWS refuses the IdP's signatures" in problem["message"]
    assert problem["fix"].endswith(
        f"iam update-saml-provider --saml-provider-arn {stack.provider_arn} --saml-metadata-document "
        "file://idp-metadata.xml"
    )


def test_during_a_key_rotation_a_provider_without_the_next_certificate_is_a_problem(
    tables: Tables, kms: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = deploy(tables, kms, next_signing_key=True)
    stacks = boto3.client("cloudformation").describe_stacks(StackName=stack.name)["Stacks"]
    settings = settings_from_outputs(
        stack.name, {o["OutputKey"]: o["OutputValue"] for o in stacks[0]["Outputs"]}
    )
    # `idp signing-key rotate start`, and the metadata it publishes then.
    signing_keys.start_rotation(kms, settings.signing_key_ids, context=None, clock=FakeClock())
    both = idp_metadata_xml(settings, kms, FakeClock())

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["check"] == "saml-provider"
    assert "does not hold the IdP's next signing certificate" in problem["message"]
    assert "idp signing-key rotate finish` waits" in problem["message"]
    assert problem["fix"].endswith("file://idp-metadata.xml")

    _replace_provider_metadata(stack, both)
    code, findings, _ = doctor(capsys, "--stack", stack.name)
    assert (code, not_ok(findings)) == (0, [])

    # Finished: the provider still holds the retired key's certificate, which is worth removing.
    signing_keys.finish_rotation(
        settings.signing_key_ids, lacking=[], force=False, context=None, clock=FakeClock()
    )
    code, findings, _ = doctor(capsys, "--stack", stack.name)
    assert (code, not_ok(findings)) == (0, [("saml-provider", "warning")])
    (warning,) = [finding for finding in findings if finding["status"] == "warning"]
    assert "of the signing key the last rotation retired" in warning["message"]


def test_a_provider_with_another_entity_id_is_a_problem(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # As after a move to a custom domain: the certificate is right, the entity ID is the old URL's.
    current = stack.metadata.replace(
        entity_id_for(stack.base_url), "https://idp.old.example.com/saml/metadata"
    )
    _replace_provider_metadata(stack, current)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["check"] == "saml-provider"
    assert problem["message"] == (
        f"The IAM SAML provider {stack.provider_name} (app aws-prod) holds the entity ID "
        f"https://idp.old.example.com/saml/metadata, but the IdP is now {entity_id_for(stack.base_url)} (its "
        "URL changed): AWS refuses its assertions."
    )


def test_attack_a_provider_that_also_trusts_a_foreign_certificate_is_a_problem(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Whoever added a second certificate to the provider can sign assertions AWS accepts.
    foreign = _other_certificate_der_b64()
    marker = "</ds:X509Certificate>"
    doubled = stack.metadata.replace(
        marker, f"{marker}</ds:X509Data><ds:X509Data><ds:X509Certificate>{foreign}{marker}", 1
    )
    _replace_provider_metadata(stack, doubled)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert "also" in problem["message"] and "which the IdP does not use" in problem["message"]


def test_attack_provider_metadata_with_an_entity_is_refused_unread(
    stack: Deployed, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # An XXE payload stored in IAM must not make doctor read a local file.
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    hostile = (
        f'<?xml version="1.0"?><!DOCTYPE md [<!ENTITY leak SYSTEM "file://{secret}">]>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&leak;">'
        f"<md:Extensions>{'x' * 1000}</md:Extensions></md:EntityDescriptor>"
    )
    _replace_provider_metadata(stack, hostile)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert "holds metadata that cannot be read" in problem["message"]
    assert "TOP-SECRET-CONTENT" not in json.dumps(findings)


# ---------------------------------------------------------------- roles


def test_a_missing_role_is_a_problem_with_the_trust_policy_to_create_it(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    iam().delete_role(RoleName=stack.role_name)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["message"] == (
        f"The role {stack.role_name} (app aws-prod) does not exist: AWS refuses the sign-in of everyone "
        "mapped to it."
    )
    policy_json = problem["fix"].split("--assume-role-policy-document '")[1].split("'")[0]
    assert json.loads(policy_json) == readme_trust_policy(stack.provider_arn)
    assert f"--max-session-duration {SESSION_SECONDS}" in problem["fix"]


def _another_provider(statement: dict[str, Any]) -> None:
    statement["Principal"] = {"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/another-idp"}


def _no_audience(statement: dict[str, Any]) -> None:
    del statement["Condition"]


def _another_endpoint(statement: dict[str, Any]) -> None:
    statement["Condition"] = {"StringEquals": {"SAML:aud": "https://eu-west-1.signin.aws.amazon.com/saml"}}


def _no_tag_session(statement: dict[str, Any]) -> None:
    statement["Action"] = ["sts:AssumeRoleWithSAML", "sts:SetSourceIdentity"]


def _no_source_identity(statement: dict[str, Any]) -> None:
    statement["Action"] = ["sts:AssumeRoleWithSAML", "sts:TagSession"]


@pytest.mark.parametrize(
    ("plant", "status", "phrase"),
    [
        (
            _another_provider,
            "problem",
            f"does not trust the IAM SAML provider arn:aws:iam::{ACCOUNT}:saml-provider/",
        ),
        (_no_audience, "problem", "allows sts:AssumeRoleWithSAML without a SAML:aud condition"),
        (
            _another_endpoint,
            "problem",
            "requires SAML:aud https://eu-west-1.signin.aws.amazon.com/saml, but the app's assertions go "
            f"to {AWS_SIGNIN}: AWS refuses the sign-in.",
        ),
        (_no_tag_session, "problem", "does not allow sts:TagSession"),
        # The assertions carry a SourceIdentity, which AWS refuses without the permission.
        (_no_source_identity, "problem", "does not allow sts:SetSourceIdentity"),
    ],
    ids=[
        "another provider",
        "no SAML:aud",
        "another endpoint",
        "no sts:TagSession",
        "no sts:SetSourceIdentity",
    ],
)
def test_each_gap_in_a_roles_trust_policy_is_found(
    stack: Deployed, capsys: pytest.CaptureFixture[str], plant: Any, status: str, phrase: str
) -> None:
    document = readme_trust_policy(stack.provider_arn)
    plant(document["Statement"][0])
    set_trust(stack, document)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == (1 if status == "problem" else 0)
    [finding] = [finding for finding in findings if finding["status"] != "ok"]
    assert (finding["check"], finding["status"]) == ("role", status)
    assert finding["message"].startswith(f"The trust policy of role {stack.role_name} (app aws-prod) ")
    assert phrase in finding["message"]
    assert finding["fix"].startswith(
        f"aws --region {REGION} iam update-assume-role-policy --role-name {stack.role_name} "
        "--policy-document '"
    )


def test_attack_an_explicit_deny_is_not_reported_as_a_working_trust(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    document = readme_trust_policy(stack.provider_arn)
    document["Statement"].append(
        {"Effect": "Deny", "Principal": {"Federated": stack.provider_arn}, "Action": "sts:AssumeRoleWithSAML"}
    )
    set_trust(stack, document)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    assert "denies sts:AssumeRoleWithSAML" in the_problem(findings)["message"]


def test_a_role_session_shorter_than_the_apps_is_a_problem(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    iam().update_role(RoleName=stack.role_name, MaxSessionDuration=3600)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["message"] == (
        f"The role {stack.role_name} (app aws-prod) allows sessions of at most 3600 s, but the app asks for "
        f"{SESSION_SECONDS} s: AWS refuses the sign-in."
    )
    assert problem["fix"].startswith(
        f"aws --region {REGION} iam update-role --role-name {stack.role_name} --max-session-duration "
        f"{SESSION_SECONDS}"
    )


def test_apps_of_other_accounts_are_named_as_unchecked(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    apps.create_aws_app(
        "aws-sandbox", apps.AwsAppChoices(account_id="210987654321", roles=[("Dev", "cloud-admins")])
    )

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 0
    [warning] = [finding for finding in findings if finding["status"] == "warning"]
    assert warning["message"].startswith("The app(s) aws-sandbox sign in to account 210987654321;")


def test_roles_of_another_account_are_left_to_it_and_this_accounts_roles_of_any_app_are_checked(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    member = "210987654321"
    apps.update_aws_app(
        "aws-prod",
        apps.AwsAppChoices(roles=[(stack.role_name, "cloud-admins"), (f"{member}:Auditor", "cloud-admins")]),
    )

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 0, findings  # Auditor is in the member account, not looked for here.
    [warning] = [finding for finding in findings if finding["status"] == "warning"]
    assert warning["message"].startswith(f"The app(s) aws-prod sign in to account {member};")

    # An app of the member account with a role in this one: the role and the app's provider in
    # this account are checked here.
    apps.create_aws_app(
        "aws-member", apps.AwsAppChoices(account_id=member, roles=[(f"{ACCOUNT}:Missing", "cloud-admins")])
    )
    code, findings, _ = doctor(capsys, "--stack", stack.name)
    assert code == 1
    problems = {
        finding["check"]: finding["message"] for finding in findings if finding["status"] == "problem"
    }
    assert set(problems) == {"saml-provider", "role"}
    assert problems["saml-provider"].startswith("The IAM SAML provider serverless-idp (app aws-member)")
    assert problems["role"].startswith("The role Missing (app aws-member) does not exist")


# ---------------------------------------------------------------- SES


def test_an_unverified_sender_is_a_problem(stack: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    address = stack.sender.split("<")[1].rstrip(">")
    boto3.client("ses").delete_identity(Identity=address)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["message"] == (
        f"The SES sender {address} is not verified in {REGION} (neither the address nor its domain is an SES "
        "identity): SES refuses to send codes and notices from it."
    )


def test_a_sender_of_a_verified_domain_is_verified(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    address = stack.sender.split("<")[1].rstrip(">")
    domain = address.split("@")[1]
    ses = boto3.client("ses")
    ses.delete_identity(Identity=address)
    ses.verify_domain_identity(Domain=domain)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 0
    assert f"The SES sender {address} is verified in {REGION} (identity {domain})." in [
        finding["message"] for finding in findings
    ]


def test_the_ses_sandbox_is_a_problem(stack: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("sesv2").put_account_details(
        MailType="TRANSACTIONAL", WebsiteURL="https://example.com", ProductionAccessEnabled=False
    )

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["check"] == "ses"
    assert problem["message"].startswith(
        f"SES in {REGION} is in its sandbox: codes and notices reach only verified addresses, at most 200 a "
        "day"
    )
    assert "put-account-details --production-access-enabled" in problem["fix"]


# ---------------------------------------------------------------- SNS SMS


def test_the_sms_sandbox_is_a_problem(stack: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    set_sms_sandbox(ACCOUNT, REGION, in_sandbox=True)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["check"] == "sns-sms"
    assert problem["message"].startswith(f"SNS SMS in {REGION} is in its sandbox")


def test_the_default_spend_limit_is_a_problem(stack: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("sns").set_sms_attributes(attributes={"MonthlySpendLimit": "1"})

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["message"].startswith("The monthly SMS spend limit is USD 1: SNS stops sending codes")
    assert problem["fix"].endswith("sns set-sms-attributes --attributes MonthlySpendLimit=AMOUNT")


def test_sms_settings_do_not_matter_when_sms_is_not_allowed(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    set_sms_sandbox(ACCOUNT, REGION, in_sandbox=True)
    policy.save_settings(dataclasses.replace(policy.load_settings(), allowed_methods=("totp", "backup")))

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 0
    assert [finding["message"] for finding in findings if finding["check"] == "sns-sms"] == [
        "SMS is not an allowed second factor (idp mfa settings), so SNS SMS does not matter."
    ]


# ---------------------------------------------------------------- API Gateway and WAF


def test_no_api_gateway_cloudwatch_role_is_a_problem(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("apigateway").update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": ""}]
    )

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["check"] == "api-gateway-logs"
    assert problem["message"].startswith(f"API Gateway in {REGION} has no CloudWatch Logs role")
    assert "apigateway update-account --patch-operations op=replace,path=/cloudwatchRoleArn" in problem["fix"]


def test_a_cloudwatch_role_that_is_gone_is_a_problem(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("apigateway").update_account(
        patchOperations=[
            {
                "op": "replace",
                "path": "/cloudwatchRoleArn",
                "value": f"arn:aws:iam::{ACCOUNT}:role/deleted-role",
            }
        ]
    )

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    assert the_problem(findings)["message"] == (
        f"API Gateway in {REGION} writes logs through arn:aws:iam::{ACCOUNT}:role/deleted-role, which does "
        "not exist."
    )


def test_a_web_acl_not_associated_with_the_stage_is_a_problem(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("wafv2").disassociate_web_acl(ResourceArn=stack.stage_arn)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["check"] == "waf"
    assert problem["message"].startswith(f"The stage prod of API {stack.api_id} is not associated")
    assert problem["fix"].startswith(
        f"aws --region {REGION} wafv2 associate-web-acl --web-acl-arn {stack.web_acl_arn} --resource-arn "
        f"{stack.stage_arn}"
    )


def test_a_stack_deployed_without_waf_gets_a_warning_not_a_problem(
    tables: Tables, kms: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = deploy(tables, kms, waf=False)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 0
    [warning] = [finding for finding in findings if finding["status"] != "ok"]
    assert warning["check"] == "waf" and warning["status"] == "warning"
    assert "-c waf=false" in warning["message"]
    assert warning["fix"] == "make deploy   (WAF is on by default; leave out -c waf=false)"


# ---------------------------------------------------------------- region


def test_a_cli_in_another_region_is_told_where_the_stack_is(
    stack: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # --region rewrites AWS_DEFAULT_REGION for boto3; monkeypatch puts it back after the test.
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)

    code, findings, err = doctor(capsys, "--region", "eu-west-1", "--stack", stack.name)

    assert (code, err) == (1, "")
    assert findings == [
        {
            "check": "region",
            "status": "problem",
            "message": f"The CLI uses eu-west-1 (--region), but the stack {stack.name} is in {REGION}.",
            "fix": f"idp --region {REGION} --stack {stack.name} doctor   (or set AWS_REGION={REGION})",
        }
    ]


def test_aws_region_is_the_region_the_cli_uses(
    stack: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # boto3 alone would follow AWS_DEFAULT_REGION (and find no stack in eu-central-1).
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 0
    assert findings[0]["message"] == f"The CLI uses {REGION} (AWS_REGION), the stack's region."


def test_no_region_at_all_is_a_problem(
    stack: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text("[default]\noutput = json\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    [problem] = findings
    assert problem["check"] == "region"
    assert problem["message"].startswith("The CLI has no AWS region (no region: neither --region, AWS_REGION")


def test_an_unknown_stack_is_bad_usage(aws_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings, err = doctor(capsys, "--stack", "NoSuchStack")

    assert (code, findings) == (2, [])
    assert err == (
        f"idp: There is no CloudFormation stack 'NoSuchStack' in {REGION} (AWS_REGION) nor in any other "
        "region these credentials can read.\n"
    )


def test_doctor_needs_a_stack(aws_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor"])

    assert code == 2
    assert "give --stack NAME for a deployed stack, or --local" in capsys.readouterr().err


def test_region_does_not_go_with_local(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--local", "--region", "eu-west-1", "doctor"])

    assert code == 2
    assert "--region chooses where --stack is" in capsys.readouterr().err


# ---------------------------------------------------------------- refused calls


def test_a_check_whose_call_fails_reports_it_and_the_others_still_run(
    stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # The REST API is gone behind CloudFormation's back: the stack still lists it, API Gateway does not.
    boto3.client("apigateway").delete_rest_api(restApiId=stack.api_id)

    code, findings, _ = doctor(capsys, "--stack", stack.name)

    assert code == 1
    problem = the_problem(findings)
    assert problem["check"] == "waf"
    assert problem["message"].startswith("Could not check: AWS refused GetStages (NotFoundException")
    assert {finding["check"] for finding in findings} >= {"saml-provider", "role", "ses", "sns-sms"}


@pytest.fixture(autouse=True)
def _forget_certificates() -> Iterator[None]:
    # Each test's signing key is new; the process cache of certificates must not grow stale.
    yield
    from idp_core.saml.certificate import forget_cached_identities

    forget_cached_identities()
