"""What the infra tests read from a synthesised template (tests/infra/conftest.py makes the
syntheses): each service's function and the statements of its role, the API's routes, what
cdk-nag found and what it was told to accept, cfn-lint's findings; and deployment settings
from a CDK context without an app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.settings import DeploymentSettings
from tests.infra.conftest import Synthesis

# The services the product deploys, one function each (idp_core.routing names them).
SERVICES = ("sso", "otp", "adaptive", "provisioning")


# CDK's Function adds DependsOn on its role (so the role's policy exists before the first
# invocation) although the Role GetAtt already orders the two; the duplicate is harmless.
IGNORED_CFN_LINT_RULES = {"W3005"}


def function_of(synthesis: Synthesis, service: str) -> tuple[str, dict[str, Any]]:
    """The function whose Powertools service name is ``service`` (one of ``SERVICES``)."""
    functions = synthesis.resources("AWS::Lambda::Function")
    assert len(functions) == len(SERVICES), f"expected the {SERVICES} functions, found {sorted(functions)}"
    (found,) = [
        (logical_id, function)
        for logical_id, function in functions.items()
        if function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == service
    ]
    return found


def role_statements(synthesis: Synthesis, function: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = logical_id_of(function["Properties"]["Role"])
    return [
        statement
        for policy in synthesis.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def logical_id_of(ref: Any) -> str:
    if "Ref" in ref:
        return ref["Ref"]
    return ref["Fn::GetAtt"][0]


def api_routes(synthesis: Synthesis) -> dict[str, str]:
    """Each API path (``/`` and resources such as ``/me/mfa/{proxy+}``) -> the function it calls."""
    resources = synthesis.resources("AWS::ApiGateway::Resource")
    (rest_api_id,) = synthesis.resources("AWS::ApiGateway::RestApi")

    def path(ref: dict[str, Any]) -> str:
        if "Fn::GetAtt" in ref and ref["Fn::GetAtt"][0] == rest_api_id:
            return ""
        properties = resources[logical_id_of(ref)]["Properties"]
        return f"{path(properties['ParentId'])}/{properties['PathPart']}"

    functions = {
        logical_id: function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for logical_id, function in synthesis.resources("AWS::Lambda::Function").items()
    }
    routes = {}
    for method in synthesis.resources("AWS::ApiGateway::Method").values():
        properties = method["Properties"]
        assert properties["HttpMethod"] == "ANY"
        assert properties["Integration"]["Type"] == "AWS_PROXY"
        uri = json.dumps(properties["Integration"]["Uri"])
        (service,) = [name for logical_id, name in functions.items() if logical_id in uri]
        routes[path(properties["ResourceId"]) or "/"] = service
    return routes


def nag_violations(synthesis: Synthesis) -> list[str]:
    findings = []
    for plugin in synthesis.validation_report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                findings.append(
                    f"{violation['severity']} {violation['ruleName']} at {construct['constructPath']}: "
                    f"{violation['description']}"
                )
    return findings


def acknowledged_rules(synthesis: Synthesis) -> list[dict[str, str]]:
    return [
        rule
        for resource in synthesis.template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]


def cfn_lint(template_path: Path) -> list[str]:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(template_path, ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return [str(match) for match in matches if match.rule.id not in IGNORED_CFN_LINT_RULES]


class FakeNode:
    """Stands in for ``constructs.Node``: only context lookups are needed."""

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def try_get_context(self, key: str) -> Any:
        return self._context.get(key)


def settings_from(**context: Any) -> DeploymentSettings:
    return DeploymentSettings.from_context(FakeNode(context))  # type: ignore[arg-type]
