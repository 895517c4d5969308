"""Adaptive authentication in the template: the devices table, the adaptive function with a
role that reaches exactly its tables (apps read-only) and nothing else, and the sso
function's e-mail alerts, sent only from the configured sender."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.adaptive.settings import AdaptiveSettings
from idp_core.config import ENV_SIGNING_KEY_ID, Tables
from infra.constructs.function import READ_ACTIONS, TABLE_ACTIONS, WRITE_ACTIONS
from tests.infra.conftest import MESSAGING_CONTEXT, REPO_ROOT, Synthesis
from tests.infra.template import function_of, role_statements

# The tables the adaptive function changes, and the one it only reads.
ADAPTIVE_READ_WRITE_KEYS = {"UsersTable", "DevicesTable", "SessionsTable", "SettingsTable", "AuditTable"}
ADAPTIVE_READ_KEYS = {"AppsTable", "FactorsTable", "DirectoriesTable"}
MESSAGING_VARIABLES = {"EMAIL_SENDER", "SMS_SENDER_ID", "SMS_ORIGINATION_NUMBER", "SMS_ALLOWED_COUNTRIES"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _table_id(synthesis: Synthesis, output_key: str) -> str:
    return synthesis.template["Outputs"][output_key]["Value"]["Ref"]


def _statements(synthesis: Synthesis, service: str) -> dict[str, dict[str, Any]]:
    _, function = function_of(synthesis, service)
    statements = role_statements(synthesis, function)
    by_sid = {s.get("Sid", "logs"): s for s in statements}
    assert len(by_sid) == len(statements), "every statement but the log grant is expected to have a Sid"
    return by_sid


def _actions(statements: dict[str, dict[str, Any]]) -> set[str]:
    return {action for s in statements.values() for action in _as_list(s["Action"])}


def _table_ids(synthesis: Synthesis, resources: list[Any]) -> set[str]:
    return {r["Fn::GetAtt"][0] for r in resources if "Fn::GetAtt" in r}


def _variables(synthesis: Synthesis, service: str) -> dict[str, Any]:
    _, function = function_of(synthesis, service)
    return dict(function["Properties"]["Environment"]["Variables"])


def test_devices_table_is_keyed_by_user_and_device_hash_kept_and_recoverable(synthesis: Synthesis) -> None:
    table = synthesis.template["Resources"][_table_id(synthesis, "DevicesTable")]
    properties = table["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": "username", "KeyType": "HASH"},
        {"AttributeName": "key_hash", "KeyType": "RANGE"},
    ]
    assert sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "key_hash", "AttributeType": "S"},
        {"AttributeName": "username", "AttributeType": "S"},
    ]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert "TimeToLiveSpecification" not in properties
    assert table["DeletionPolicy"] == "RetainExceptOnCreate"


@pytest.mark.parametrize("service", ["sso", "adaptive"])
def test_every_function_that_reaches_devices_is_told_the_devices_table_name(
    synthesis: Synthesis, service: str
) -> None:
    variables = _variables(synthesis, service)
    assert variables[Tables.env_name("devices")] == synthesis.template["Outputs"]["DevicesTable"]["Value"]


def test_the_otp_function_is_not_told_the_devices_table_its_role_cannot_reach(synthesis: Synthesis) -> None:
    assert Tables.env_name("devices") not in _variables(synthesis, "otp")


def test_adaptive_role_changes_its_tables_and_only_reads_the_apps(synthesis: Synthesis) -> None:
    statements = _statements(synthesis, "adaptive")
    own = statements["ItemAccessOnOwnTables"]
    shared = statements["ItemReadsOnSharedTables"]
    assert sorted(_as_list(own["Action"])) == sorted(TABLE_ACTIONS)
    own_resources = _as_list(own["Resource"])
    assert _table_ids(synthesis, own_resources) == {
        _table_id(synthesis, key) for key in ADAPTIVE_READ_WRITE_KEYS
    }
    sessions_id = _table_id(synthesis, "SessionsTable")
    assert {"Fn::Join": ["", [{"Fn::GetAtt": [sessions_id, "Arn"]}, "/index/by_user"]]} in own_resources

    # Apps: reads only, so the function can never change an app's second-factor policy.
    # Factors and directories: reads only, by the admin pages' guard.
    assert sorted(_as_list(shared["Action"])) == sorted(READ_ACTIONS)
    assert not set(WRITE_ACTIONS) & set(_as_list(shared["Action"]))
    assert _table_ids(synthesis, _as_list(shared["Resource"])) == {
        _table_id(synthesis, key) for key in ADAPTIVE_READ_KEYS
    }
    for key in ADAPTIVE_READ_KEYS:
        assert _table_id(synthesis, key) not in json.dumps(own_resources), key

    everything = json.dumps([s["Resource"] for s in statements.values() if s is not statements["logs"]])
    for output_key in ("GroupsTable", "TokensTable", "TransactionsTable", "RateLimitsTable"):
        assert _table_id(synthesis, output_key) not in everything, output_key
    assert "*" not in everything


@pytest.mark.parametrize("which", ["default", "with messaging"])
def test_adaptive_role_has_no_kms_sns_or_ses_permission_and_no_managed_policy(
    synthesis: Synthesis, custom_domain_synthesis: Synthesis, which: str
) -> None:
    chosen = synthesis if which == "default" else custom_domain_synthesis
    statements = _statements(chosen, "adaptive")
    assert set(statements) == {"logs", "ItemAccessOnOwnTables", "ItemReadsOnSharedTables"}
    actions = _actions(statements)
    assert not [a for a in actions if a.split(":")[0] in {"kms", "sns", "ses"}]
    assert all(a.startswith(("dynamodb:", "logs:")) for a in actions), sorted(actions)
    assert not any(a.endswith("*") for a in actions)
    _, function = function_of(chosen, "adaptive")
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in chosen.template["Resources"][role_id]["Properties"]


def test_adaptive_function_environment_is_accepted_by_the_settings_loader(
    custom_domain_synthesis: Synthesis,
) -> None:
    synthesis = custom_domain_synthesis
    variables = _variables(synthesis, "adaptive")
    assert variables["POWERTOOLS_SERVICE_NAME"] == "adaptive"
    # It never signs, so it is not told the signing key.
    assert ENV_SIGNING_KEY_ID not in variables
    # It sends nothing, so it is not told who messages come from.
    assert not MESSAGING_VARIABLES & set(variables)
    # CloudFormation fills in the references at deploy time; any non-empty text stands in.
    resolved = {
        name: value if isinstance(value, str) else f"resolved-{name.lower()}"
        for name, value in variables.items()
    }
    assert AdaptiveSettings.from_env(resolved).tables.by_concern()["devices"] == "resolved-devices_table"


def test_adaptive_function_ships_the_functions_adaptive_directory(synthesis: Synthesis) -> None:
    function_id, _ = function_of(synthesis, "adaptive")
    asset = synthesis.asset_dir(function_id)

    def files(root: Path) -> set[str]:
        return {
            str(path.relative_to(root))
            for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        }

    assert "functions/adaptive/handler.py" in files(asset)
    # The package as it is in the repository, and nothing else: Lambda imports functions.adaptive.handler.
    assert files(asset) == {"functions/__init__.py"} | {
        f"functions/adaptive/{name}" for name in files(REPO_ROOT / "functions" / "adaptive")
    }


def test_sso_role_sends_alert_email_only_from_the_configured_sender(
    custom_domain_synthesis: Synthesis,
) -> None:
    statements = _statements(custom_domain_synthesis, "sso")
    ses_statements = [s for s in statements.values() if "ses:" in json.dumps(s["Action"])]
    assert ses_statements == [statements["SendEmailFromTheConfiguredSender"]]
    (statement,) = ses_statements
    assert statement["Effect"] == "Allow"
    assert sorted(_as_list(statement["Action"])) == ["ses:SendEmail", "ses:SendRawEmail"]
    identities = [resource["Fn::Join"][1][-1] for resource in _as_list(statement["Resource"])]
    assert identities == [":identity/sign-in@idp.example.com", ":identity/idp.example.com"]
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": "sign-in@idp.example.com"}}
    # The sso function sends alerts, never codes: still no SMS.
    assert not [a for a in _actions(statements) if a.startswith("sns:")]
    # One statement, shared with the otp function rather than copied.
    assert statement == _statements(custom_domain_synthesis, "otp")["SendEmailFromTheConfiguredSender"]


def test_sso_environment_names_the_sender_alerts_come_from(custom_domain_synthesis: Synthesis) -> None:
    variables = _variables(custom_domain_synthesis, "sso")
    assert variables["EMAIL_SENDER"] == MESSAGING_CONTEXT["emailSender"]


def test_without_an_email_sender_the_sso_role_cannot_send_email(synthesis: Synthesis) -> None:
    statements = _statements(synthesis, "sso")
    assert not [a for a in _actions(statements) if a.startswith(("ses:", "sns:"))]
    assert not MESSAGING_VARIABLES & set(_variables(synthesis, "sso"))
