"""Synthesise the CDK app in-process, once per session, the way `cdk synth` would.

jsii starts Node when aws_cdk is first imported, so the repository's Node 22
(node_modules/.bin, installed by `npm ci`) is put first on PATH before anything imports it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"

if str(NODE_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"

CUSTOM_DOMAIN_CONTEXT = {
    "customDomainName": "idp.example.com",
    "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0f3c3a49-8d51-4d4c-9a0e-6d6f1f0b7e2c",
    "hostedZoneId": "Z0123456789ABCDEFGHIJ",
    "hostedZoneName": "example.com",
}

# Messaging settings go with the custom-domain synthesis, so the default one shows a stack
# without them (no SES permission at all) and this one a fully configured sender.
MESSAGING_CONTEXT = {
    "smsSenderId": "ExampleIdP",
    "smsOriginationNumber": "+15555550123",
    "emailSender": "Sign-in <sign-in@idp.example.com>",
    "smsAllowedCountries": "US,GB,DE",
}


# The switches that are on by default, turned off (accounts that manage the API Gateway
# CloudWatch role centrally, deployments with their own firewall, the first step of an upgrade).
SWITCHES_OFF_CONTEXT = {"waf": "false", "apiGatewayCloudWatchRole": "false", "usersListIndex": "false"}
# The switches that are off by default, turned on, with a custom domain whose DNS the
# deployer manages elsewhere (no hosted zone).
SWITCHES_ON_CONTEXT = {
    "tracing": "true",
    "snapStart": "true",
    "alarmEmail": "idp-alarms@example.com",
    "smsMonthlySpendLimit": "50",
    "customDomainName": "sso.example.org",
    "certificateArn": CUSTOM_DOMAIN_CONTEXT["certificateArn"],
}


DEPLOY_ENVIRONMENT = {"CDK_DEFAULT_ACCOUNT": "111122223333", "CDK_DEFAULT_REGION": "eu-west-1"}


@dataclass(frozen=True)
class Synthesis:
    """What one synthesis produced; ``validation_error`` is set when cdk-nag failed it."""

    outdir: Path
    stack_name: str
    template: dict[str, Any]
    validation_report: dict[str, Any]
    validation_error: str | None

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack_name}.template.json"

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }

    def asset_dir(self, logical_id: str) -> Path:
        """The staged directory of a function's or layer's code asset."""
        properties = self.template["Resources"][logical_id]["Properties"]
        s3_key = (properties.get("Code") or properties["Content"])["S3Key"]
        asset_hash = s3_key.removesuffix(".zip")
        manifest = json.loads((self.outdir / f"{self.stack_name}.assets.json").read_text())
        return self.outdir / manifest["files"][asset_hash]["source"]["path"]


def _default_context() -> dict[str, Any]:
    return dict(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])


def synthesise(outdir: Path, extra_context: dict[str, Any] | None = None) -> Synthesis:
    if not (NODE_BIN / "node").exists():
        pytest.fail("node_modules/.bin/node is missing: run `npm ci` (or `make setup`) first")
    from infra.app import build_app

    context = _default_context() | (extra_context or {})
    app, stack = build_app(context, outdir=str(outdir))
    validation_error = None
    try:
        app.synth()
    except RuntimeError as exc:
        # cdk-nag fails synthesis after the templates are written; the report says why.
        if "ValidationFailed" not in str(exc):
            raise
        validation_error = str(exc)
    report_path = outdir / "validation-report.json"
    return Synthesis(
        outdir=outdir,
        stack_name=stack.stack_name,
        template=json.loads((outdir / f"{stack.stack_name}.template.json").read_text()),
        validation_report=json.loads(report_path.read_text()) if report_path.exists() else {},
        validation_error=validation_error,
    )


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return synthesise(tmp_path_factory.mktemp("cdk-out"))


@pytest.fixture(scope="session")
def custom_domain_synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return synthesise(tmp_path_factory.mktemp("cdk-out-domain"), CUSTOM_DOMAIN_CONTEXT | MESSAGING_CONTEXT)


@pytest.fixture(scope="session")
def switches_off_synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return synthesise(tmp_path_factory.mktemp("cdk-out-off"), SWITCHES_OFF_CONTEXT)


@pytest.fixture(scope="session")
def switches_on_synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return synthesise(tmp_path_factory.mktemp("cdk-out-on"), SWITCHES_ON_CONTEXT)


@pytest.fixture(scope="session")
def deploy_environment_synthesis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesis]:
    """As `cdk deploy` synthesises: the CLI sets the account and region of the credentials,
    so ARNs carry them literally instead of pseudo parameters."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DEPLOY_ENVIRONMENT.items():
            patch.setenv(name, value)
        yield synthesise(tmp_path_factory.mktemp("cdk-out-env"))
