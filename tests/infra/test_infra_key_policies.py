"""The key policies (S32): only the sso function signs; each function uses the data key only
for its own actions under its own encryption context; the account administers both keys but
uses neither through IAM, except the operators' CLI uses, each under its context."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.keys import KEY_ADMIN_ACTIONS
from tests.infra.conftest import Synthesis
from tests.infra.template import SERVICES, function_of, role_statements

# Never granted to the account (IAM) on either key: using the keys, or a grant that would.
CRYPTOGRAPHIC_ACTIONS = {
    "kms:*",
    "kms:Sign",
    "kms:Verify",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:CreateGrant",
}
# The deployment's two signing keys (a rotation switches between them), by stack output.
SIGNING_KEYS = ("SigningKeyId", "NextSigningKeyId")
USER_FACTOR = {
    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["user", "factor"]},
    "Null": {"kms:EncryptionContextKeys": "false"},
}
FACTOR_KEY = {
    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["purpose", "key"]},
    "Null": {"kms:EncryptionContextKeys": "false"},
}
DIRECTORY = {
    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["directory"]},
    "Null": {"kms:EncryptionContextKeys": "false"},
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _key(synthesis: Synthesis, output_key: str) -> dict[str, Any]:
    return synthesis.template["Resources"][synthesis.template["Outputs"][output_key]["Value"]["Ref"]]


def _policy(synthesis: Synthesis, output_key: str) -> list[dict[str, Any]]:
    return list(_key(synthesis, output_key)["Properties"]["KeyPolicy"]["Statement"])


def _principal(statement: dict[str, Any], synthesis: Synthesis) -> str:
    """``account`` for the account root (IAM delegation), else the service of the role."""
    principal = statement["Principal"]["AWS"]
    if "Fn::Join" in principal and principal["Fn::Join"][1][-1] == ":root":
        return "account"
    role_id = principal["Fn::GetAtt"][0]
    for service in SERVICES:
        _, function = function_of(synthesis, service)
        if function["Properties"]["Role"]["Fn::GetAtt"][0] == role_id:
            return service
    raise AssertionError(f"a key policy names an unknown principal {principal}")


def _uses(synthesis: Synthesis, output_key: str) -> dict[str, list[tuple[list[str], Any]]]:
    """Each principal's (actions, condition) pairs in the key's policy, admin statement aside."""
    uses: dict[str, list[tuple[list[str], Any]]] = {}
    for statement in _policy(synthesis, output_key):
        assert statement["Effect"] == "Allow"
        if statement.get("Sid") == "AccountAdministersTheKey":
            continue
        uses.setdefault(_principal(statement, synthesis), []).append(
            (sorted(_as_list(statement["Action"])), statement.get("Condition"))
        )
    return uses


@pytest.mark.parametrize("output_key", ["SigningKeyId", "NextSigningKeyId", "DataKeyId"])
def test_the_account_administers_each_key_without_using_it(synthesis: Synthesis, output_key: str) -> None:
    (admin,) = [s for s in _policy(synthesis, output_key) if s.get("Sid") == "AccountAdministersTheKey"]
    assert _principal(admin, synthesis) == "account"
    actions = set(_as_list(admin["Action"]))
    assert actions == set(KEY_ADMIN_ACTIONS)
    # What keeps a deployment manageable, and what KMS's lockout check asks of the creator.
    assert {
        "kms:DescribeKey",
        "kms:EnableKey",
        "kms:DisableKey",
        "kms:PutKeyPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:CancelKeyDeletion",
    } <= actions
    assert not actions & CRYPTOGRAPHIC_ACTIONS
    assert "Condition" not in admin


@pytest.mark.parametrize("output_key", SIGNING_KEYS)
def test_only_the_sso_function_signs_and_reads_the_public_key(synthesis: Synthesis, output_key: str) -> None:
    assert _uses(synthesis, output_key) == {"sso": [(["kms:GetPublicKey", "kms:Sign"], None)]}


def test_the_second_signing_key_is_made_like_the_first(synthesis: Synthesis) -> None:
    """A rotation switches to a key as reviewed as the first: same kind, same policy shape."""
    first, second = (_key(synthesis, output_key) for output_key in SIGNING_KEYS)
    for key in (first, second):
        assert (key["Properties"]["KeySpec"], key["Properties"]["KeyUsage"]) == ("RSA_2048", "SIGN_VERIFY")
        assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    shapes = [
        sorted(
            (s["Sid"].replace("WithTheNextKey", ""), sorted(_as_list(s["Action"])))
            for s in _policy(synthesis, k)
        )
        for k in SIGNING_KEYS
    ]
    assert shapes[0] == shapes[1]


def test_operators_describe_the_signing_keys_but_neither_sign_nor_make_nor_delete_keys(
    synthesis: Synthesis,
) -> None:
    """`idp signing-key rotate start` checks the next key is enabled; it never signs and never
    makes a key (a key an operator made could name them as signer); deleting a retired key is
    for the keys' administrators."""
    statements = [
        s
        for policy in synthesis.resources("AWS::IAM::ManagedPolicy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (describe,) = [s for s in statements if s.get("Sid") == "DescribeTheSigningKeys"]
    assert _as_list(describe["Action"]) == ["kms:DescribeKey"]
    key_ids = [synthesis.template["Outputs"][k]["Value"]["Ref"] for k in SIGNING_KEYS]
    assert _as_list(describe["Resource"]) == [{"Fn::GetAtt": [key_id, "Arn"]} for key_id in key_ids]
    operator_actions = {action for s in statements for action in _as_list(s["Action"])}
    assert not operator_actions & {"kms:CreateKey", "kms:Sign", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"}


def test_the_data_key_serves_each_function_only_under_its_encryption_context(synthesis: Synthesis) -> None:
    uses = _uses(synthesis, "DataKeyId")
    assert sorted(uses["sso"], key=json.dumps) == sorted(
        [(["kms:Decrypt"], USER_FACTOR), (["kms:Decrypt"], DIRECTORY), (["kms:Decrypt"], FACTOR_KEY)],
        key=json.dumps,
    )
    # Enrolment wraps new seeds under the factor data key (idp_core.sealing); older ones are read.
    assert sorted(uses["otp"], key=json.dumps) == sorted(
        [(["kms:Decrypt", "kms:GenerateDataKey"], FACTOR_KEY), (["kms:Decrypt"], USER_FACTOR)], key=json.dumps
    )
    assert uses["provisioning"] == [(["kms:Decrypt", "kms:Encrypt"], DIRECTORY)]
    # Devices and adaptive policies hold no secret.
    assert "adaptive" not in uses


def test_the_operators_cli_gets_its_data_key_uses_each_under_its_context(synthesis: Synthesis) -> None:
    from idp_core.mfa.tokens import TOKEN_STORE_USER

    uses = sorted(_uses(synthesis, "DataKeyId")["account"], key=json.dumps)
    assert uses == sorted(
        [
            # idp token import / assign seal token and factor secrets.
            (["kms:Encrypt"], USER_FACTOR),
            # idp token assign reads an unassigned token's secret, and no user's.
            (
                ["kms:Decrypt"],
                {**USER_FACTOR, "StringEquals": {"kms:EncryptionContext:user": TOKEN_STORE_USER}},
            ),
            # idp directory add-ldap/update seal, test/sync read bind passwords.
            (["kms:Decrypt", "kms:Encrypt"], DIRECTORY),
        ],
        key=json.dumps,
    )


def test_attack_no_principal_of_the_account_can_sign_through_iam_alone(synthesis: Synthesis) -> None:
    """An IAM policy with kms:* on * (AdministratorAccess) gets no kms:Sign: the signing key's
    policy neither delegates to the account nor lets anyone create a grant."""
    for output_key in SIGNING_KEYS:
        for statement in _policy(synthesis, output_key):
            actions = set(_as_list(statement["Action"]))
            if _principal(statement, synthesis) != "sso":
                assert not actions & CRYPTOGRAPHIC_ACTIONS, statement
    operator_actions = {
        action
        for policy in synthesis.resources("AWS::IAM::ManagedPolicy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in _as_list(s["Action"])
    }
    assert "kms:Sign" not in operator_actions


def test_attack_the_account_cannot_read_a_users_authenticator_seed(synthesis: Synthesis) -> None:
    """Every Decrypt the data key's policy gives the account (IAM) is bound to a context: the
    directory, or the token store's own user; never a bare {user, factor}."""
    for actions, condition in _uses(synthesis, "DataKeyId")["account"]:
        if "kms:Decrypt" not in actions:
            continue
        assert condition is not None
        keys = condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]
        assert keys == ["directory"] or condition.get("StringEquals", {}).get("kms:EncryptionContext:user")


@pytest.mark.parametrize("service", SERVICES)
def test_each_roles_kms_statements_mirror_the_key_policies(synthesis: Synthesis, service: str) -> None:
    """The role's own statements show exactly what the keys' policies grant it."""
    _, function = function_of(synthesis, service)
    from_role = sorted(
        (
            (sorted(_as_list(s["Action"])), s.get("Condition"))
            for s in role_statements(synthesis, function)
            if any(str(a).startswith("kms:") for a in _as_list(s["Action"]))
        ),
        key=json.dumps,
    )
    from_keys = sorted(
        (
            use
            for output_key in (*SIGNING_KEYS, "DataKeyId")
            for use in _uses(synthesis, output_key).get(service, [])
        ),
        key=json.dumps,
    )
    assert from_role == from_keys


def test_both_keys_have_aliases_named_after_the_stack(synthesis: Synthesis) -> None:
    aliases = {
        alias["Properties"]["AliasName"]: alias["Properties"]["TargetKeyId"]
        for alias in synthesis.resources("AWS::KMS::Alias").values()
    }
    signing_id = synthesis.template["Outputs"]["SigningKeyId"]["Value"]["Ref"]
    data_id = synthesis.template["Outputs"]["DataKeyId"]["Value"]["Ref"]
    next_id = synthesis.template["Outputs"]["NextSigningKeyId"]["Value"]["Ref"]
    assert aliases["alias/ServerlessIdp/saml-signing"] == {"Fn::GetAtt": [signing_id, "Arn"]}
    assert aliases["alias/ServerlessIdp/saml-signing-next"] == {"Fn::GetAtt": [next_id, "Arn"]}
    assert aliases["alias/ServerlessIdp/data"] == {"Fn::GetAtt": [data_id, "Arn"]}
