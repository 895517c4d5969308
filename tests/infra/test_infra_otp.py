"""The otp function: its own role reaches exactly what second factors need (SMS to phone
numbers only, e-mail from the configured sender only, the data key only with the
{user, factor} encryption context) and its environment carries the messaging settings."""

from __future__ import annotations

import json
from typing import Any

from functions.otp.settings import OtpSettings
from idp_core.config import ENV_PUBLIC_BASE_URL, ENV_SIGNING_KEY_ID, Tables
from tests.infra.conftest import CUSTOM_DOMAIN_CONTEXT, MESSAGING_CONTEXT, Synthesis
from tests.infra.template import function_of, role_statements

OTP_TABLE_KEYS = {
    "UsersTable",
    "AppsTable",
    "SessionsTable",
    "SettingsTable",
    "AuditTable",
    "FactorsTable",
    "TokensTable",
    "TransactionsTable",
    "RateLimitsTable",
    # Registering and removing security keys.
    "CredentialsTable",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(synthesis: Synthesis) -> dict[str, dict[str, Any]]:
    _, function = function_of(synthesis, "otp")
    return {s.get("Sid", "logs"): s for s in role_statements(synthesis, function)}


def _otp_variables(synthesis: Synthesis) -> dict[str, Any]:
    _, function = function_of(synthesis, "otp")
    return dict(function["Properties"]["Environment"]["Variables"])


def test_otp_role_has_no_managed_policy_and_never_signs(synthesis: Synthesis) -> None:
    _, function = function_of(synthesis, "otp")
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in synthesis.template["Resources"][role_id]["Properties"]
    actions = {action for s in _statements(synthesis).values() for action in _as_list(s["Action"])}
    assert "kms:Sign" not in actions
    assert not any(action.endswith("*") for action in actions)
    signing_key_id = synthesis.template["Outputs"]["SigningKeyId"]["Value"]["Ref"]
    assert signing_key_id not in json.dumps([s["Resource"] for s in _statements(synthesis).values()])


def test_otp_role_reaches_the_second_factor_tables_but_not_groups(synthesis: Synthesis) -> None:
    statement = _statements(synthesis)["ItemAccessOnOwnTables"]
    resources = _as_list(statement["Resource"])
    table_ids = {synthesis.template["Outputs"][key]["Value"]["Ref"] for key in OTP_TABLE_KEYS}
    assert {r["Fn::GetAtt"][0] for r in resources if "Fn::GetAtt" in r} == table_ids
    sessions_id = synthesis.template["Outputs"]["SessionsTable"]["Value"]["Ref"]
    assert {"Fn::Join": ["", [{"Fn::GetAtt": [sessions_id, "Arn"]}, "/index/by_user"]]} in resources
    assert "*" not in json.dumps(resources)


def test_sms_may_be_published_to_phone_numbers_but_never_to_a_topic_or_endpoint(synthesis: Synthesis) -> None:
    statements = _statements(synthesis)
    allow = statements["PublishSmsToPhoneNumbers"]
    deny = statements["NeverPublishToTopicsOrEndpoints"]
    # A direct SMS publish has no resource ARN; IAM evaluates it against "*".
    assert (allow["Effect"], _as_list(allow["Action"]), allow["Resource"]) == ("Allow", ["sns:Publish"], "*")
    assert (deny["Effect"], _as_list(deny["Action"]), deny["Resource"]) == (
        "Deny",
        ["sns:Publish"],
        "arn:*:sns:*:*:*",
    )
    sns_statements = [
        s for s in statements.values() if any(a.startswith("sns:") for a in _as_list(s["Action"]))
    ]
    assert len(sns_statements) == 2


def test_data_key_use_requires_exactly_its_encryption_contexts(synthesis: Synthesis) -> None:
    data_key_id = synthesis.template["Outputs"]["DataKeyId"]["Value"]["Ref"]
    # What idp_core.sealing calls: the factor data key is generated and unwrapped under
    # {purpose, key}; seeds still sealed by KMS itself are only read, under {user, factor}.
    wrap = _statements(synthesis)["WrapFactorSecretsWithTheDataKey"]
    read = _statements(synthesis)["ReadSecretsWithTheDataKey"]
    assert sorted(_as_list(wrap["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert _as_list(read["Action"]) == ["kms:Decrypt"]
    for statement, keys in ((wrap, ["purpose", "key"]), (read, ["user", "factor"])):
        assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": [data_key_id, "Arn"]}]
        assert statement["Condition"] == {
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": keys},
            "Null": {"kms:EncryptionContextKeys": "false"},
        }
    kms_statements = [s for s in _statements(synthesis).values() if "kms:" in json.dumps(s["Action"])]
    assert sorted(kms_statements, key=json.dumps) == sorted([wrap, read], key=json.dumps)


def test_without_an_email_sender_the_role_cannot_send_email(synthesis: Synthesis) -> None:
    assert not [s for s in _statements(synthesis).values() if "ses:" in json.dumps(s["Action"])]
    variables = _otp_variables(synthesis)
    assert not {"EMAIL_SENDER", "SMS_SENDER_ID", "SMS_ORIGINATION_NUMBER"} & set(variables)


def test_email_is_sent_only_from_the_configured_sender_identity(custom_domain_synthesis: Synthesis) -> None:
    statements = _statements(custom_domain_synthesis)
    ses_statements = [s for s in statements.values() if "ses:" in json.dumps(s["Action"])]
    assert ses_statements == [statements["SendEmailFromTheConfiguredSender"]]
    (statement,) = ses_statements
    assert sorted(_as_list(statement["Action"])) == ["ses:SendEmail", "ses:SendRawEmail"]
    identities = [resource["Fn::Join"][1][-1] for resource in _as_list(statement["Resource"])]
    assert identities == [":identity/sign-in@idp.example.com", ":identity/idp.example.com"]
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": "sign-in@idp.example.com"}}


def test_otp_environment_carries_the_data_key_and_the_messaging_settings(
    custom_domain_synthesis: Synthesis,
) -> None:
    synthesis = custom_domain_synthesis
    variables = _otp_variables(synthesis)
    assert variables["DATA_KEY_ID"] == synthesis.template["Outputs"]["DataKeyId"]["Value"]
    # It never signs, so it is not told the signing key.
    assert ENV_SIGNING_KEY_ID not in variables
    assert variables["SMS_SENDER_ID"] == MESSAGING_CONTEXT["smsSenderId"]
    assert variables["SMS_ORIGINATION_NUMBER"] == MESSAGING_CONTEXT["smsOriginationNumber"]
    assert variables["EMAIL_SENDER"] == MESSAGING_CONTEXT["emailSender"]
    assert variables["SMS_ALLOWED_COUNTRIES"] == "US,GB,DE"
    assert variables[ENV_PUBLIC_BASE_URL] == f"https://{CUSTOM_DOMAIN_CONTEXT['customDomainName']}"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "otp"
    # The tables its role reaches, and no other.
    assert {name for name in variables if name.endswith("_TABLE")} == {
        Tables.env_name(concern) for concern in OtpSettings.TABLES
    }


def test_otp_environment_is_accepted_by_the_settings_loader(custom_domain_synthesis: Synthesis) -> None:
    resolved = {
        name: value if isinstance(value, str) else f"resolved-{name.lower()}"
        for name, value in _otp_variables(custom_domain_synthesis).items()
    }
    settings = OtpSettings.from_env(resolved)
    assert settings.public_base_url == f"https://{CUSTOM_DOMAIN_CONTEXT['customDomainName']}"
