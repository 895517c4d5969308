"""The one stack of the product; it composes the constructs and names the outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from idp_core.config import Tables as ConfigTables
from idp_core.routing import DEFAULT_FUNCTION, PATH_FUNCTIONS
from infra.constructs.adaptive_function import AdaptiveFunction
from infra.constructs.alarms import Alarms
from infra.constructs.api import PublicApi, Throttling
from infra.constructs.dashboard import Dashboard
from infra.constructs.function import SharedInputs
from infra.constructs.keys import Keys
from infra.constructs.layer import CoreLayer
from infra.constructs.network import ImportedNetwork
from infra.constructs.operator_access import OperatorAccess
from infra.constructs.otp_function import OtpFunction
from infra.constructs.provisioning_function import ProvisioningFunction
from infra.constructs.sso_function import SsoFunction
from infra.constructs.tables import Tables
from infra.constructs.waf import WebFirewall
from infra.settings import DeploymentSettings

# The `idp --stack NAME` CLI finds the deployed resources by these output keys.


class IdpStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        operations = settings.operations
        tables = Tables(self, "Tables", users_list_index=operations.users_list_index)
        keys = Keys(self, "Keys", alias_prefix=settings.stack_name)
        layer = CoreLayer(self, "CoreLayer")
        domain = settings.custom_domain
        # The functions that bind to LDAP servers run in the directory's subnets when given.
        network = (
            ImportedNetwork(self, "DirectoryNetwork", network=settings.directory_network)
            if settings.directory_network
            else None
        )
        shared = SharedInputs(
            tables=tables,
            layer=layer.layer,
            public_base_url=domain.base_url if domain else None,
            snap_start=operations.snap_start,
        )
        sso = SsoFunction(
            self,
            "Sso",
            shared=shared,
            signing_key=keys.signing_key,
            next_signing_key=keys.next_signing_key,
            data_key=keys.data_key,
            messaging=settings.messaging,
            network=network,
        )
        otp = OtpFunction(self, "Otp", shared=shared, data_key=keys.data_key, messaging=settings.messaging)
        adaptive = AdaptiveFunction(self, "Adaptive", shared=shared)
        provisioning = ProvisioningFunction(
            self,
            "Provisioning",
            shared=shared,
            data_key=keys.data_key,
            messaging=settings.messaging,
            network=network,
        )
        services = {"sso": sso, "otp": otp, "adaptive": adaptive, "provisioning": provisioning}
        if operations.tracing:
            for service in services.values():
                service.trace()
        functions = {name: service.function for name, service in services.items()}
        # The API invokes the alias of each function's published version with SnapStart.
        entries = {name: service.entry for name, service in services.items()}
        api = PublicApi(
            self,
            "Api",
            handler=entries[DEFAULT_FUNCTION],
            # More specific resources win over the root's {proxy+} in API Gateway.
            prefix_handlers={prefix: entries[name] for prefix, name in PATH_FUNCTIONS.items()},
            throttling=Throttling(rate=settings.throttle_rate, burst=settings.throttle_burst),
            custom_domain=domain,
            cloudwatch_role=operations.api_gateway_cloudwatch_role,
            tracing=operations.tracing,
        )
        stage = api.rest_api.deployment_stage
        if operations.waf:
            firewall = WebFirewall(self, "Firewall", stage=stage)
            CfnOutput(
                self, "WebAclArn", value=firewall.web_acl.attr_arn, description="AWS WAF web ACL on the API"
            )
        else:
            api.acknowledge_no_waf()
        alarms = Alarms(
            self,
            "Alarms",
            stage=stage,
            functions=functions,
            tables=tables.all(),
            alarm_email=operations.alarm_email,
            sms_monthly_limit_usd=operations.sms_monthly_limit_usd,
        )
        Dashboard(self, "Dashboard", dashboard_name=settings.stack_name, stage=stage, functions=functions)
        operators = OperatorAccess(self, "Operators", tables=tables, keys=keys)

        CfnOutput(self, "ApiUrl", value=api.url, description="Base URL of the IdP (ends with /)")
        CfnOutput(self, "MetadataUrl", value=f"{api.url}saml/metadata", description="SAML IdP metadata")
        CfnOutput(self, "SigningKeyId", value=keys.signing_key.key_id, description="KMS key that signs SAML")
        CfnOutput(
            self,
            "NextSigningKeyId",
            value=keys.next_signing_key.key_id,
            description="Second KMS signing key, for `idp signing-key rotate`",
        )
        CfnOutput(
            self,
            "DataKeyId",
            value=keys.data_key.key_id,
            description="KMS key that encrypts TOTP and token secrets (used by `idp token import`)",
        )
        for concern, table in tables.all().items():
            CfnOutput(self, ConfigTables.output_name(concern), value=table.table_name)
        CfnOutput(self, "AlarmTopicArn", value=alarms.topic.topic_arn, description="SNS topic of the alarms")
        CfnOutput(
            self,
            "OperatorPolicyArn",
            value=operators.policy.managed_policy_arn,
            description="Attach to the operators who run `idp --stack` (IAM permissions for operators)",
        )
