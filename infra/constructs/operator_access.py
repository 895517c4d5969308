"""What an operator needs to run ``idp --stack NAME ...`` against this stack: one customer
managed policy to attach to the operators' users, groups or roles (output OperatorPolicyArn)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Fn, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct

from idp_core.mfa.tokens import TOKEN_STORE_USER
from infra.constructs.function import DIRECTORY_CONTEXT_KEYS, ENCRYPTION_CONTEXT_KEYS, TABLE_ACTIONS
from infra.constructs.keys import Keys, encryption_context_condition
from infra.constructs.tables import (
    SESSIONS_BY_USER_INDEX,
    USERS_BY_NAME_INDEX,
    USERS_BY_SOURCE_INDEX,
    Tables,
)

# The data key as the CLI uses it, each under the encryption context the core seals with:
# (statement id, actions, context keys, context values that must match).
DATA_KEY_USES = (
    # `idp token import` seals each token's secret under {user: ":token-store", factor: serial}
    # and `idp token assign` re-seals it under {user, factor} of its new owner.
    ("SealTokenAndFactorSecrets", ["kms:Encrypt"], ENCRYPTION_CONTEXT_KEYS, None),
    # `idp token assign` reads an unassigned token's secret, and nothing else sealed under
    # {user, factor}: users' authenticator seeds stay unreadable to operators.
    (
        "ReadUnassignedTokenSecrets",
        ["kms:Decrypt"],
        ENCRYPTION_CONTEXT_KEYS,
        {"user": TOKEN_STORE_USER},
    ),
    # `idp directory add-ldap|update --bind-password-stdin` seals a bind password;
    # `idp directory test|sync` binds with it.
    ("SealAndReadBindPasswords", ["kms:Encrypt", "kms:Decrypt"], DIRECTORY_CONTEXT_KEYS, None),
)

# What `idp doctor` reads about the account; none of these actions names a resource it could
# be limited to (or, for sts:GetCallerIdentity, needs a permission at all).
ACCOUNT_READS = (
    "iam:ListSAMLProviders",
    "ses:GetAccount",
    "ses:GetIdentityVerificationAttributes",
    "ses:ListIdentities",
    "sns:GetSMSAttributes",
    "sns:GetSMSSandboxAccountStatus",
    "sts:GetCallerIdentity",
    "wafv2:GetWebACLForResource",
)


class OperatorAccess(Construct):
    """The managed policy of the ``idp`` CLI's operators.

    - CloudFormation: read this stack's outputs (how ``--stack NAME`` finds everything).
    - DynamoDB: item access to every table of the stack (the CLI is the admin console).
    - KMS: the data key for ``DATA_KEY_USES`` only; the key's policy allows the same uses to
      the account's IAM principals that hold this policy, and nothing else (S32). No signing.
    - ``idp doctor``: the IAM SAML providers and roles, SES and SNS SMS account state, the API
      Gateway account setting and the WAF association.
    - ``idp signing-key rotate``: describe the two signing keys (whether the next one is enabled).
    """

    def __init__(self, scope: Construct, construct_id: str, *, tables: Tables, keys: Keys) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        statements = [
            iam.PolicyStatement(
                sid="ReadTheStackOutputs",
                actions=["cloudformation:DescribeStacks"],
                resources=[
                    stack.format_arn(
                        service="cloudformation", resource="stack", resource_name=f"{stack.stack_name}/*"
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="ItemAccessOnTheTables",
                actions=list(TABLE_ACTIONS),
                resources=[
                    *(table.table_arn for table in tables.all().values()),
                    Fn.join("", [tables.sessions.table_arn, f"/index/{SESSIONS_BY_USER_INDEX}"]),
                    Fn.join("", [tables.users.table_arn, f"/index/{USERS_BY_SOURCE_INDEX}"]),
                    Fn.join("", [tables.users.table_arn, f"/index/{USERS_BY_NAME_INDEX}"]),
                ],
            ),
            iam.PolicyStatement(
                sid="ReadSamlProvidersAndRoles",
                actions=["iam:GetSAMLProvider", "iam:GetRole"],
                resources=[
                    stack.format_arn(service="iam", region="", resource="saml-provider", resource_name="*"),
                    stack.format_arn(service="iam", region="", resource="role", resource_name="*"),
                ],
            ),
            iam.PolicyStatement(
                sid="ReadTheApiGatewayAccountSetting",
                actions=["apigateway:GET"],
                resources=[f"arn:{stack.partition}:apigateway:{stack.region}::/account"],
            ),
            iam.PolicyStatement(sid="ReadAccountState", actions=list(ACCOUNT_READS), resources=["*"]),
            # `idp signing-key rotate start` checks that the key it switches to is enabled. No
            # signing and no key management: deleting a retired key (`finish --schedule-deletion`)
            # is for the keys' administrators, whom the keys' policies name.
            iam.PolicyStatement(
                sid="DescribeTheSigningKeys",
                actions=["kms:DescribeKey"],
                resources=[key.key_arn for key in keys.signing_keys],
            ),
        ]
        for sid, actions, context_keys, values in DATA_KEY_USES:
            conditions = encryption_context_condition(context_keys, values)
            statements.append(
                iam.PolicyStatement(
                    sid=sid, actions=actions, resources=[keys.data_key.key_arn], conditions=conditions
                )
            )
            # The key's policy delegates exactly these uses to IAM (the account principal);
            # a principal of the account gets them only through an IAM policy such as this one.
            keys.data_key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Operators{sid}",
                    principals=[iam.AccountRootPrincipal()],
                    actions=actions,
                    resources=["*"],
                    conditions=conditions,
                )
            )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Operators of the serverless IdP stack {stack.stack_name}: what `idp --stack` needs",
            statements=statements,
        )
        # cdk-nag names a finding by the ARN as synthesised: a pseudo parameter where the
        # value is only known at deploy time, the value itself where the CLI supplied it.
        partition, account, region = (
            f"<AWS::{name}>" if Token.is_unresolved(value) else value
            for name, value in (
                ("Partition", stack.partition),
                ("AccountId", stack.account),
                ("Region", stack.region),
            )
        )
        reasons = {
            f"arn:{partition}:cloudformation:{region}:{account}:stack/{stack.stack_name}/*": (
                "This stack only: a stack ARN ends with an id CloudFormation assigns at creation."
            ),
            f"arn:{partition}:iam::{account}:saml-provider/*": (
                "idp doctor reads the IAM SAML provider the admin registered, whose name the stack cannot "
                "know (read only: iam:GetSAMLProvider)."
            ),
            f"arn:{partition}:iam::{account}:role/*": (
                "idp doctor reads the trust policy of every role an app maps to, roles the admin creates "
                "after the deployment (read only: iam:GetRole)."
            ),
            "*": (
                "Account state idp doctor reads whose actions name no resource: ListSAMLProviders, SES "
                "GetAccount and identities, SNS SMS attributes, WAF GetWebACLForResource, GetCallerIdentity."
            ),
        }
        for resource, reason in reasons.items():
            Validations.of(self.policy).acknowledge(
                Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
            )
