"""cdk-nag (AwsSolutions) and cfn-lint accept the synthesised templates."""

from __future__ import annotations

import pytest

from tests.infra.conftest import Synthesis
from tests.infra.template import acknowledged_rules, cfn_lint, nag_violations

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


@pytest.mark.parametrize("synthesis_name", SYNTHESES)
def test_cdk_nag_finds_nothing_unacknowledged(synthesis_name: str, request: pytest.FixtureRequest) -> None:
    synthesis: Synthesis = request.getfixturevalue(synthesis_name)
    assert nag_violations(synthesis) == []
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


@pytest.mark.parametrize("synthesis_name", SYNTHESES)
def test_cfn_lint_reports_no_errors_or_warnings(synthesis_name: str, request: pytest.FixtureRequest) -> None:
    synthesis: Synthesis = request.getfixturevalue(synthesis_name)
    assert cfn_lint(synthesis.template_path) == []
