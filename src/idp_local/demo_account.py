"""The local stack's embedded AWS account, set up as the README tells an operator to set up theirs.

The IAM SAML provider holds the IdP's metadata, the demo role trusts it with the README's trust
policy, SES has production access and SNS SMS is out of its sandbox with a spend limit, so
``idp --local doctor`` finds a local stack in order, and finds whatever is changed afterwards.
"""

from __future__ import annotations

import json

import boto3
from botocore.exceptions import ClientError

from idp_core.apps import saml_trust_policy
from idp_local.moto_extensions import set_sms_sandbox

# Any limit above AWS's default of USD 1; nothing is really sent.
LOCAL_SMS_SPEND_LIMIT = "100"


def set_up_demo_account(
    *,
    metadata_xml: str,
    account_id: str,
    region: str,
    provider_name: str,
    role_name: str,
    acs_url: str,
    base_url: str,
    session_duration: int,
) -> None:
    iam = boto3.client("iam", region_name=region)
    provider_arn = f"arn:aws:iam::{account_id}:saml-provider/{provider_name}"
    try:
        iam.create_saml_provider(SAMLMetadataDocument=metadata_xml, Name=provider_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
            raise
        iam.update_saml_provider(SAMLMetadataDocument=metadata_xml, SAMLProviderArn=provider_arn)
    policy = json.dumps(saml_trust_policy(provider_arn, acs_url))
    try:
        iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=policy,
            MaxSessionDuration=max(session_duration, 3600),
            Description="The demo app's role in the local stack's embedded AWS.",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=policy)
    boto3.client("sesv2", region_name=region).put_account_details(
        MailType="TRANSACTIONAL",
        WebsiteURL=base_url,
        UseCaseDescription="Sign-in codes and security notices of the local IdP.",
        ProductionAccessEnabled=True,
    )
    set_sms_sandbox(account_id, region, in_sandbox=False)
    boto3.client("sns", region_name=region).set_sms_attributes(
        attributes={"MonthlySpendLimit": LOCAL_SMS_SPEND_LIMIT}
    )
