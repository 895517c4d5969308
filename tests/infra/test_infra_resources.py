"""The synthesised template has the resources, keys and limits the product relies on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idp_core.config import (
    ENV_COOKIE_SECURE,
    ENV_NEXT_SIGNING_KEY_ID,
    ENV_PUBLIC_BASE_URL,
    ENV_SIGNING_KEY_ID,
    Tables,
)
from infra.settings import InfraConfigurationError
from tests.infra.conftest import CUSTOM_DOMAIN_CONTEXT, REPO_ROOT, Synthesis
from tests.infra.template import (
    SERVICES,
    api_routes,
    function_of,
    logical_id_of,
    role_statements,
    settings_from,
)

# Keys as idp_core.models declares them: (partition key, sort key or None).
EXPECTED_TABLE_KEYS = {
    "UsersTable": ("username", None),
    "GroupsTable": ("name", None),
    "AppsTable": ("name", None),
    "SessionsTable": ("id_hash", None),
    "SettingsTable": ("name", None),
    "AuditTable": ("day", "event_id"),
    "FactorsTable": ("username", "factor_id"),
    "TokensTable": ("serial", None),
    "TransactionsTable": ("id_hash", None),
    "RateLimitsTable": ("key", None),
    "DevicesTable": ("username", "key_hash"),
    "DirectoriesTable": ("name", None),
    "DirectoryEntriesTable": ("source", "entry_id"),
    "CredentialsTable": ("credential_id", None),
}
OUTPUT_KEYS = {"ApiUrl", "MetadataUrl", "SigningKeyId", "NextSigningKeyId", "DataKeyId", *EXPECTED_TABLE_KEYS}
SSO_TABLE_KEYS = {
    "UsersTable",
    "GroupsTable",
    "AppsTable",
    "SessionsTable",
    "SettingsTable",
    "AuditTable",
    "TransactionsTable",
    # The answer to the challenge spends a TOTP step, a backup code or an HOTP counter.
    "FactorsTable",
    "TokensTable",
    # Adaptive policies register and recognise devices at sign-in.
    "DevicesTable",
    # Failures of directory entries not registered here, and name collisions (S27, S29).
    "DirectoryEntriesTable",
    # A passkey sign-in finds its key's owner; deleting a user forgets their keys.
    "CredentialsTable",
    # Password reset links anyone may ask for are limited per user and per address.
    "RateLimitsTable",
}
POWERTOOLS_VARIABLES = (
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
)


def _template(synthesis: Synthesis) -> Any:
    from aws_cdk.assertions import Template

    return Template.from_json(synthesis.template)


def _table_for_output(synthesis: Synthesis, output_key: str) -> dict[str, Any]:
    logical_id = synthesis.template["Outputs"][output_key]["Value"]["Ref"]
    return synthesis.template["Resources"][logical_id]


def _sso_function(synthesis: Synthesis) -> tuple[str, dict[str, Any]]:
    return function_of(synthesis, "sso")


def test_each_concern_has_an_on_demand_retained_table_with_point_in_time_recovery(
    synthesis: Synthesis,
) -> None:
    template = _template(synthesis)
    template.resource_count_is("AWS::DynamoDB::Table", len(Tables.concerns()))
    for logical_id, table in synthesis.resources("AWS::DynamoDB::Table").items():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, (
            logical_id
        )
        assert properties["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert "TableName" not in properties, f"{logical_id}: table names are left to CloudFormation"
        assert table["DeletionPolicy"] == "RetainExceptOnCreate", logical_id
        assert table["UpdateReplacePolicy"] == "Retain", logical_id
        assert properties["DeletionProtectionEnabled"] is True, logical_id


@pytest.mark.parametrize(("output_key", "keys"), sorted(EXPECTED_TABLE_KEYS.items()))
def test_table_keys_match_the_pynamodb_models(
    synthesis: Synthesis, output_key: str, keys: tuple[str, str | None]
) -> None:
    properties = _table_for_output(synthesis, output_key)["Properties"]
    partition_key, sort_key = keys
    expected_schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        expected_schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    assert properties["KeySchema"] == expected_schema
    assert all(attribute["AttributeType"] == "S" for attribute in properties["AttributeDefinitions"])


def test_sessions_and_audit_expire_through_ttl_and_sessions_are_indexed_by_user(synthesis: Synthesis) -> None:
    for output_key in ("SessionsTable", "AuditTable", "TransactionsTable", "RateLimitsTable"):
        properties = _table_for_output(synthesis, output_key)["Properties"]
        assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    for output_key in (
        "UsersTable",
        "GroupsTable",
        "AppsTable",
        "SettingsTable",
        "FactorsTable",
        "TokensTable",
        # A device counts against the device limit until it is removed; it never expires.
        "DevicesTable",
        # A directory stays until an admin deletes it.
        "DirectoriesTable",
    ):
        assert "TimeToLiveSpecification" not in _table_for_output(synthesis, output_key)["Properties"]
    sessions = _table_for_output(synthesis, "SessionsTable")["Properties"]
    assert sessions["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by_user",
            "KeySchema": [{"AttributeName": "username", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]


def test_transactions_are_indexed_by_user_with_keys_only(synthesis: Synthesis) -> None:
    """The index a user deletion queries for the user's pending codes
    (idp_core.models.TransactionsByUser); keys only, so a code's tries and sends never write it."""
    from idp_core.models import Transaction

    transactions = _table_for_output(synthesis, "TransactionsTable")["Properties"]
    assert transactions["GlobalSecondaryIndexes"] == [
        {
            "IndexName": Transaction.by_user.Meta.index_name,
            "KeySchema": [{"AttributeName": "username", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]


def test_users_are_indexed_by_source_with_what_an_import_compares(synthesis: Synthesis) -> None:
    """The index a full directory import queries (idp_core.models.UsersBySource): the same keys
    and projected attributes as the model, and no password hash or counters copied into it."""
    from idp_core.models import User

    users = _table_for_output(synthesis, "UsersTable")["Properties"]
    [index] = [i for i in users["GlobalSecondaryIndexes"] if i["IndexName"] == "by_source"]
    model = User.by_source.Meta
    assert (index["IndexName"], index["KeySchema"]) == (
        model.index_name,
        [{"AttributeName": "source", "KeyType": "HASH"}, {"AttributeName": "username", "KeyType": "RANGE"}],
    )
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert sorted(index["Projection"]["NonKeyAttributes"]) == sorted(model.projection.non_key_attributes)
    assert "password_hash" not in index["Projection"]["NonKeyAttributes"]


def test_users_are_indexed_by_e_mail_with_keys_only(synthesis: Synthesis) -> None:
    """The index "Forgot password?" queries for an address (idp_core.models.UsersByEmail)."""
    from idp_core.models import User

    users = _table_for_output(synthesis, "UsersTable")["Properties"]
    indexes = sorted(i["IndexName"] for i in users["GlobalSecondaryIndexes"])
    assert indexes == ["by_email", "by_name", "by_source"]
    [index] = [i for i in users["GlobalSecondaryIndexes"] if i["IndexName"] == User.by_email.Meta.index_name]
    assert index["KeySchema"] == [{"AttributeName": "email", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_an_upgrade_adds_one_users_index_a_deploy(
    synthesis: Synthesis, switches_off_synthesis: Synthesis
) -> None:
    """CloudFormation adds one index to an existing table per update; this release adds two to
    the users table (by_email, by_name). ``usersListIndex=false`` is the upgrade's first step."""

    def users_indexes(of: Synthesis) -> set[str]:
        users = _table_for_output(of, "UsersTable")["Properties"]
        return {index["IndexName"] for index in users["GlobalSecondaryIndexes"]}

    earlier_release = {"by_source"}
    first_step, second_step = users_indexes(switches_off_synthesis), users_indexes(synthesis)
    assert len(first_step - earlier_release) == 1 and len(second_step - first_step) == 1
    assert first_step <= second_step
    assert settings_from(usersListIndex="false").operations.users_list_index is False
    with pytest.raises(InfraConfigurationError, match="usersListIndex must be true or false"):
        settings_from(usersListIndex="later")


def test_users_are_indexed_by_name_with_keys_only(synthesis: Synthesis) -> None:
    """The index the users list pages through (idp_core.models.UsersByName): every user under
    one partition value, sorted by username; keys only, so a sign-in's updates never write it."""
    from idp_core.models import User

    users = _table_for_output(synthesis, "UsersTable")["Properties"]
    [index] = [i for i in users["GlobalSecondaryIndexes"] if i["IndexName"] == User.by_name.Meta.index_name]
    assert index == {
        "IndexName": "by_name",
        "KeySchema": [
            {"AttributeName": "listing", "KeyType": "HASH"},
            {"AttributeName": "username", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    assert User.by_name.Meta.projection.projection_type == "KEYS_ONLY"


def test_signing_key_is_a_retained_rsa_sign_verify_key_and_the_data_key_rotates(synthesis: Synthesis) -> None:
    keys = synthesis.resources("AWS::KMS::Key")
    signing = keys[synthesis.template["Outputs"]["SigningKeyId"]["Value"]["Ref"]]
    data = keys[synthesis.template["Outputs"]["DataKeyId"]["Value"]["Ref"]]
    assert (signing["Properties"]["KeySpec"], signing["Properties"]["KeyUsage"]) == (
        "RSA_2048",
        "SIGN_VERIFY",
    )
    assert "KeySpec" not in data["Properties"]
    assert data["Properties"]["EnableKeyRotation"] is True
    # Kept on deletion and replacement, but not after a failed first create (nothing to orphan).
    for key in (signing, data):
        assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


@pytest.mark.parametrize("service", SERVICES)
def test_each_function_runs_python_3_13_on_arm64_with_the_core_layer(
    synthesis: Synthesis, service: str
) -> None:
    _, function = function_of(synthesis, service)
    properties = function["Properties"]
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    # The asset keeps the package layout, so Lambda imports the module the tests and idp local import.
    assert properties["Handler"] == f"functions.{service}.handler.lambda_handler"
    # Imports page through a whole directory: the provisioning function may take 15 minutes.
    assert (properties["MemorySize"], properties["Timeout"]) == (
        (512, 900) if service == "provisioning" else (1024, 15)
    )
    (layer_id,) = synthesis.resources("AWS::Lambda::LayerVersion")
    assert properties["Layers"] == [{"Ref": layer_id}]
    layer = synthesis.template["Resources"][layer_id]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.13"]
    assert layer["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_function_asset_holds_the_module_its_handler_names_in_the_functions_package(
    synthesis: Synthesis, service: str
) -> None:
    function_id, function = function_of(synthesis, service)
    asset = synthesis.asset_dir(function_id)
    module, _, entry = function["Properties"]["Handler"].rpartition(".")
    assert entry == "lambda_handler"
    assert asset.joinpath(*module.split(".")).with_suffix(".py").is_file()
    # Every level is a regular package, as in the repository: no module is top-level.
    assert (asset / "functions" / "__init__.py").is_file()
    assert (asset / "functions" / service / "__init__.py").is_file()
    assert sorted(path.name for path in asset.iterdir() if path.name != "__pycache__") == ["functions"]


def test_sso_function_environment_names_its_tables_and_the_signing_key(synthesis: Synthesis) -> None:
    _, function = _sso_function(synthesis)
    variables = function["Properties"]["Environment"]["Variables"]
    # Every table: the rate counters limit the password reset links it sends.
    table_env = {Tables.env_name(concern): Tables.output_name(concern) for concern in Tables.concerns()}
    assert set(variables) == {
        *table_env,
        ENV_SIGNING_KEY_ID,
        ENV_NEXT_SIGNING_KEY_ID,
        ENV_COOKIE_SECURE,
        *POWERTOOLS_VARIABLES,
    }
    for variable, output_key in table_env.items():
        assert variables[variable] == synthesis.template["Outputs"][output_key]["Value"]
    assert variables[ENV_SIGNING_KEY_ID] == synthesis.template["Outputs"]["SigningKeyId"]["Value"]
    assert variables[ENV_NEXT_SIGNING_KEY_ID] == synthesis.template["Outputs"]["NextSigningKeyId"]["Value"]
    assert variables[ENV_COOKIE_SECURE] == "true"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "sso"


def test_sso_function_environment_is_accepted_by_the_settings_loader(synthesis: Synthesis) -> None:
    from functions.sso.settings import SsoSettings

    _, function = _sso_function(synthesis)
    variables = function["Properties"]["Environment"]["Variables"]
    # CloudFormation fills in the references at deploy time; any non-empty text stands in.
    resolved = {
        name: value if isinstance(value, str) else f"resolved-{name.lower()}"
        for name, value in variables.items()
    }
    settings = SsoSettings.from_env(resolved)
    assert settings.cookie_secure is True
    assert settings.public_base_url is None


def test_sso_role_has_no_managed_policies_signs_and_only_decrypts_secrets(synthesis: Synthesis) -> None:
    _, function = _sso_function(synthesis)
    role_id = logical_id_of(function["Properties"]["Role"])
    role = synthesis.template["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    policies = [
        policy["Properties"]
        for policy in synthesis.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
    ]
    statements = [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]
    signing_key_id = synthesis.template["Outputs"]["SigningKeyId"]["Value"]["Ref"]

    data_key_id = synthesis.template["Outputs"]["DataKeyId"]["Value"]["Ref"]

    kms_statements = {
        s["Sid"]: s for s in statements if any(str(a).startswith("kms:") for a in _as_list(s["Action"]))
    }
    assert set(kms_statements) == {
        "SignSamlAssertions",
        "SignSamlAssertionsWithTheNextKey",
        "ReadSecretsWithTheDataKey",
        "UnwrapFactorSecretsKey",
        "ReadBindPasswordsWithTheDataKey",
    }
    # The factor data key is only unwrapped (never generated here), under its own context.
    unwrapping = kms_statements["UnwrapFactorSecretsKey"]
    assert _as_list(unwrapping["Action"]) == ["kms:Decrypt"]
    assert unwrapping["Condition"]["ForAllValues:StringEquals"] == {
        "kms:EncryptionContextKeys": ["purpose", "key"]
    }
    signing = kms_statements["SignSamlAssertions"]
    assert sorted(_as_list(signing["Action"])) == ["kms:GetPublicKey", "kms:Sign"]
    assert _as_list(signing["Resource"]) == [{"Fn::GetAtt": [signing_key_id, "Arn"]}]
    next_signing = kms_statements["SignSamlAssertionsWithTheNextKey"]
    next_key_id = synthesis.template["Outputs"]["NextSigningKeyId"]["Value"]["Ref"]
    assert sorted(_as_list(next_signing["Action"])) == ["kms:GetPublicKey", "kms:Sign"]
    assert _as_list(next_signing["Resource"]) == [{"Fn::GetAtt": [next_key_id, "Arn"]}]
    # Secrets are only read, never sealed, and only under their {user, factor} context.
    reading = kms_statements["ReadSecretsWithTheDataKey"]
    assert _as_list(reading["Action"]) == ["kms:Decrypt"]
    assert _as_list(reading["Resource"]) == [{"Fn::GetAtt": [data_key_id, "Arn"]}]
    assert reading["Condition"]["ForAllValues:StringEquals"] == {
        "kms:EncryptionContextKeys": ["user", "factor"]
    }
    assert reading["Condition"]["Null"] == {"kms:EncryptionContextKeys": "false"}
    # Directory bind passwords likewise: read only, only under their {directory} context.
    binding = kms_statements["ReadBindPasswordsWithTheDataKey"]
    assert _as_list(binding["Action"]) == ["kms:Decrypt"]
    assert _as_list(binding["Resource"]) == [{"Fn::GetAtt": [data_key_id, "Arn"]}]
    assert binding["Condition"] == {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["directory"]},
        "Null": {"kms:EncryptionContextKeys": "false"},
    }
    assert "*" not in json.dumps([s["Resource"] for s in kms_statements.values()])


def test_sso_role_reaches_its_tables(synthesis: Synthesis) -> None:
    _, function = _sso_function(synthesis)
    statements = role_statements(synthesis, function)
    dynamodb_statements = {
        s["Sid"]: s for s in statements if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))
    }
    # The directories are read at sign-in and changed only by admins; only this function finds
    # users by e-mail address ("Forgot password?") and pages through them by name (the console).
    assert set(dynamodb_statements) == {
        "ItemAccessOnOwnTables",
        "ItemReadsOnSharedTables",
        "FindUsersByEmail",
        "PageThroughTheUsersByName",
    }
    users_id = _table_id(synthesis, "UsersTable")
    for sid, index in (("FindUsersByEmail", "by_email"), ("PageThroughTheUsersByName", "by_name")):
        statement = dynamodb_statements[sid]
        assert (_as_list(statement["Action"]), _as_list(statement["Resource"])) == (
            ["dynamodb:Query"],
            [{"Fn::Join": ["", [{"Fn::GetAtt": [users_id, "Arn"]}, f"/index/{index}"]]}],
        )
    shared = _as_list(dynamodb_statements["ItemReadsOnSharedTables"]["Resource"])
    assert shared == [{"Fn::GetAtt": [_table_id(synthesis, "DirectoriesTable"), "Arn"]}]
    resources = _as_list(dynamodb_statements["ItemAccessOnOwnTables"]["Resource"])
    table_ids = {_table_id(synthesis, key) for key in SSO_TABLE_KEYS}
    assert {logical_id_of(r) for r in resources if "Fn::GetAtt" in r} == table_ids
    sessions_id = _table_id(synthesis, "SessionsTable")
    assert {"Fn::Join": ["", [{"Fn::GetAtt": [sessions_id, "Arn"]}, "/index/by_user"]]} in resources
    # Deleting a user (the console) finds their pending codes through this index.
    transactions_id = _table_id(synthesis, "TransactionsTable")
    assert {"Fn::Join": ["", [{"Fn::GetAtt": [transactions_id, "Arn"]}, "/index/by_user"]]} in resources
    everything = json.dumps([s["Resource"] for s in dynamodb_statements.values()])
    assert "*" not in everything
    assert not any(
        action.endswith("*") for statement in statements for action in _as_list(statement["Action"])
    )


def test_prod_stage_is_throttled_and_writes_access_logs(synthesis: Synthesis) -> None:
    from aws_cdk.assertions import Match

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    _template(synthesis).has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "prod",
            "AccessLogSetting": {
                "DestinationArn": {"Fn::GetAtt": [Match.any_value(), "Arn"]},
                "Format": Match.any_value(),
            },
            "MethodSettings": [
                Match.object_like(
                    {
                        "HttpMethod": "*",
                        "ResourcePath": "/*",
                        "ThrottlingRateLimit": context["apiThrottleRate"],
                        "ThrottlingBurstLimit": context["apiThrottleBurst"],
                        "DataTraceEnabled": False,
                        # Execution logs name errors only, never bodies.
                        "LoggingLevel": "ERROR",
                    }
                )
            ],
        },
    )
    (stage,) = synthesis.resources("AWS::ApiGateway::Stage").values()
    log_group_id = stage["Properties"]["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
    log_group = synthesis.template["Resources"][log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] > 0
    access_log_format = stage["Properties"]["AccessLogSetting"]["Format"]
    # Query strings and bodies carry SAML messages and passwords; they never reach the logs.
    assert "querystring" not in access_log_format.lower() and "body" not in access_log_format.lower()
    (rest_api,) = synthesis.resources("AWS::ApiGateway::RestApi").values()
    assert rest_api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_mfa_and_device_paths_go_to_their_functions_and_everything_else_to_sso(synthesis: Synthesis) -> None:
    # The API routes by the table the local gateway uses (idp_core.routing).
    routes = api_routes(synthesis)
    expected = {"/": "sso", "/{proxy+}": "sso"}
    for prefix in ("/mfa", "/me/mfa", "/admin/mfa"):
        expected[prefix] = "otp"
        expected[f"{prefix}/{{proxy+}}"] = "otp"
    for prefix in ("/me/devices", "/admin/devices", "/admin/adaptive"):
        expected[prefix] = "adaptive"
        expected[f"{prefix}/{{proxy+}}"] = "adaptive"
    expected["/admin/directories"] = "provisioning"
    expected["/admin/directories/{proxy+}"] = "provisioning"
    # The answer to the challenge goes to the function that can sign the assertion.
    expected["/mfa/verify"] = "sso"
    expected["/mfa/verify/{proxy+}"] = "sso"
    # /me and /admin become resources on the way to /me/mfa and /admin/mfa; they and the
    # rest of their subtrees (/me/apps, /admin/users) must still reach the sso function.
    for parent in ("/me", "/admin"):
        expected[parent] = "sso"
        expected[f"{parent}/{{proxy+}}"] = "sso"
    assert routes == expected


def test_outputs_name_what_the_idp_cli_looks_up(synthesis: Synthesis) -> None:
    outputs = synthesis.template["Outputs"]
    assert set(outputs) >= OUTPUT_KEYS
    metadata_url = outputs["MetadataUrl"]["Value"]["Fn::Join"][1]
    assert metadata_url[-1] == "/saml/metadata"
    assert metadata_url[:-1] == outputs["ApiUrl"]["Value"]["Fn::Join"][1][:-1]


def test_custom_domain_maps_the_api_and_sets_the_public_base_url(custom_domain_synthesis: Synthesis) -> None:
    synthesis = custom_domain_synthesis
    domain_name = CUSTOM_DOMAIN_CONTEXT["customDomainName"]
    (domain,) = synthesis.resources("AWS::ApiGateway::DomainName").values()
    assert domain["Properties"]["DomainName"] == domain_name
    assert domain["Properties"]["RegionalCertificateArn"] == CUSTOM_DOMAIN_CONTEXT["certificateArn"]
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    (mapping,) = synthesis.resources("AWS::ApiGateway::BasePathMapping").values()
    assert "BasePath" not in mapping["Properties"], "mapped at the root, so URLs carry no stage name"
    (record,) = synthesis.resources("AWS::Route53::RecordSet").values()
    assert record["Properties"]["HostedZoneId"] == CUSTOM_DOMAIN_CONTEXT["hostedZoneId"]
    assert record["Properties"]["Type"] == "A"
    _, function = _sso_function(synthesis)
    assert function["Properties"]["Environment"]["Variables"][ENV_PUBLIC_BASE_URL] == f"https://{domain_name}"
    assert synthesis.template["Outputs"]["ApiUrl"]["Value"] == f"https://{domain_name}/"
    assert synthesis.template["Outputs"]["MetadataUrl"]["Value"] == f"https://{domain_name}/saml/metadata"


def test_without_custom_domain_the_function_derives_urls_from_the_request(synthesis: Synthesis) -> None:
    _, function = _sso_function(synthesis)
    assert ENV_PUBLIC_BASE_URL not in function["Properties"]["Environment"]["Variables"]
    assert not synthesis.resources("AWS::ApiGateway::DomainName")


def _table_id(synthesis: Synthesis, output_key: str) -> str:
    return synthesis.template["Outputs"][output_key]["Value"]["Ref"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _functions_serving(prefix: str) -> set[str]:
    from idp_core.routing import DEFAULT_FUNCTION, PATH_FUNCTIONS

    served = {function for path, function in PATH_FUNCTIONS.items() if path.startswith(prefix)}
    return {DEFAULT_FUNCTION} | served


@pytest.mark.parametrize("service", sorted(_functions_serving("/admin")))
def test_every_function_serving_admin_pages_reaches_what_their_guard_reads(
    synthesis: Synthesis, service: str
) -> None:
    """require_admin reads the factors and the MFA settings when an admin's second-factor
    proof is stale, and the directory that checked a directory admin's password: without
    these a function's console pages fail with AccessDenied (moto does not enforce IAM,
    so only the template can show it)."""
    from infra.constructs.function import ADMIN_GUARD_TABLES, READ_ACTIONS, WRITE_ACTIONS, Access

    _, function = function_of(synthesis, service)
    statements = role_statements(synthesis, function)
    for concern, access in ADMIN_GUARD_TABLES.items():
        table_id = _table_id(synthesis, Tables.output_name(concern))
        needed = READ_ACTIONS + (WRITE_ACTIONS if access is Access.READ_WRITE else ())
        granted = {
            action
            for statement in statements
            if {"Fn::GetAtt": [table_id, "Arn"]} in _as_list(statement.get("Resource"))
            for action in _as_list(statement.get("Action"))
        }
        assert set(needed) <= granted, f"{service} cannot {sorted(set(needed) - granted)} on {concern}"
