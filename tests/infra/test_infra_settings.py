"""Deployment settings from CDK context: defaults, numbers given as text, and mistakes
that must stop the synth with a readable message instead of deploying something odd."""

from __future__ import annotations

from typing import Any

import pytest

from infra.settings import DEFAULT_STACK_NAME, InfraConfigurationError
from tests.infra.template import settings_from

CERTIFICATE_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/0f3c3a49-8d51-4d4c-9a0e-6d6f1f0b7e2c"


def test_empty_context_gives_the_default_stack_without_a_custom_domain() -> None:
    settings = settings_from(customDomainName="", certificateArn="")
    assert settings.stack_name == DEFAULT_STACK_NAME
    assert settings.custom_domain is None
    assert settings.throttle_rate > 0 and settings.throttle_burst > 0


def test_throttling_given_on_the_command_line_as_text_is_parsed() -> None:
    settings = settings_from(apiThrottleRate="12.5", apiThrottleBurst="30")
    assert settings.throttle_rate == 12.5
    assert settings.throttle_burst == 30


@pytest.mark.parametrize(("key", "value"), [("apiThrottleRate", "fast"), ("apiThrottleBurst", "0")])
def test_malformed_throttling_stops_the_synth(key: str, value: str) -> None:
    with pytest.raises(InfraConfigurationError, match=key):
        settings_from(**{key: value})


def test_custom_domain_gives_an_https_public_base_url() -> None:
    settings = settings_from(customDomainName="sso.example.org.", certificateArn=CERTIFICATE_ARN)
    assert settings.custom_domain is not None
    assert settings.custom_domain.base_url == "https://sso.example.org"
    assert settings.custom_domain.hosted_zone_id is None


@pytest.mark.parametrize(
    "context",
    [
        {"customDomainName": "sso.example.org"},
        {"certificateArn": CERTIFICATE_ARN},
        {"customDomainName": "sso.example.org", "certificateArn": "not-an-arn"},
        {"customDomainName": "sso.example.org", "certificateArn": CERTIFICATE_ARN, "hostedZoneId": "Z123"},
        {"hostedZoneId": "Z123", "hostedZoneName": "example.org"},
    ],
)
def test_incomplete_custom_domain_settings_stop_the_synth(context: dict[str, str]) -> None:
    with pytest.raises(InfraConfigurationError):
        settings_from(**context)


def test_messaging_settings_default_to_none_and_accept_a_named_sender() -> None:
    assert settings_from().messaging.email_sender is None
    messaging = settings_from(
        smsSenderId="MyIdP", emailSender="Sign-in <idp@example.org>", smsAllowedCountries="us, gb"
    ).messaging
    assert messaging.sms_sender_id == "MyIdP"
    assert messaging.email_address == "idp@example.org"
    assert messaging.email_domain == "example.org"
    assert messaging.sms_countries == ("US", "GB")


def test_country_allowlist_from_cdk_json_may_be_a_list() -> None:
    assert settings_from(smsAllowedCountries=["DE", "FR"]).messaging.sms_countries == ("DE", "FR")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("smsSenderId", "TwelveLetter"),
        ("smsSenderId", "12345"),
        ("smsOriginationNumber", "5555550100"),
        ("emailSender", "not an address"),
        ("emailSender", "Name <idp@localhost>"),
        ("smsAllowedCountries", "USA,GB"),
    ],
)
def test_malformed_messaging_settings_stop_the_synth(key: str, value: str) -> None:
    with pytest.raises(InfraConfigurationError, match=key):
        settings_from(**{key: value})


def test_operations_switches_default_to_waf_and_the_cloudwatch_role_on_tracing_off() -> None:
    operations = settings_from().operations
    assert (operations.waf, operations.api_gateway_cloudwatch_role, operations.tracing) == (True, True, False)
    assert operations.alarm_email is None
    assert operations.sms_monthly_limit_usd == 1.0


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("FALSE", False), (False, False), ("true", True), (True, True)]
)
def test_switches_accept_cdk_json_booleans_and_command_line_text(raw: Any, expected: bool) -> None:
    operations = settings_from(waf=raw, apiGatewayCloudWatchRole=raw, tracing=raw).operations
    assert (operations.waf, operations.api_gateway_cloudwatch_role, operations.tracing) == (expected,) * 3


@pytest.mark.parametrize("key", ["waf", "apiGatewayCloudWatchRole", "tracing"])
def test_a_switch_that_is_neither_true_nor_false_stops_the_synth(key: str) -> None:
    with pytest.raises(InfraConfigurationError, match=f"{key} must be true or false, got 'off'"):
        settings_from(**{key: "off"})


def test_alarm_email_and_sms_limit_are_read_and_checked() -> None:
    operations = settings_from(alarmEmail=" ops@example.com ", smsMonthlySpendLimit="25.5").operations
    assert (operations.alarm_email, operations.sms_monthly_limit_usd) == ("ops@example.com", 25.5)
    with pytest.raises(InfraConfigurationError, match="alarmEmail must be an e-mail address"):
        settings_from(alarmEmail="ops")
    with pytest.raises(InfraConfigurationError, match="smsMonthlySpendLimit must be greater than zero"):
        settings_from(smsMonthlySpendLimit="0")
