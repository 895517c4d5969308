"""What every function of the product shares: its own log group, its own least-privilege
role with item access to the tables it names, the layer, the runtime and the settings
environment. ``SsoFunction``, ``OtpFunction`` and ``AdaptiveFunction`` add only what differs
between them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, cast

from aws_cdk import Acknowledgment, Duration, Fn, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from idp_core.config import (
    ENV_COOKIE_SECURE,
    ENV_DATA_KEY_ID,
    ENV_PUBLIC_BASE_URL,
    ENV_SIGNING_KEY_ID,
    MessagingConfig,
)
from idp_core.config import Tables as ConfigTables
from infra.constructs.keys import encryption_context_condition
from infra.constructs.layer import ARCHITECTURE, RUNTIME
from infra.constructs.metrics import NAMESPACE as METRICS_NAMESPACE
from infra.constructs.network import ImportedNetwork
from infra.constructs.tables import (
    SESSIONS_BY_USER_INDEX,
    TRANSACTIONS_BY_USER_INDEX,
    USERS_BY_SOURCE_INDEX,
    Tables,
)
from infra.layer_build import build_function, find_bytecode_compiler, function_handler

# The encryption context a factor secret sealed by KMS itself carries (idp_core.sealing): the
# CLI's hardware tokens, and secrets written before the envelope form.
ENCRYPTION_CONTEXT_KEYS = ["user", "factor"]
# The encryption context of the wrapped factor data key (idp_core.sealing.FACTOR_KEY_CONTEXT_KEYS).
FACTOR_KEY_CONTEXT_KEYS = ["purpose", "key"]
# The encryption context of a directory's bind password (idp_core.directories.store).
DIRECTORY_CONTEXT_KEYS = ["directory"]

# Item-level access only: no table management, no streams, no PartiQL. DescribeTable is
# read-only metadata that PynamoDB may ask for.
READ_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
)
WRITE_ACTIONS = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
TABLE_ACTIONS = tuple(sorted(READ_ACTIONS + WRITE_ACTIONS))
DEFAULT_TIMEOUT = Duration.seconds(15)
# With SnapStart, the alias that API Gateway and EventBridge invoke: it points at the version
# published from the function's current code and configuration.
LIVE_ALIAS = "live"


class Access(Enum):
    READ = "read"
    READ_WRITE = "read-write"


# What the guard of every admin page (idp_core.web.auth.require_admin) reads besides the
# user and the session: whether the admin has a factor and the MFA settings (when the
# session's second-factor proof is stale), and the directory that checked a directory
# admin's password ("Enable administrator login"). A function serving /admin pages without
# them would answer AccessDenied as soon as an admin's proof went stale.
ADMIN_GUARD_TABLES = {
    "users": Access.READ_WRITE,
    "sessions": Access.READ_WRITE,
    "factors": Access.READ,
    "settings": Access.READ,
    "directories": Access.READ,
}


@dataclass(frozen=True)
class FunctionSpec:
    """What makes one function itself: its name, code and description, the tables its role
    reaches and how, and its size."""

    service_name: str
    code_dir: Path
    description: str
    table_access: Mapping[str, Access]
    memory_size: int = 1024
    timeout: Duration = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class SharedInputs:
    """What the stack gives every function alike: the tables (each role reaches only those
    its spec names), the core layer, the public URL (None: API Gateway's) and SnapStart."""

    tables: Tables
    layer: lambda_.ILayerVersion
    public_base_url: str | None
    snap_start: bool = False


class IdpFunction(Construct):
    """One Lambda function of the IdP with its own log group and its own role.

    The role carries no managed policy: log writing is granted on the function's own log
    group and item access on the named tables (and their indexes: sessions and transactions
    by user, users by source) by ARN. Callers add their service grants with ``allow``.

    With ``shared.snap_start``, Lambda SnapStart: each deployment publishes a version, Lambda runs its
    cold start once and keeps a snapshot of the initialised environment, and new execution
    environments resume from it. Only published versions start from a snapshot, so what
    invokes the function invokes ``entry``, the alias of that version; the version a deployment
    replaces is deleted, which ends the caching of its snapshot (billed per GB-hour).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        shared: SharedInputs,
        signing_key_id: str | None = None,
        data_key_id: str | None = None,
        messaging: MessagingConfig | None = None,
        network: ImportedNetwork | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.service_name = spec.service_name
        unknown = sorted(set(spec.table_access) - set(ConfigTables.concerns()))
        if unknown:
            raise ValueError(f"unknown table concern(s) {unknown} for the {spec.service_name} function")
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the {spec.service_name} function of the serverless IdP",
        )
        self.log_group.grant_write(self.role)
        self._grant_tables(shared.tables, spec.table_access)

        # Exactly what the function's settings read (functions/<name>/settings.py): the tables
        # its role grants, and the keys and messaging only when it uses them.
        environment = {
            **{
                ConfigTables.env_name(concern): table.table_name
                for concern, table in shared.tables.all().items()
                if concern in spec.table_access
            },
            ENV_COOKIE_SECURE: "true",
            # Powertools reads its settings from the environment (the observability contract):
            # the Tracer stays off unless trace() turns X-Ray on.
            "POWERTOOLS_SERVICE_NAME": spec.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_TRACE_DISABLED": "true",
            **(messaging.to_env() if messaging else {}),
        }
        if shared.public_base_url:
            environment[ENV_PUBLIC_BASE_URL] = shared.public_base_url
        if signing_key_id:
            environment[ENV_SIGNING_KEY_ID] = signing_key_id
        if data_key_id:
            environment[ENV_DATA_KEY_ID] = data_key_id

        self.function = lambda_.Function(
            self,
            "Function",
            # The function's package, with its bytecode when the layer has it too.
            code=lambda_.Code.from_asset(
                str(build_function(spec.code_dir, compiler=find_bytecode_compiler()))
            ),
            handler=function_handler(spec.code_dir.name),
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            memory_size=spec.memory_size,
            timeout=spec.timeout,
            layers=[shared.layer],
            role=self.role,
            log_group=self.log_group,
            environment=environment,
            description=spec.description,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if shared.snap_start else None,
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY)
            if shared.snap_start
            else None,
            **(network.function_placement() if network else {}),
        )
        # What API Gateway and EventBridge invoke.
        self.entry: lambda_.IFunction = (
            lambda_.Alias(self, "Live", alias_name=LIVE_ALIAS, version=self.function.current_version)
            if shared.snap_start
            else self.function
        )
        if network is not None:
            network.allow_network_interfaces(self.role)
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

    def trace(self) -> None:
        """X-Ray active tracing for this function and the Powertools Tracer in it."""
        function = cast(lambda_.CfnFunction, self.function.node.default_child)
        function.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
        self.function.add_environment("POWERTOOLS_TRACE_DISABLED", "false")
        self.allow(
            iam.PolicyStatement(
                sid="SendTracesToXRay",
                actions=["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                resources=["*"],
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource to name (the Lambda "
                    "guide's tracing permissions grant them on '*'); only these two actions are granted so."
                ),
            )
        )

    def allow(self, statement: iam.PolicyStatement) -> None:
        self.role.add_to_principal_policy(statement)

    def allow_key(
        self, key: kms.IKey, sid: str, actions: list[str], conditions: Mapping[str, Any] | None = None
    ) -> None:
        """``actions`` on ``key`` for this function, written in the key's policy, which is what
        grants them (the key policies delegate no use to IAM: infra.constructs.keys), and
        mirrored in the role's policy so the role shows all it can do."""
        self.allow(
            iam.PolicyStatement(
                sid=sid, actions=actions, resources=[key.key_arn], conditions=dict(conditions or {}) or None
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{self.service_name.capitalize()}{sid}",
                principals=[self.role],
                actions=actions,
                resources=["*"],
                conditions=dict(conditions or {}) or None,
            )
        )

    def allow_data_key(self, data_key: kms.IKey, actions: list[str], sid: str) -> None:
        """``actions`` on the data key, only with the ``{user, factor}`` encryption context."""
        self.allow_key(data_key, sid, actions, encryption_context_condition(ENCRYPTION_CONTEXT_KEYS))

    def allow_factor_data_key(self, data_key: kms.IKey, actions: list[str], sid: str) -> None:
        """``actions`` on the data key, only with the ``{purpose, key}`` encryption context of the
        wrapped factor data key that envelope-encrypts TOTP and token seeds (idp_core.sealing)."""
        self.allow_key(data_key, sid, actions, encryption_context_condition(FACTOR_KEY_CONTEXT_KEYS))

    def allow_directory_data_key(self, data_key: kms.IKey, actions: list[str], sid: str) -> None:
        """``actions`` on the data key, only with the ``{directory}`` encryption context that
        directory bind passwords are sealed with (idp_core.directories.store)."""
        self.allow_key(data_key, sid, actions, encryption_context_condition(DIRECTORY_CONTEXT_KEYS))

    def allow_email(self, messaging: MessagingConfig) -> None:
        """``ses:SendEmail``/``ses:SendRawEmail`` from the configured sender only; nothing
        without one."""
        if not messaging.email_address:
            return
        stack = Stack.of(self)
        prefix = f"arn:{stack.partition}:ses:{stack.region}:{stack.account}:identity"
        # SES authorises against the identity that is verified: the address itself or its
        # domain. Both stand for this one sender, and the From address is pinned as well.
        self.allow(
            iam.PolicyStatement(
                sid="SendEmailFromTheConfiguredSender",
                actions=["ses:SendEmail", "ses:SendRawEmail"],
                resources=[f"{prefix}/{messaging.email_address}", f"{prefix}/{messaging.email_domain}"],
                conditions={"StringEquals": {"ses:FromAddress": messaging.email_address}},
            )
        )

    def _grant_tables(self, tables: Tables, table_access: Mapping[str, Access]) -> None:
        by_access: dict[Access, list[str]] = {Access.READ_WRITE: [], Access.READ: []}
        for concern in ConfigTables.concerns():
            if concern in table_access:
                table = tables.all()[concern]
                arns = [table.table_arn]
                if concern == "sessions":
                    arns.append(Fn.join("", [table.table_arn, f"/index/{SESSIONS_BY_USER_INDEX}"]))
                if concern == "users":
                    arns.append(Fn.join("", [table.table_arn, f"/index/{USERS_BY_SOURCE_INDEX}"]))
                if concern == "transactions":
                    # Keys only of items the role reads in full anyway.
                    arns.append(Fn.join("", [table.table_arn, f"/index/{TRANSACTIONS_BY_USER_INDEX}"]))
                by_access[table_access[concern]].extend(arns)
        if by_access[Access.READ_WRITE]:
            self.allow(
                iam.PolicyStatement(
                    sid="ItemAccessOnOwnTables",
                    actions=list(TABLE_ACTIONS),
                    resources=by_access[Access.READ_WRITE],
                )
            )
        if by_access[Access.READ]:
            self.allow(
                iam.PolicyStatement(
                    sid="ItemReadsOnSharedTables",
                    actions=list(READ_ACTIONS),
                    resources=by_access[Access.READ],
                )
            )
