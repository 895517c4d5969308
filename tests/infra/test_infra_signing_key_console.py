"""The console's "Signing key" page (issue 16 point 3) reads what the sso function could read
before it: its role gains no IAM and no KMS permission for it, and the keys' outputs and
aliases are those the page names."""

from __future__ import annotations

from typing import Any

from idp_core.saml.key_overview import DEPLOYMENT_KEY_NAMES
from tests.infra.conftest import Synthesis
from tests.infra.template import function_of, logical_id_of, role_statements

# Everything the sso role may do in the default synthesis (no e-mail sender, no tracing), pinned:
# a page that needed more (iam:GetSAMLProvider for the providers, kms:DescribeKey or key
# administration for the keys) would show here first.
SSO_ACTIONS = frozenset(
    {
        *(
            f"dynamodb:{action}"
            for action in (
                "BatchGetItem",
                "BatchWriteItem",
                "ConditionCheckItem",
                "DeleteItem",
                "DescribeTable",
                "GetItem",
                "PutItem",
                "Query",
                "Scan",
                "UpdateItem",
            )
        ),
        "kms:Decrypt",
        "kms:GetPublicKey",
        "kms:Sign",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
)


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_the_sso_role_did_not_grow_for_the_signing_key_page(synthesis: Synthesis) -> None:
    _, function = function_of(synthesis, "sso")
    actions = {action for statement in role_statements(synthesis, function) for action in _actions(statement)}

    assert not [action for action in actions if action.startswith("iam:")]
    assert {action for action in actions if action.startswith("kms:")} == {
        "kms:Sign",
        "kms:GetPublicKey",
        "kms:Decrypt",
    }
    assert actions == SSO_ACTIONS


def test_the_signing_keys_outputs_and_aliases_are_those_the_page_names(synthesis: Synthesis) -> None:
    outputs = synthesis.template["Outputs"]
    aliases = {
        logical_id_of(alias["Properties"]["TargetKeyId"]): alias["Properties"]["AliasName"]
        for alias in synthesis.resources("AWS::KMS::Alias").values()
    }
    for output, alias_suffix in DEPLOYMENT_KEY_NAMES:
        key = logical_id_of(outputs[output]["Value"])
        assert aliases[key] == f"alias/{synthesis.stack_name}/{alias_suffix}"
