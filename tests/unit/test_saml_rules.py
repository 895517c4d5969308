"""S18: an assertion that would break an AWS rule is refused before it is built."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from idp_core.saml.aws import AssertionRuleViolation, AwsAssertion, check_aws_rules

ROLE = "arn:aws:iam::123456789012:role/path/Developers"
PROVIDER = "arn:aws:iam::123456789012:saml-provider/serverless-idp"


def good_assertion() -> AwsAssertion:
    return AwsAssertion(
        issuer="https://idp.example.com/saml/metadata",
        acs_url="https://signin.aws.amazon.com/saml",
        name_id="alice",
        roles=((ROLE, PROVIDER),),
        role_session_name="alice.smith@example.com",
        session_duration=3600,
        source_identity="alice",
        principal_tags={"team": "platform", "cost-center": "42"},
    )


def test_a_good_assertion_passes() -> None:
    check_aws_rules(good_assertion())


@pytest.mark.parametrize(
    "acs_url",
    [
        "http://127.0.0.1:8000/_local/aws/saml",
        "http://localhost:8000/saml",
        "https://signin.aws.amazon.com/saml",
    ],
)
def test_https_or_loopback_http_recipient_passes(acs_url: str) -> None:
    check_aws_rules(dataclasses.replace(good_assertion(), acs_url=acs_url))


@pytest.mark.parametrize(
    ("change", "rule", "message"),
    [
        ({"roles": ()}, "role", "at least one Role"),
        ({"roles": (("arn:aws:iam::12345:role/x", PROVIDER),)}, "role-arn", "not an IAM role ARN"),
        ({"roles": (("arn:aws:iam::123456789012:user/x", PROVIDER),)}, "role-arn", "not an IAM role ARN"),
        (
            {"roles": ((ROLE, "arn:aws:iam::123456789012:role/x"),)},
            "provider-arn",
            "not an IAM SAML provider",
        ),
        (
            {"roles": ((ROLE, "arn:aws:iam::210987654321:saml-provider/serverless-idp"),)},
            "role-account",
            "different AWS accounts",
        ),
        ({"role_session_name": "a"}, "role-session-name", "2-64 characters"),
        ({"role_session_name": "x" * 65}, "role-session-name", "2-64 characters"),
        ({"role_session_name": "alice smith"}, "role-session-name", "2-64 characters"),
        ({"role_session_name": "jörg"}, "role-session-name", "2-64 characters"),
        ({"session_duration": 899}, "session-duration", "between 900 and 43200"),
        ({"session_duration": 43201}, "session-duration", "between 900 and 43200"),
        ({"principal_tags": {f"k{i}": "v" for i in range(51)}}, "principal-tags", "at most 50"),
        ({"principal_tags": {"k" * 129: "v"}}, "principal-tag-key", "1-128"),
        ({"principal_tags": {"team": "v" * 257}}, "principal-tag-value", "at most 256"),
        ({"validity_seconds": 301}, "validity", "at most 300 seconds"),
        ({"acs_url": "http://signin.aws.amazon.com/saml"}, "recipient", "https URL"),
        ({"acs_url": "not a url"}, "recipient", "https URL"),
        ({"name_id": ""}, "name-id", "NameID"),
        ({"audience": ""}, "audience", "Audience"),
        ({"source_identity": "a b"}, "source-identity", "source identity"),
    ],
)
def test_each_aws_rule_violation_is_refused_with_a_clear_message(
    change: dict[str, Any], rule: str, message: str
) -> None:
    with pytest.raises(AssertionRuleViolation, match=message) as caught:
        check_aws_rules(dataclasses.replace(good_assertion(), **change))
    assert caught.value.rule == rule
    assert caught.value.status == 400


def test_fifty_tags_of_maximum_size_pass() -> None:
    tags = {f"{i:03d}" + "k" * 125: "v" * 256 for i in range(50)}
    check_aws_rules(dataclasses.replace(good_assertion(), principal_tags=tags))
