"""Directories (LDAP / Active Directory user stores) in the template: their table, every
function told its name, and the sso role that reads them and unseals their bind passwords
only under the {directory} encryption context, while no other function reaches them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idp_core.config import Tables
from infra.constructs.function import READ_ACTIONS, WRITE_ACTIONS
from tests.infra.conftest import Synthesis
from tests.infra.template import SERVICES, function_of, role_statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _directories_id(synthesis: Synthesis) -> str:
    return str(synthesis.template["Outputs"]["DirectoriesTable"]["Value"]["Ref"])


def _statements(synthesis: Synthesis, service: str) -> list[dict[str, Any]]:
    _, function = function_of(synthesis, service)
    return role_statements(synthesis, function)


def test_directories_table_is_keyed_by_name_kept_and_recoverable_without_ttl(synthesis: Synthesis) -> None:
    table = synthesis.template["Resources"][_directories_id(synthesis)]
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "name", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "name", "AttributeType": "S"}]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert "TimeToLiveSpecification" not in properties
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert properties["DeletionProtectionEnabled"] is True


@pytest.mark.parametrize("service", SERVICES)
def test_every_function_is_told_the_directories_table_name(synthesis: Synthesis, service: str) -> None:
    _, function = function_of(synthesis, service)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables[Tables.env_name("directories")] == {"Ref": _directories_id(synthesis)}


def test_sso_role_only_reads_the_directories_table(synthesis: Synthesis) -> None:
    directories = _directories_id(synthesis)
    reaching = [s for s in _statements(synthesis, "sso") if directories in json.dumps(s["Resource"])]
    assert [s["Sid"] for s in reaching] == ["ItemReadsOnSharedTables"]
    assert sorted(_as_list(reaching[0]["Action"])) == sorted(READ_ACTIONS)


def test_sso_role_unseals_bind_passwords_only_under_the_directory_context(synthesis: Synthesis) -> None:
    data_key_id = synthesis.template["Outputs"]["DataKeyId"]["Value"]["Ref"]
    kms_statements = {
        s["Sid"]: s
        for s in _statements(synthesis, "sso")
        if any(str(action).startswith("kms:") for action in _as_list(s["Action"]))
    }
    binding = kms_statements["ReadBindPasswordsWithTheDataKey"]
    assert binding["Effect"] == "Allow"
    assert _as_list(binding["Action"]) == ["kms:Decrypt"]
    assert _as_list(binding["Resource"]) == [{"Fn::GetAtt": [data_key_id, "Arn"]}]
    assert binding["Condition"] == {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["directory"]},
        "Null": {"kms:EncryptionContextKeys": "false"},
    }
    # The second-factor grant does not admit the directory context, nor this one theirs:
    # a bind password cannot be unsealed as a TOTP secret, or the other way round.
    factor_keys = kms_statements["ReadSecretsWithTheDataKey"]["Condition"]["ForAllValues:StringEquals"]
    assert "directory" not in factor_keys["kms:EncryptionContextKeys"]


# The provisioning function manages the directories (tests/infra/test_infra_provisioning.py).
@pytest.mark.parametrize(
    "service", [service for service in SERVICES if service not in ("sso", "provisioning")]
)
def test_other_functions_only_read_the_directories_and_never_their_passwords(
    synthesis: Synthesis, service: str
) -> None:
    """Their admin pages' guard reads the directory that checked an admin's password; no
    other function changes a directory or unseals a bind password."""
    statements = _statements(synthesis, service)
    directories = _directories_id(synthesis)
    (reads,) = [s for s in statements if s.get("Sid") == "ItemReadsOnSharedTables"]
    assert directories in json.dumps(reads["Resource"])
    assert not set(WRITE_ACTIONS) & set(reads["Action"])
    others = [s for s in statements if s is not reads]
    assert directories not in json.dumps(others)
    assert '"directory"' not in json.dumps(statements)
