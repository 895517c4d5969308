"""What the embedded AWS adds to moto (idp_local.moto_extensions), called as a client calls AWS.

Each test uses a region no other test touches, so it starts from a new account's state.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from idp_core.config import Tables
from idp_local.moto_extensions import set_sms_sandbox

ACCOUNT = "123456789012"


def test_ses_starts_in_the_sandbox_and_leaves_it_when_production_access_is_requested(
    aws_endpoint: str,
) -> None:
    sesv2 = boto3.client("sesv2", region_name="ap-southeast-2")
    before = sesv2.get_account()

    sesv2.put_account_details(
        MailType="TRANSACTIONAL",
        WebsiteURL="https://example.com",
        UseCaseDescription="Sign-in codes",
        ProductionAccessEnabled=True,
    )
    after = sesv2.get_account()

    assert before["ProductionAccessEnabled"] is False
    assert before["SendQuota"]["Max24HourSend"] == 200.0 and "Details" not in before
    assert after["ProductionAccessEnabled"] is True
    assert after["SendQuota"]["Max24HourSend"] > 200.0
    assert after["Details"]["ReviewDetails"]["Status"] == "GRANTED"
    assert after["Details"]["UseCaseDescription"] == "Sign-in codes"


def test_put_account_details_refuses_a_request_without_mail_type(aws_endpoint: str) -> None:
    sesv2 = boto3.client("sesv2", region_name="ap-southeast-3")

    with pytest.raises(ClientError) as refused:
        sesv2.put_account_details(
            MailType="SPAM", WebsiteURL="https://example.com", ProductionAccessEnabled=True
        )

    assert refused.value.response["Error"]["Code"] == "BadRequestException"
    assert sesv2.get_account()["ProductionAccessEnabled"] is False


def test_sms_starts_in_the_sandbox_until_support_takes_it_out(aws_endpoint: str) -> None:
    sns = boto3.client("sns", region_name="ap-northeast-3")
    before = sns.get_sms_sandbox_account_status()["IsInSandbox"]

    set_sms_sandbox(ACCOUNT, "ap-northeast-3", in_sandbox=False)

    assert before is True
    assert sns.get_sms_sandbox_account_status()["IsInSandbox"] is False
    assert boto3.client("sns", region_name="ap-northeast-2").get_sms_sandbox_account_status()["IsInSandbox"]


def _template() -> dict[str, Any]:
    return {
        "Resources": {
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "api"}},
            "Method": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "RestApiId": {"Ref": "Api"},
                    "ResourceId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                    "HttpMethod": "GET",
                    "AuthorizationType": "NONE",
                    "Integration": {"Type": "MOCK", "IntegrationHttpMethod": "GET", "Uri": ""},
                },
            },
            "Deployment": {
                "Type": "AWS::ApiGateway::Deployment",
                "DependsOn": ["Method"],
                "Properties": {"RestApiId": {"Ref": "Api"}},
            },
            "Stage": {
                "Type": "AWS::ApiGateway::Stage",
                "Properties": {
                    "RestApiId": {"Ref": "Api"},
                    "DeploymentId": {"Ref": "Deployment"},
                    "StageName": "prod",
                },
            },
            "Acl": {
                "Type": "AWS::WAFv2::WebACL",
                "Properties": {
                    "Name": "acl",
                    "Scope": "REGIONAL",
                    "DefaultAction": {"Allow": {}},
                    "VisibilityConfig": {
                        "SampledRequestsEnabled": True,
                        "CloudWatchMetricsEnabled": True,
                        "MetricName": "acl",
                    },
                    "Rules": [
                        {
                            "Name": "per-ip",
                            "Priority": 0,
                            "Action": {"Block": {}},
                            "Statement": {"RateBasedStatement": {"Limit": 100, "AggregateKeyType": "IP"}},
                            "VisibilityConfig": {
                                "SampledRequestsEnabled": True,
                                "CloudWatchMetricsEnabled": True,
                                "MetricName": "per-ip",
                            },
                        }
                    ],
                },
            },
            "Association": {
                "Type": "AWS::WAFv2::WebACLAssociation",
                "DependsOn": ["Stage"],
                "Properties": {
                    "WebACLArn": {"Fn::GetAtt": ["Acl", "Arn"]},
                    "ResourceArn": {
                        "Fn::Sub": "arn:aws:apigateway:${AWS::Region}::/restapis/${Api}/stages/prod"
                    },
                },
            },
        },
        "Outputs": {"AclId": {"Value": {"Fn::GetAtt": ["Acl", "Id"]}}, "AclRef": {"Value": {"Ref": "Acl"}}},
    }


def test_cloudformation_creates_and_deletes_a_stage_and_its_web_acl(aws_endpoint: str) -> None:
    region = "ca-west-1"
    cloudformation = boto3.client("cloudformation", region_name=region)
    apigateway = boto3.client("apigateway", region_name=region)
    wafv2 = boto3.client("wafv2", region_name=region)
    cloudformation.create_stack(StackName="extensions", TemplateBody=json.dumps(_template()))
    resources = {
        item["LogicalResourceId"]: item["PhysicalResourceId"]
        for item in cloudformation.list_stack_resources(StackName="extensions")["StackResourceSummaries"]
    }
    outputs = {
        item["OutputKey"]: item["OutputValue"]
        for item in cloudformation.describe_stacks(StackName="extensions")["Stacks"][0]["Outputs"]
    }
    stage_arn = f"arn:aws:apigateway:{region}::/restapis/{resources['Api']}/stages/prod"

    [stage] = apigateway.get_stages(restApiId=resources["Api"])["item"]
    acl = wafv2.get_web_acl_for_resource(ResourceArn=stage_arn)["WebACL"]
    assert stage["stageName"] == resources["Stage"] == "prod"
    assert resources["Acl"] == outputs["AclRef"] == f"acl|{outputs['AclId']}|REGIONAL"
    assert acl["Name"] == "acl" and [rule["Name"] for rule in acl["Rules"]] == ["per-ip"]

    cloudformation.delete_stack(StackName="extensions")

    assert "WebACL" not in wafv2.get_web_acl_for_resource(ResourceArn=stage_arn)
    assert wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    assert apigateway.get_stages(restApiId=resources["Api"])["item"] == []


def test_a_transaction_repeated_with_its_token_succeeds_once_as_dynamodb_does(tables: Tables) -> None:
    """A client that retries a TransactWriteItems whose answer it did not get (a read timeout)
    sends the same ClientRequestToken: DynamoDB answers success without applying it again."""
    client = boto3.client("dynamodb")
    put: Any = {
        "Put": {
            "TableName": tables.settings,
            "Item": {"name": {"S": "once"}, "value": {"S": "1"}, "updated_at": {"N": "0"}},
            "ConditionExpression": "attribute_not_exists(#n)",
            "ExpressionAttributeNames": {"#n": "name"},
        }
    }
    client.transact_write_items(TransactItems=[put], ClientRequestToken="token-1")
    client.transact_write_items(TransactItems=[put], ClientRequestToken="token-1")  # the retry
    with pytest.raises(ClientError) as failed:  # a new request meets the condition the first wrote
        client.transact_write_items(TransactItems=[put], ClientRequestToken="token-2")
    assert failed.value.response["Error"]["Code"] == "TransactionCanceledException"
    other: Any = {**put, "Put": {**put["Put"], "Item": {**put["Put"]["Item"], "value": {"S": "2"}}}}
    with pytest.raises(ClientError) as mismatch:
        client.transact_write_items(TransactItems=[other], ClientRequestToken="token-1")
    assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
