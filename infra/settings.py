"""Deployment settings read from CDK context (cdk.json or ``cdk deploy -c key=value``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from idp_core.config import ConfigurationError, MessagingConfig

if TYPE_CHECKING:
    from constructs import Node

NumberT = TypeVar("NumberT", int, float)

DEFAULT_STACK_NAME = "ServerlessIdp"
DEFAULT_THROTTLE_RATE = 50.0
DEFAULT_THROTTLE_BURST = 100
# A new account's SNS SMS spend limit (MonthlySpendLimit) in USD.
DEFAULT_SMS_MONTHLY_LIMIT_USD = 1.0
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class InfraConfigurationError(ValueError):
    """A context value is missing, malformed or inconsistent with another one."""


@dataclass(frozen=True)
class CustomDomain:
    """A custom domain in front of the API; the certificate must be in the stack's region."""

    domain_name: str
    certificate_arn: str
    # Both set: the stack creates an alias record in this public hosted zone.
    hosted_zone_id: str | None = None
    hosted_zone_name: str | None = None

    @property
    def base_url(self) -> str:
        return f"https://{self.domain_name}"


@dataclass(frozen=True)
class DirectoryNetwork:
    """Where the functions that talk to LDAP servers run: subnets of an existing VPC with a
    route to the directory (e.g. an on-premises AD over a VPN). Those subnets also need a
    way to DynamoDB, KMS and SES (VPC endpoints or a NAT gateway)."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


# The CDK context keys of the directory network.
DIRECTORY_VPC_KEY = "directoryVpcId"
DIRECTORY_SUBNETS_KEY = "directorySubnetIds"
DIRECTORY_SECURITY_GROUPS_KEY = "directorySecurityGroupIds"
_VPC_ID = re.compile(r"vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_SUBNET_ID = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_SECURITY_GROUP_ID = re.compile(r"sg-(?:[0-9a-f]{8}|[0-9a-f]{17})")

# The CDK context key of each messaging setting, for error messages.
MESSAGING_CONTEXT_KEYS = {
    "sms_sender_id": "smsSenderId",
    "sms_origination_number": "smsOriginationNumber",
    "email_sender": "emailSender",
    "sms_countries": "smsAllowedCountries",
}


@dataclass(frozen=True)
class Operations:
    """The switches of what surrounds the functions (each a CDK context key)."""

    # A regional AWS WAF web ACL on the API stage (`waf`).
    waf: bool = True
    # The account-wide API Gateway CloudWatch Logs role (`apiGatewayCloudWatchRole`); off for
    # accounts that manage it centrally.
    api_gateway_cloudwatch_role: bool = True
    # X-Ray active tracing and the Powertools Tracer (`tracing`).
    tracing: bool = False
    # Lambda SnapStart on every function, invoked through the alias of its published version
    # (`snapStart`).
    snap_start: bool = False
    # An address the alarm topic e-mails (`alarmEmail`).
    alarm_email: str | None = None
    # The account's SNS MonthlySpendLimit, which the SMS spend alarm watches (`smsMonthlySpendLimit`).
    sms_monthly_limit_usd: float = DEFAULT_SMS_MONTHLY_LIMIT_USD
    # The users table's by_name index, which the users list pages through (`usersListIndex`).
    # CloudFormation adds one index to an existing table per update, and this release adds two
    # (by_email too): a stack of an earlier release is upgraded with it off first.
    users_list_index: bool = True


@dataclass(frozen=True)
class DeploymentSettings:
    stack_name: str = DEFAULT_STACK_NAME
    throttle_rate: float = DEFAULT_THROTTLE_RATE
    throttle_burst: int = DEFAULT_THROTTLE_BURST
    custom_domain: CustomDomain | None = None
    messaging: MessagingConfig = field(default_factory=MessagingConfig)
    # None: the functions run outside any VPC.
    directory_network: DirectoryNetwork | None = None
    operations: Operations = field(default_factory=Operations)

    @classmethod
    def from_context(cls, node: Node) -> DeploymentSettings:
        def text(key: str) -> str | None:
            value = node.try_get_context(key)
            if value is None:
                return None
            value = str(value).strip()
            return value or None

        domain_name = text("customDomainName")
        certificate_arn = text("certificateArn")
        zone_id = text("hostedZoneId")
        zone_name = text("hostedZoneName")
        if bool(domain_name) != bool(certificate_arn):
            raise InfraConfigurationError(
                "customDomainName and certificateArn go together: set both for a custom domain, or neither"
            )
        if (zone_id or zone_name) and not (zone_id and zone_name and domain_name):
            raise InfraConfigurationError(
                "hostedZoneId and hostedZoneName are both needed, and only with customDomainName"
            )
        custom_domain = None
        if domain_name and certificate_arn:
            if not certificate_arn.startswith("arn:"):
                raise InfraConfigurationError(
                    f"certificateArn must be an ACM certificate ARN, got {certificate_arn!r}"
                )
            custom_domain = CustomDomain(domain_name.rstrip("."), certificate_arn, zone_id, zone_name)
        return cls(
            stack_name=text("stackName") or DEFAULT_STACK_NAME,
            throttle_rate=_number(text("apiThrottleRate"), "apiThrottleRate", DEFAULT_THROTTLE_RATE, float),
            throttle_burst=_number(text("apiThrottleBurst"), "apiThrottleBurst", DEFAULT_THROTTLE_BURST, int),
            custom_domain=custom_domain,
            messaging=_messaging({key: text(name) for key, name in MESSAGING_CONTEXT_KEYS.items()}),
            directory_network=_directory_network(
                text(DIRECTORY_VPC_KEY),
                node.try_get_context(DIRECTORY_SUBNETS_KEY),
                node.try_get_context(DIRECTORY_SECURITY_GROUPS_KEY),
            ),
            operations=_operations(node.try_get_context, text),
        )


def _operations(raw: Callable[[str], Any], text: Callable[[str], str | None]) -> Operations:
    alarm_email = text("alarmEmail")
    if alarm_email is not None and not _EMAIL.fullmatch(alarm_email):
        raise InfraConfigurationError(f"alarmEmail must be an e-mail address, got {alarm_email!r}")
    return Operations(
        waf=_switch(raw("waf"), "waf", default=True),
        api_gateway_cloudwatch_role=_switch(
            raw("apiGatewayCloudWatchRole"), "apiGatewayCloudWatchRole", default=True
        ),
        tracing=_switch(raw("tracing"), "tracing", default=False),
        snap_start=_switch(raw("snapStart"), "snapStart", default=False),
        users_list_index=_switch(raw("usersListIndex"), "usersListIndex", default=True),
        alarm_email=alarm_email,
        sms_monthly_limit_usd=_number(
            text("smsMonthlySpendLimit"), "smsMonthlySpendLimit", DEFAULT_SMS_MONTHLY_LIMIT_USD, float
        ),
    )


def _switch(raw: Any, key: str, *, default: bool) -> bool:
    """A boolean from cdk.json (true/false) or the command line (-c key=true|false)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("true", "false"):
        return value == "true"
    raise InfraConfigurationError(f"{key} must be true or false, got {raw!r}")


def _directory_network(vpc_id: str | None, subnets: Any, security_groups: Any) -> DirectoryNetwork | None:
    subnet_ids = _ids(subnets, DIRECTORY_SUBNETS_KEY, _SUBNET_ID, "subnet-0123456789abcdef0")
    group_ids = _ids(
        security_groups, DIRECTORY_SECURITY_GROUPS_KEY, _SECURITY_GROUP_ID, "sg-0123456789abcdef0"
    )
    if vpc_id is None:
        if subnet_ids or group_ids:
            raise InfraConfigurationError(
                f"{DIRECTORY_SUBNETS_KEY} and {DIRECTORY_SECURITY_GROUPS_KEY} place the functions in a VPC: "
                f"set {DIRECTORY_VPC_KEY} too (the VPC the subnets belong to)"
            )
        return None
    if not _VPC_ID.fullmatch(vpc_id):
        raise InfraConfigurationError(
            f"{DIRECTORY_VPC_KEY} must be a VPC id such as vpc-0123456789abcdef0, got {vpc_id!r}"
        )
    if not subnet_ids:
        raise InfraConfigurationError(
            f"{DIRECTORY_VPC_KEY} needs {DIRECTORY_SUBNETS_KEY}: the comma-separated subnets of that VPC "
            "that reach the directory servers"
        )
    if not group_ids:
        raise InfraConfigurationError(
            f"{DIRECTORY_VPC_KEY} needs {DIRECTORY_SECURITY_GROUPS_KEY}: the comma-separated security groups "
            "that allow the functions to reach the directory servers"
        )
    return DirectoryNetwork(vpc_id, subnet_ids, group_ids)


def _ids(raw: Any, key: str, pattern: re.Pattern[str], example: str) -> tuple[str, ...]:
    """Ids from comma-separated text (-c key=a,b) or a list (cdk.json), in order, once each."""
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else str(raw).split(",")
    ids = tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
    bad = [item for item in ids if not pattern.fullmatch(item)]
    if bad:
        raise InfraConfigurationError(f"{key} must be ids such as {example}, comma-separated; got {bad[0]!r}")
    return ids


def _messaging(values: dict[str, str | None]) -> MessagingConfig:
    # The functions check these again at start-up with the same rules (idp_core.config).
    try:
        return MessagingConfig.parse(values, MESSAGING_CONTEXT_KEYS)
    except ConfigurationError as exc:
        raise InfraConfigurationError(str(exc)) from exc


def _number(raw: str | None, key: str, default: NumberT, kind: type[NumberT]) -> NumberT:
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise InfraConfigurationError(f"{key} must be a {kind.__name__}, got {raw!r}") from exc
    if value <= 0:
        raise InfraConfigurationError(f"{key} must be greater than zero, got {raw!r}")
    return value
