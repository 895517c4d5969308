"""cdk-nag (AwsSolutions) and cfn-lint accept the synthesised templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.conftest import Synthesis

# Every synthesis of the session: the defaults, a custom domain with its hosted zone and the
# messaging settings, every default switch turned off, every optional one turned on, and the
# defaults with the account and region a deployment's credentials give.
SYNTHESES = (
    "synthesis",
    "custom_domain_synthesis",
    "switches_off_synthesis",
    "switches_on_synthesis",
    "deploy_environment_synthesis",
)

# CDK's Function adds DependsOn on its role (so the role's policy exists before the first
# invocation) although the Role GetAtt already orders the two; the duplicate is harmless.
IGNORED_CFN_LINT_RULES = {"W3005"}


def _nag_violations(synthesis: Synthesis) -> list[str]:
    findings = []
    for plugin in synthesis.validation_report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                findings.append(
                    f"{violation['severity']} {violation['ruleName']} at {construct['constructPath']}: "
                    f"{violation['description']}"
                )
    return findings


@pytest.mark.parametrize("synthesis_name", SYNTHESES)
def test_cdk_nag_finds_nothing_unacknowledged(synthesis_name: str, request: pytest.FixtureRequest) -> None:
    synthesis: Synthesis = request.getfixturevalue(synthesis_name)
    assert _nag_violations(synthesis) == []
    assert synthesis.validation_error is None


@pytest.mark.parametrize("synthesis_name", SYNTHESES)
def test_every_acknowledged_nag_rule_carries_a_written_reason(
    synthesis_name: str, request: pytest.FixtureRequest
) -> None:
    synthesis: Synthesis = request.getfixturevalue(synthesis_name)
    acknowledged = acknowledged_rules(synthesis)
    assert acknowledged, "the acknowledgements are expected in the template metadata"
    for rule in acknowledged:
        assert len(rule["reason"].split()) >= 8, f"{rule['id']} needs a reason a reviewer can judge"


def acknowledged_rules(synthesis: Synthesis) -> list[dict[str, str]]:
    return [
        rule
        for resource in synthesis.template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]


def _cfn_lint(template_path: Path) -> list[str]:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(template_path, ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return [str(match) for match in matches if match.rule.id not in IGNORED_CFN_LINT_RULES]


@pytest.mark.parametrize("synthesis_name", SYNTHESES)
def test_cfn_lint_reports_no_errors_or_warnings(synthesis_name: str, request: pytest.FixtureRequest) -> None:
    synthesis: Synthesis = request.getfixturevalue(synthesis_name)
    assert _cfn_lint(synthesis.template_path) == []
