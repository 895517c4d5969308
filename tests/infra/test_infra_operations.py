"""What a first deployment into a fresh account and its operators rely on (issue 12): the API
Gateway CloudWatch role, the gateway's own answers, the custom domain's single entry point,
AWS WAF, Powertools and tracing, alarms, the dashboard and the operators' policy; each
context switch with and without."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idp_core.web.responses import security_headers
from infra.constructs.metrics import NAMESPACE, SERVICES
from infra.constructs.waf import COMMON_RULES_COUNTED, REQUEST_RATE_LIMIT, SIGN_IN_RATE_LIMIT
from tests.infra.conftest import SWITCHES_ON_CONTEXT, Synthesis
from tests.infra.template import acknowledged_rules, function_of


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _only(synthesis: Synthesis, resource_type: str) -> dict[str, Any]:
    (resource,) = synthesis.resources(resource_type).values()
    return resource


def _alarm(synthesis: Synthesis, name: str) -> dict[str, Any]:
    (alarm,) = [
        resource["Properties"]
        for logical_id, resource in synthesis.resources("AWS::CloudWatch::Alarm").items()
        if logical_id.startswith(f"Alarms{name}")
    ]
    return alarm


def _stage_id(synthesis: Synthesis) -> str:
    (stage_id,) = synthesis.resources("AWS::ApiGateway::Stage")
    return stage_id


# ------------------------------------------------------------ API Gateway in a fresh account


def test_a_fresh_account_gets_the_api_gateway_cloudwatch_role_before_the_stage(synthesis: Synthesis) -> None:
    account = _only(synthesis, "AWS::ApiGateway::Account")
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = synthesis.template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(role["ManagedPolicyArns"])
    # The stage's access logs need the role in place first.
    (account_id,) = synthesis.resources("AWS::ApiGateway::Account")
    assert account_id in _as_list(synthesis.template["Resources"][_stage_id(synthesis)]["DependsOn"])


def test_accounts_that_manage_the_role_centrally_can_leave_it_out(switches_off_synthesis: Synthesis) -> None:
    assert not switches_off_synthesis.resources("AWS::ApiGateway::Account")
    assert not [
        role
        for role in switches_off_synthesis.resources("AWS::IAM::Role").values()
        if "apigateway.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    ]


@pytest.mark.parametrize("response_type", ["DEFAULT_4XX", "DEFAULT_5XX"])
def test_the_gateways_own_answers_carry_the_pages_security_headers(
    synthesis: Synthesis, response_type: str
) -> None:
    """Throttled (429), WAF-blocked (403), timed-out (504) answers come from API Gateway, not
    from a function, and must be as locked down as the pages."""
    (response,) = [
        r["Properties"]
        for r in synthesis.resources("AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == response_type
    ]
    headers = {
        name.removeprefix("gatewayresponse.header."): value
        for name, value in response["ResponseParameters"].items()
    }
    expected = {**security_headers(None), "Cache-Control": "no-store"}
    # API Gateway takes a static header value between single quotes.
    assert headers == {name: f"'{value}'" for name, value in expected.items()}
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_with_a_custom_domain_the_execute_api_endpoint_is_disabled(
    custom_domain_synthesis: Synthesis,
) -> None:
    properties = _only(custom_domain_synthesis, "AWS::ApiGateway::RestApi")["Properties"]
    assert properties["DisableExecuteApiEndpoint"] is True


def test_without_a_custom_domain_the_execute_api_endpoint_is_the_url(synthesis: Synthesis) -> None:
    properties = _only(synthesis, "AWS::ApiGateway::RestApi")["Properties"]
    assert properties.get("DisableExecuteApiEndpoint", False) is False


def test_a_custom_domain_without_a_hosted_zone_outputs_its_dns_target(
    switches_on_synthesis: Synthesis,
) -> None:
    synthesis = switches_on_synthesis
    assert not synthesis.resources("AWS::Route53::RecordSet")
    (domain_id,) = synthesis.resources("AWS::ApiGateway::DomainName")
    outputs = synthesis.template["Outputs"]
    assert outputs["CustomDomainTarget"]["Value"] == {"Fn::GetAtt": [domain_id, "RegionalDomainName"]}
    assert outputs["CustomDomainTargetZone"]["Value"] == {"Fn::GetAtt": [domain_id, "RegionalHostedZoneId"]}
    assert SWITCHES_ON_CONTEXT["customDomainName"] in outputs["CustomDomainTarget"]["Description"]
    assert outputs["ApiUrl"]["Value"] == f"https://{SWITCHES_ON_CONTEXT['customDomainName']}/"
    assert _only(synthesis, "AWS::ApiGateway::RestApi")["Properties"]["DisableExecuteApiEndpoint"] is True


def test_a_custom_domain_with_a_hosted_zone_gets_its_alias_record_and_no_target_output(
    custom_domain_synthesis: Synthesis,
) -> None:
    record = _only(custom_domain_synthesis, "AWS::Route53::RecordSet")["Properties"]
    (domain_id,) = custom_domain_synthesis.resources("AWS::ApiGateway::DomainName")
    assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": [domain_id, "RegionalDomainName"]}
    assert "CustomDomainTarget" not in custom_domain_synthesis.template["Outputs"]


# ------------------------------------------------------------------------------------- WAF


def _rules(synthesis: Synthesis) -> dict[str, dict[str, Any]]:
    acl = _only(synthesis, "AWS::WAFv2::WebACL")["Properties"]
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    return {rule["Name"]: rule for rule in acl["Rules"]}


def test_waf_is_on_by_default_and_attached_to_the_stage(synthesis: Synthesis) -> None:
    association = _only(synthesis, "AWS::WAFv2::WebACLAssociation")
    (acl_id,) = synthesis.resources("AWS::WAFv2::WebACL")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert {"Ref": _stage_id(synthesis)} in association["Properties"]["ResourceArn"]["Fn::Join"][1]
    assert _stage_id(synthesis) in _as_list(association["DependsOn"])
    # With a firewall in place there is nothing to excuse for AwsSolutions-APIG3.
    assert not [rule for rule in acknowledged_rules(synthesis) if rule["id"] == "AwsSolutions-APIG3"]


def test_waf_limits_each_address_tighter_where_passwords_and_codes_are_tried(synthesis: Synthesis) -> None:
    rules = _rules(synthesis)
    sign_in = rules["SignInRateLimit"]["Statement"]["RateBasedStatement"]
    everything = rules["RequestRateLimit"]["Statement"]["RateBasedStatement"]
    assert sign_in["AggregateKeyType"] == everything["AggregateKeyType"] == "IP"
    assert sign_in["Limit"] == SIGN_IN_RATE_LIMIT < everything["Limit"] == REQUEST_RATE_LIMIT
    assert "ScopeDownStatement" not in everything
    matches = [s["ByteMatchStatement"] for s in sign_in["ScopeDownStatement"]["OrStatement"]["Statements"]]
    assert {(m["SearchString"], m["PositionalConstraint"]) for m in matches} == {
        (path, "STARTS_WITH")
        for base in ("/login", "/mfa", "/me/password")
        # The execute-api URL carries the stage; the custom domain does not.
        for path in (base, f"/prod{base}")
    }
    for match in matches:
        assert match["FieldToMatch"] == {"UriPath": {}}
        assert [t["Type"] for t in match["TextTransformations"]] == ["URL_DECODE", "LOWERCASE"]
    for name in ("SignInRateLimit", "RequestRateLimit"):
        assert rules[name]["Action"] == {"Block": {}}
    # Rate limits are evaluated first: a flood is turned away before the managed rules run.
    assert (
        rules["SignInRateLimit"]["Priority"]
        < rules["RequestRateLimit"]["Priority"]
        < min(
            rules[group]["Priority"]
            for group in ("AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesCommonRuleSet")
        )
    )


def test_waf_runs_aws_managed_rules_counting_those_that_would_block_saml_and_console_posts(
    synthesis: Synthesis,
) -> None:
    rules = _rules(synthesis)
    bad_inputs = rules["AWSManagedRulesKnownBadInputsRuleSet"]
    assert bad_inputs["Statement"]["ManagedRuleGroupStatement"] == {
        "Name": "AWSManagedRulesKnownBadInputsRuleSet",
        "VendorName": "AWS",
    }
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    counted = {o["Name"]: o["ActionToUse"] for o in common["RuleActionOverrides"]}
    assert counted == {name: {"Count": {}} for name in COMMON_RULES_COUNTED}
    assert {"SizeRestrictions_BODY", "CrossSiteScripting_BODY"} <= set(counted)
    for group in ("AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesCommonRuleSet"):
        assert rules[group]["OverrideAction"] == {"None": {}}
    for rule in rules.values():
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True


def test_waf_false_leaves_it_out_and_says_why_to_cdk_nag(switches_off_synthesis: Synthesis) -> None:
    assert not switches_off_synthesis.resources("AWS::WAFv2::WebACL")
    assert not switches_off_synthesis.resources("AWS::WAFv2::WebACLAssociation")
    assert "WebAclArn" not in switches_off_synthesis.template["Outputs"]
    rules = acknowledged_rules(switches_off_synthesis)
    (reason,) = {rule["reason"] for rule in rules if rule["id"] == "AwsSolutions-APIG3"}
    assert "waf=false" in reason


# ------------------------------------------------------------------ Powertools and tracing


@pytest.mark.parametrize("service", SERVICES)
def test_every_function_configures_powertools_by_environment(synthesis: Synthesis, service: str) -> None:
    _, function = function_of(synthesis, service)
    variables = function["Properties"]["Environment"]["Variables"]
    assert {name: variables[name] for name in variables if name.startswith("POWERTOOLS_")} == {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": "ServerlessIdp",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    assert "TracingConfig" not in function["Properties"]


@pytest.mark.parametrize("service", SERVICES)
def test_tracing_true_turns_on_x_ray_and_the_tracer(switches_on_synthesis: Synthesis, service: str) -> None:
    from tests.infra.template import role_statements

    _, function = function_of(switches_on_synthesis, service)
    assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}
    assert function["Properties"]["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "false"
    (xray,) = [
        s for s in role_statements(switches_on_synthesis, function) if s.get("Sid") == "SendTracesToXRay"
    ]
    assert sorted(_as_list(xray["Action"])) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    stage = switches_on_synthesis.template["Resources"][_stage_id(switches_on_synthesis)]
    assert stage["Properties"]["TracingEnabled"] is True


def test_without_tracing_the_stage_and_roles_have_no_x_ray(synthesis: Synthesis) -> None:
    stage = synthesis.template["Resources"][_stage_id(synthesis)]
    assert stage["Properties"].get("TracingEnabled", False) is False
    assert "xray:" not in json.dumps(synthesis.resources("AWS::IAM::Policy"))


# ---------------------------------------------------------------------------- alarms


def _topic_id(synthesis: Synthesis) -> str:
    return str(synthesis.template["Outputs"]["AlarmTopicArn"]["Value"]["Ref"])


def test_the_alarm_topic_is_encrypted_tls_only_and_open_to_cloudwatch(synthesis: Synthesis) -> None:
    topic = synthesis.template["Resources"][_topic_id(synthesis)]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synthesis.template["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch_use = [
        s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert [sorted(_as_list(s["Action"])) for s in cloudwatch_use] == [
        ["kms:Decrypt", "kms:GenerateDataKey*"]
    ]
    policy = _only(synthesis, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [
        s.get("Condition") for s in policy if s["Effect"] == "Deny"
    ]
    (publish,) = [s for s in policy if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_alarm_email_subscribes_the_address(switches_on_synthesis: Synthesis, synthesis: Synthesis) -> None:
    subscription = _only(switches_on_synthesis, "AWS::SNS::Subscription")["Properties"]
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == SWITCHES_ON_CONTEXT["alarmEmail"]
    assert subscription["TopicArn"] == {"Ref": _topic_id(switches_on_synthesis)}
    assert not synthesis.resources("AWS::SNS::Subscription")


def test_every_alarm_notifies_the_topic(synthesis: Synthesis) -> None:
    alarms = synthesis.resources("AWS::CloudWatch::Alarm")
    expected = {
        "Api5xxRate",
        "KmsErrors",
        "LockoutSpike",
        "ImportFailures",
        "SmsSpendNearLimit",
        *(f"{service.capitalize()}{kind}" for service in SERVICES for kind in ("Errors", "Throttles")),
        *(
            f"{''.join(part.capitalize() for part in concern.split('_'))}TableThrottles"
            for concern in __import__("idp_core.config", fromlist=["Tables"]).Tables.concerns()
        ),
    }
    assert len(alarms) == len(expected)
    for name in expected:
        alarm = _alarm(synthesis, name)
        assert alarm["AlarmActions"] == [{"Ref": _topic_id(synthesis)}], name
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmDescription"]


def _metrics(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["Id"]: m for m in alarm["Metrics"]}


def test_the_api_5xx_alarm_is_a_rate_of_the_stages_answers(synthesis: Synthesis) -> None:
    alarm = _alarm(synthesis, "Api5xxRate")
    metrics = _metrics(alarm)
    assert metrics["errors"]["MetricStat"]["Metric"]["MetricName"] == "5XXError"
    assert metrics["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"
    dimensions = {d["Name"] for d in metrics["errors"]["MetricStat"]["Metric"]["Dimensions"]}
    assert dimensions == {"ApiName", "Stage"}
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
    assert "100 * errors / requests" in expression
    assert alarm["Threshold"] == 5


@pytest.mark.parametrize(
    ("alarm_name", "metric_name"), [("KmsErrors", "KmsError"), ("LockoutSpike", "AccountLocked")]
)
def test_application_metric_alarms_sum_the_metric_over_every_function(
    synthesis: Synthesis, alarm_name: str, metric_name: str
) -> None:
    metrics = _metrics(_alarm(synthesis, alarm_name))
    stats = [m["MetricStat"]["Metric"] for m in metrics.values() if "MetricStat" in m]
    assert {m["Namespace"] for m in stats} == {NAMESPACE}
    assert {m["MetricName"] for m in stats} == {metric_name}
    assert sorted(m["Dimensions"][0]["Value"] for m in stats) == sorted(SERVICES)
    (expression,) = [m["Expression"] for m in metrics.values() if "Expression" in m]
    assert expression.count("FILL(") == len(SERVICES)


def test_import_failures_alarm_reads_the_provisioning_functions_metric(synthesis: Synthesis) -> None:
    alarm = _alarm(synthesis, "ImportFailures")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        NAMESPACE,
        "ImportFailed",
        [{"Name": "service", "Value": "provisioning"}],
    )


def test_sms_spend_alarm_fires_before_the_accounts_limit(
    synthesis: Synthesis, switches_on_synthesis: Synthesis
) -> None:
    default = _alarm(synthesis, "SmsSpendNearLimit")
    assert (default["Namespace"], default["MetricName"]) == ("AWS/SNS", "SMSMonthToDateSpentUSD")
    # USD 1 is a new account's limit; `smsMonthlySpendLimit` says what the account has.
    assert default["Threshold"] == 0.8
    assert _alarm(switches_on_synthesis, "SmsSpendNearLimit")["Threshold"] == 40


def test_table_throttle_alarms_add_read_and_write_throttles(synthesis: Synthesis) -> None:
    metrics = _metrics(_alarm(synthesis, "UsersTableThrottles"))
    users_id = synthesis.template["Outputs"]["UsersTable"]["Value"]["Ref"]
    for name, metric_name in (("reads", "ReadThrottleEvents"), ("writes", "WriteThrottleEvents")):
        metric = metrics[name]["MetricStat"]["Metric"]
        assert (metric["Namespace"], metric["MetricName"]) == ("AWS/DynamoDB", metric_name)
        assert metric["Dimensions"] == [{"Name": "TableName", "Value": {"Ref": users_id}}]


# ------------------------------------------------------------------------- dashboard


def _dashboard_widgets(synthesis: Synthesis) -> dict[str, dict[str, Any]]:
    """The dashboard's widgets by title (references to resources read as "REF")."""
    parts = _only(synthesis, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(part if isinstance(part, str) else "REF" for part in parts))
    return {widget["properties"]["title"]: widget["properties"] for widget in body["widgets"]}


def test_the_dashboard_shows_the_sign_in_funnel_in_order(synthesis: Synthesis) -> None:
    widgets = _dashboard_widgets(synthesis)
    for title in ("Sign-in funnel", "Sign-in funnel (totals over the time range)"):
        lines = widgets[title]["metrics"]
        steps = [line[0]["label"] for line in lines if isinstance(line[0], dict)]
        assert steps == ["Password accepted", "Second factor accepted", "Assertion issued"]
        summed = [line for line in lines if isinstance(line[0], str)]
        # Each step is its metric summed over every function's `service` dimension.
        assert sorted({(line[1], line[3]) for line in summed}) == sorted(
            (metric, service)
            for metric in ("SignInPasswordAccepted", "SecondFactorAccepted", "AssertionIssued")
            for service in SERVICES
        )
        assert {line[0] for line in summed} == {NAMESPACE}


def test_the_dashboard_shows_latency_percentiles_of_the_api_and_each_function(synthesis: Synthesis) -> None:
    widgets = _dashboard_widgets(synthesis)
    api = widgets["API Gateway latency (ms)"]["metrics"]
    assert [(line[0], line[1], line[-1]["stat"]) for line in api] == [
        ("AWS/ApiGateway", "Latency", percentile) for percentile in ("p50", "p90", "p99")
    ]
    for service in SERVICES:
        lines = widgets[f"{service} function duration (ms)"]["metrics"]
        assert [(line[0], line[1], line[-1]["stat"]) for line in lines] == [
            ("AWS/Lambda", "Duration", percentile) for percentile in ("p50", "p90", "p99")
        ]


# --------------------------------------------------------------------- operators' policy


def _operator_statements(synthesis: Synthesis) -> dict[str, dict[str, Any]]:
    policy = _only(synthesis, "AWS::IAM::ManagedPolicy")
    arn = synthesis.template["Outputs"]["OperatorPolicyArn"]["Value"]
    (policy_id,) = synthesis.resources("AWS::IAM::ManagedPolicy")
    assert arn == {"Ref": policy_id}
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_the_operator_policy_covers_what_the_cli_and_doctor_call(synthesis: Synthesis) -> None:
    statements = _operator_statements(synthesis)
    actions = {action for s in statements.values() for action in _as_list(s["Action"])}
    assert {
        "cloudformation:DescribeStacks",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:BatchWriteItem",
        "kms:Encrypt",
        "kms:Decrypt",
        "iam:GetSAMLProvider",
        "iam:ListSAMLProviders",
        "iam:GetRole",
        "ses:GetAccount",
        "ses:GetIdentityVerificationAttributes",
        "ses:ListIdentities",
        "sns:GetSMSAttributes",
        "sns:GetSMSSandboxAccountStatus",
        "apigateway:GET",
        "wafv2:GetWebACLForResource",
        "sts:GetCallerIdentity",
    } <= actions
    # Only this stack's outputs, only this stack's tables, only the account's API Gateway setting.
    stack_arn = json.dumps(statements["ReadTheStackOutputs"]["Resource"])
    assert ":stack/ServerlessIdp/*" in stack_arn
    tables = statements["ItemAccessOnTheTables"]["Resource"]
    table_ids = {synthesis.template["Outputs"][key]["Value"]["Ref"] for key in _table_outputs(synthesis)}
    assert {r["Fn::GetAtt"][0] for r in tables if "Fn::GetAtt" in r} == table_ids
    assert "::/account" in json.dumps(statements["ReadTheApiGatewayAccountSetting"]["Resource"])


def test_attack_the_operator_policy_can_neither_sign_nor_manage_keys_or_tables(synthesis: Synthesis) -> None:
    statements = _operator_statements(synthesis)
    actions = {action for s in statements.values() for action in _as_list(s["Action"])}
    assert not {a for a in actions if a.endswith("*") or a == "kms:Sign" or a.startswith("kms:Create")}
    assert not {
        a for a in actions if a in ("dynamodb:DeleteTable", "dynamodb:UpdateTable", "kms:PutKeyPolicy")
    }
    # The signing keys only to describe them (`idp signing-key rotate start`).
    for output_key in ("SigningKeyId", "NextSigningKeyId"):
        key_id = synthesis.template["Outputs"][output_key]["Value"]["Ref"]
        naming = [s for s in statements.values() if key_id in json.dumps(s)]
        assert [_as_list(s["Action"]) for s in naming] == [["kms:DescribeKey"]]
    data_key_id = synthesis.template["Outputs"]["DataKeyId"]["Value"]["Ref"]
    for statement in statements.values():
        if data_key_id in json.dumps(statement["Resource"]):
            assert statement["Condition"]["Null"] == {"kms:EncryptionContextKeys": "false"}


def _table_outputs(synthesis: Synthesis) -> list[str]:
    from idp_core.config import Tables

    return [Tables.output_name(concern) for concern in Tables.concerns()]
