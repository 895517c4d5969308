"""The sso function: sign-in, sessions, SAML issuing and metadata."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Fn, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from idp_core.config import ENV_COOKIE_SECURE, ENV_PUBLIC_BASE_URL, ENV_SIGNING_KEY_ID
from idp_core.config import Tables as ConfigTables
from infra.constructs.layer import ARCHITECTURE, RUNTIME
from infra.constructs.tables import SESSIONS_BY_USER_INDEX, Tables
from infra.layer_build import REPO_ROOT

FUNCTION_DIR = REPO_ROOT / "functions" / "sso"

# Item-level access only: no table management, no streams, no PartiQL.
TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)


class SsoFunction(Construct):
    """The function, its own log group and its own least-privilege role.

    The role carries no managed policy: log writing is granted on the function's own log
    group, table access on the six tables (and the one index) by ARN, and signing on the
    signing key only.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tables: Tables,
        signing_key: kms.IKey,
        layer: lambda_.ILayerVersion,
        public_base_url: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Runs the sso function of the serverless IdP",
        )
        self.log_group.grant_write(self.role)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ItemAccessOnOwnTables",
                actions=list(TABLE_ACTIONS),
                resources=[
                    *(table.table_arn for table in tables.all().values()),
                    Fn.join("", [tables.sessions.table_arn, f"/index/{SESSIONS_BY_USER_INDEX}"]),
                ],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SignSamlAssertions",
                actions=["kms:Sign", "kms:GetPublicKey"],
                resources=[signing_key.key_arn],
            )
        )

        environment = {
            **{ConfigTables.env_name(concern): table.table_name for concern, table in tables.all().items()},
            ENV_SIGNING_KEY_ID: signing_key.key_id,
            ENV_COOKIE_SECURE: "true",
            "POWERTOOLS_SERVICE_NAME": "sso",
        }
        if public_base_url:
            environment[ENV_PUBLIC_BASE_URL] = public_base_url

        self.function = lambda_.Function(
            self,
            "Function",
            code=lambda_.Code.from_asset(str(FUNCTION_DIR), exclude=["__pycache__", "*.pyc"]),
            handler="handler.lambda_handler",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            memory_size=1024,
            timeout=Duration.seconds(15),
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            environment=environment,
            description="serverless IdP: sign-in, sessions, SAML issuing, metadata",
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason=(
                    "The runtime is pinned to python3.13 on purpose: the layer's compiled wheels "
                    "(lxml, cryptography, argon2) are built for cp313, and a runtime upgrade is a "
                    "deliberate change that rebuilds and retests the layer."
                ),
            )
        )
