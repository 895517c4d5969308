"""The provisioning function in the template: its own least-privilege role (its tables, the
data key only under the {directory} context, e-mail only from the configured sender), the
EventBridge rule whose tick runs the due imports, its API routes, and the optional placement
of the functions that reach LDAP servers in the directory's VPC subnets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.provisioning.settings import ProvisioningSettings
from idp_core.config import ENV_DATA_KEY_ID
from infra.constructs.function import TABLE_ACTIONS, WRITE_ACTIONS
from infra.constructs.network import NETWORK_INTERFACE_ACTIONS
from infra.settings import DeploymentSettings, DirectoryNetwork, InfraConfigurationError
from tests.infra.conftest import REPO_ROOT, Synthesis, synthesise
from tests.infra.template import api_routes, cfn_lint, function_of, nag_violations, role_statements

VPC_ID = "vpc-0123456789abcdef0"
SUBNET_IDS = ("subnet-0123456789abcdef0", "subnet-0fedcba9876543210")
SECURITY_GROUP_ID = "sg-0123456789abcdef0"
NETWORK_CONTEXT = {
    "directoryVpcId": VPC_ID,
    "directorySubnetIds": ",".join(SUBNET_IDS),
    "directorySecurityGroupIds": SECURITY_GROUP_ID,
}
PROVISIONING_TABLE_KEYS = {
    "DirectoriesTable",
    "DirectoryEntriesTable",
    "UsersTable",
    "GroupsTable",
    "SessionsTable",
    "AuditTable",
}
# Read only, by the admin pages' guard.
GUARD_READ_KEYS = {"FactorsTable", "SettingsTable"}
OTHER_TABLE_KEYS = {
    "AppsTable",
    "TokensTable",
    "TransactionsTable",
    "RateLimitsTable",
    "DevicesTable",
    "CredentialsTable",
}


@pytest.fixture(scope="module")
def network_synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return synthesise(tmp_path_factory.mktemp("cdk-out-network"), NETWORK_CONTEXT)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _table_id(synthesis: Synthesis, output_key: str) -> str:
    return str(synthesis.template["Outputs"][output_key]["Value"]["Ref"])


def _statements(synthesis: Synthesis, service: str = "provisioning") -> dict[str, dict[str, Any]]:
    _, function = function_of(synthesis, service)
    statements = role_statements(synthesis, function)
    by_sid = {s.get("Sid", "logs"): s for s in statements}
    assert len(by_sid) == len(statements), "every statement but the log grant is expected to have a Sid"
    return by_sid


def _actions(statements: dict[str, dict[str, Any]]) -> set[str]:
    return {action for s in statements.values() for action in _as_list(s["Action"])}


def _role(synthesis: Synthesis, service: str) -> dict[str, Any]:
    _, function = function_of(synthesis, service)
    return dict(synthesis.template["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]])


def test_provisioning_function_has_time_for_an_import_and_the_core_layer(synthesis: Synthesis) -> None:
    _, function = function_of(synthesis, "provisioning")
    properties = function["Properties"]
    assert (properties["Timeout"], properties["MemorySize"]) == (900, 512)
    assert properties["Handler"] == "functions.provisioning.handler.lambda_handler"
    (layer_id,) = synthesis.resources("AWS::Lambda::LayerVersion")
    assert properties["Layers"] == [{"Ref": layer_id}]
    assert "VpcConfig" not in properties


def test_provisioning_role_reaches_its_tables_and_no_other(synthesis: Synthesis) -> None:
    statements = _statements(synthesis)
    own = statements["ItemAccessOnOwnTables"]
    assert sorted(_as_list(own["Action"])) == sorted(TABLE_ACTIONS)
    resources = _as_list(own["Resource"])
    assert {r["Fn::GetAtt"][0] for r in resources if "Fn::GetAtt" in r} == {
        _table_id(synthesis, key) for key in PROVISIONING_TABLE_KEYS
    }
    # Ending a disabled user's sessions queries them by user.
    sessions_id = _table_id(synthesis, "SessionsTable")
    assert {"Fn::Join": ["", [{"Fn::GetAtt": [sessions_id, "Arn"]}, "/index/by_user"]]} in resources
    reads = statements["ItemReadsOnSharedTables"]
    assert not set(WRITE_ACTIONS) & set(_as_list(reads["Action"]))
    assert {r["Fn::GetAtt"][0] for r in _as_list(reads["Resource"]) if "Fn::GetAtt" in r} == {
        _table_id(synthesis, key) for key in GUARD_READ_KEYS
    }
    everything = json.dumps([s["Resource"] for sid, s in statements.items() if sid != "logs"])
    for output_key in OTHER_TABLE_KEYS:
        assert _table_id(synthesis, output_key) not in everything, output_key
    assert '"*"' not in everything
    assert not [a for a in _actions(statements) if a.endswith("*")]
    assert "ManagedPolicyArns" not in _role(synthesis, "provisioning")["Properties"]


def test_provisioning_role_seals_and_unseals_bind_passwords_only_under_the_directory_context(
    synthesis: Synthesis,
) -> None:
    statements = _statements(synthesis)
    kms_statements = {
        sid: s for sid, s in statements.items() if any(a.startswith("kms:") for a in _as_list(s["Action"]))
    }
    assert set(kms_statements) == {"SealBindPasswordsWithTheDataKey"}
    sealing = kms_statements["SealBindPasswordsWithTheDataKey"]
    assert sorted(_as_list(sealing["Action"])) == ["kms:Decrypt", "kms:Encrypt"]
    data_key_id = _table_id(synthesis, "DataKeyId")
    assert _as_list(sealing["Resource"]) == [{"Fn::GetAtt": [data_key_id, "Arn"]}]
    assert sealing["Condition"] == {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["directory"]},
        "Null": {"kms:EncryptionContextKeys": "false"},
    }
    # It never signs, and never reads second-factor secrets.
    signing_key_id = _table_id(synthesis, "SigningKeyId")
    assert signing_key_id not in json.dumps(statements)


def test_provisioning_role_sends_welcome_email_only_from_the_configured_sender(
    synthesis: Synthesis, custom_domain_synthesis: Synthesis
) -> None:
    statements = _statements(custom_domain_synthesis)
    ses = [s for s in statements.values() if "ses:" in json.dumps(s["Action"])]
    assert ses == [statements["SendEmailFromTheConfiguredSender"]]
    assert ses[0]["Condition"] == {"StringEquals": {"ses:FromAddress": "sign-in@idp.example.com"}}
    # The same statement as the other functions that send e-mail, not a copy that may drift.
    assert ses[0] == _statements(custom_domain_synthesis, "otp")["SendEmailFromTheConfiguredSender"]
    assert not [a for a in _actions(statements) if a.startswith("sns:")]
    # Without a sender it cannot send at all.
    assert not [a for a in _actions(_statements(synthesis)) if a.startswith(("ses:", "sns:"))]


def test_provisioning_environment_is_accepted_by_the_settings_loader_with_the_data_key(
    custom_domain_synthesis: Synthesis,
) -> None:
    _, function = function_of(custom_domain_synthesis, "provisioning")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "provisioning"
    assert variables[ENV_DATA_KEY_ID] == custom_domain_synthesis.template["Outputs"]["DataKeyId"]["Value"]
    resolved = {
        name: value if isinstance(value, str) else f"resolved-{name.lower()}"
        for name, value in variables.items()
    }
    settings = ProvisioningSettings.from_env(resolved)
    assert settings.data_key_id == "resolved-data_key_id"
    assert settings.messaging.email_address == "sign-in@idp.example.com"


def test_one_rule_ticks_every_five_minutes_into_the_provisioning_function(synthesis: Synthesis) -> None:
    function_id, _ = function_of(synthesis, "provisioning")
    ((rule_id, rule),) = synthesis.resources("AWS::Events::Rule").items()
    properties = rule["Properties"]
    assert properties["ScheduleExpression"] == "rate(5 minutes)"
    assert properties["State"] == "ENABLED"
    # The default target input: EventBridge delivers its "Scheduled Event" as it is.
    (target,) = properties["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert not {"Input", "InputPath", "InputTransformer"} & set(target)
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0}
    # EventBridge may invoke the function, for this rule only.
    permissions = [
        p["Properties"]
        for p in synthesis.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        }
    ]
    # A failed tick is not retried on top of the next one.
    (invoke_config,) = synthesis.resources("AWS::Lambda::EventInvokeConfig").values()
    assert invoke_config["Properties"]["FunctionName"] == {"Ref": function_id}
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 0


def test_the_api_sends_the_directory_console_to_the_provisioning_function(synthesis: Synthesis) -> None:
    routes = api_routes(synthesis)
    assert routes["/admin/directories"] == "provisioning"
    assert routes["/admin/directories/{proxy+}"] == "provisioning"
    assert [path for path, service in routes.items() if service == "provisioning"] == [
        "/admin/directories",
        "/admin/directories/{proxy+}",
    ]
    assert routes["/admin/{proxy+}"] == "sso"


def test_provisioning_function_ships_the_functions_provisioning_directory(synthesis: Synthesis) -> None:
    function_id, _ = function_of(synthesis, "provisioning")
    asset = synthesis.asset_dir(function_id)

    def files(root: Path) -> set[str]:
        return {
            str(path.relative_to(root))
            for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        }

    package = files(asset / "functions" / "provisioning")
    assert {"handler.py", "scheduled.py", "directory_admin_routes.py"} <= package
    # The package as it is in the repository, and nothing else: Lambda imports functions.provisioning.handler.
    assert files(asset) == {"functions/__init__.py"} | {
        f"functions/provisioning/{name}" for name in files(REPO_ROOT / "functions" / "provisioning")
    }


# ---------------------------------------------------------------- VPC placement


def test_with_a_directory_network_the_provisioning_and_sso_functions_run_in_its_subnets(
    network_synthesis: Synthesis,
) -> None:
    expected = {"SecurityGroupIds": [SECURITY_GROUP_ID], "SubnetIds": list(SUBNET_IDS)}
    for service in ("provisioning", "sso"):
        _, function = function_of(network_synthesis, service)
        assert function["Properties"]["VpcConfig"] == expected, service
        attach = _statements(network_synthesis, service)["AttachToTheDirectorySubnets"]
        assert sorted(_as_list(attach["Action"])) == sorted(NETWORK_INTERFACE_ACTIONS)
        assert attach["Resource"] == "*"
        # Only the EC2 network interface actions; no managed policy with its logs on every group.
        assert "ManagedPolicyArns" not in _role(network_synthesis, service)["Properties"]
    for service in ("otp", "adaptive"):
        _, function = function_of(network_synthesis, service)
        assert "VpcConfig" not in function["Properties"], service
        assert "AttachToTheDirectorySubnets" not in _statements(network_synthesis, service)
    # The VPC, subnets and security group are the deployer's: nothing of them is created.
    for resource_type in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::SecurityGroup"):
        assert not network_synthesis.resources(resource_type), resource_type
    assert not network_synthesis.resources("AWS::EC2::SecurityGroupEgress")


def test_the_network_placement_keeps_cdk_nag_and_cfn_lint_clean(network_synthesis: Synthesis) -> None:
    assert nag_violations(network_synthesis) == []
    assert network_synthesis.validation_error is None
    assert cfn_lint(network_synthesis.template_path) == []


class FakeNode:
    """Stands in for ``constructs.Node``: only context lookups are needed."""

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def try_get_context(self, key: str) -> Any:
        return self._context.get(key)


def network_from(**context: Any) -> DirectoryNetwork | None:
    return DeploymentSettings.from_context(FakeNode(context)).directory_network  # type: ignore[arg-type]


def test_directory_network_context_as_text_or_as_a_cdk_json_list() -> None:
    assert network_from() is None
    assert network_from(directoryVpcId="", directorySubnetIds="", directorySecurityGroupIds="") is None
    expected = DirectoryNetwork(VPC_ID, SUBNET_IDS, (SECURITY_GROUP_ID,))
    assert network_from(**NETWORK_CONTEXT) == expected
    assert (
        network_from(
            directoryVpcId=VPC_ID,
            directorySubnetIds=[*SUBNET_IDS, SUBNET_IDS[0]],
            directorySecurityGroupIds=[f" {SECURITY_GROUP_ID} "],
        )
        == expected
    )


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"directorySubnetIds": SUBNET_IDS[0]}, "set directoryVpcId too"),
        ({"directorySecurityGroupIds": SECURITY_GROUP_ID}, "set directoryVpcId too"),
        (
            {"directoryVpcId": VPC_ID, "directorySecurityGroupIds": SECURITY_GROUP_ID},
            "needs directorySubnetIds",
        ),
        ({"directoryVpcId": VPC_ID, "directorySubnetIds": SUBNET_IDS[0]}, "needs directorySecurityGroupIds"),
        ({**NETWORK_CONTEXT, "directoryVpcId": "my-vpc"}, "directoryVpcId must be a VPC id"),
        ({**NETWORK_CONTEXT, "directorySubnetIds": "subnet-123"}, "directorySubnetIds must be ids such as"),
        (
            {**NETWORK_CONTEXT, "directorySecurityGroupIds": "default"},
            "directorySecurityGroupIds must be ids",
        ),
    ],
)
def test_bad_directory_network_context_stops_the_synth_with_the_reason(
    context: dict[str, Any], message: str
) -> None:
    with pytest.raises(InfraConfigurationError, match=message):
        network_from(**context)


def test_the_cdk_app_itself_refuses_a_vpc_without_subnets() -> None:
    from infra.app import build_app

    with pytest.raises(InfraConfigurationError, match="directoryVpcId needs directorySubnetIds"):
        build_app({"directoryVpcId": VPC_ID, "directorySecurityGroupIds": SECURITY_GROUP_ID})
