"""The public REST API in front of the sso function, with an optional custom domain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Acknowledgment, CfnOutput, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from constructs import Construct

from idp_core.web.responses import security_headers
from infra.settings import CustomDomain

STAGE_NAME = "prod"
# API Gateway's own answers (throttled, integration timeout, WAF block, no such method...).
GATEWAY_RESPONSE_TYPES = {
    "Default4xx": apigateway.ResponseType.DEFAULT_4_XX,
    "Default5xx": apigateway.ResponseType.DEFAULT_5_XX,
}


def gateway_response_headers() -> dict[str, str]:
    """The headers every page of the functions carries (idp_core.web.responses.finalize) as
    API Gateway static values: each enclosed in single quotes."""
    headers = {**security_headers(None), "Cache-Control": "no-store"}
    return {name: f"'{value}'" for name, value in headers.items()}


@dataclass(frozen=True)
class Throttling:
    """The stage's token bucket: ``rate`` requests per second on average, bursts of ``burst``."""

    rate: float
    burst: int


class PublicApi(Construct):
    """A regional REST API (Lambda proxy integrations).

    The root and ``{proxy+}`` go to ``handler``; each path prefix in ``prefix_handlers``
    (e.g. ``/me/mfa``) and everything below it go to its own function. API Gateway picks
    the most specific resource, so the prefix resources win over the root's ``{proxy+}``.
    Every resource on the way to a prefix (``/me`` for ``/me/mfa``) gets ANY and
    ``{proxy+}`` for the default handler too, so ``/me`` and ``/me/apps`` keep reaching it.

    Access logs go to a log group of their own. They use the standard JSON fields, which
    name the resource template and never the query string or body, so no SAML message or
    password can end up in them. Execution logs record errors only, never bodies. Both need
    the account's API Gateway CloudWatch Logs role, which a new account lacks:
    ``cloudwatch_role`` creates it (and points the account's API Gateway setting at it);
    accounts that manage that setting centrally leave it out.

    API Gateway's own 4xx and 5xx answers (throttling, timeouts, WAF blocks) carry the same
    security headers as the functions' pages. With a custom domain the default execute-api
    endpoint is disabled, so the IdP has one URL (and one SAML entity ID).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        prefix_handlers: Mapping[str, lambda_.IFunction] | None = None,
        throttling: Throttling,
        custom_domain: CustomDomain | None,
        cloudwatch_role: bool,
        tracing: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            # Named after the stack: API Gateway's metrics (the alarms, the dashboard) are by
            # API name, so two stacks in one account must not share one.
            rest_api_name=Stack.of(self).stack_name,
            description="serverless IdP: sign-in pages, SAML endpoints, admin console",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # The account-wide setting: off for accounts whose role is managed centrally.
            cloud_watch_role=cloudwatch_role,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
            if cloudwatch_role
            else None,
            disable_execute_api_endpoint=custom_domain is not None,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=throttling.rate,
                throttling_burst_limit=throttling.burst,
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                tracing_enabled=tracing,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                metrics_enabled=True,
            ),
        )
        self._route(self.rest_api.root, handler)
        routed = {self.rest_api.root.path}
        for prefix, prefix_handler in sorted((prefix_handlers or {}).items()):
            resource = self.rest_api.root
            for part in prefix.strip("/").split("/"):
                resource = resource.get_resource(part) or resource.add_resource(part)
                if resource.path not in routed:
                    is_prefix = resource.path == "/" + prefix.strip("/")
                    self._route(resource, prefix_handler if is_prefix else handler)
                    routed.add(resource.path)
        for response_id, response_type in GATEWAY_RESPONSE_TYPES.items():
            self.rest_api.add_gateway_response(
                response_id, type=response_type, response_headers=gateway_response_headers()
            )
        self._acknowledge_findings(cloudwatch_role)

        self.domain: apigateway.DomainName | None = None
        self.url = self.rest_api.url
        if custom_domain is not None:
            self.domain = self._custom_domain(custom_domain)
            self.url = f"{custom_domain.base_url}/"

    @staticmethod
    def _route(resource: apigateway.IResource, handler: lambda_.IFunction) -> None:
        """``resource`` itself and everything below it go to ``handler``."""
        integration = apigateway.LambdaIntegration(handler, proxy=True)
        resource.add_method("ANY", integration)
        resource.add_proxy(default_integration=integration, any_method=True)

    def _custom_domain(self, custom_domain: CustomDomain) -> apigateway.DomainName:
        domain = apigateway.DomainName(
            self,
            "CustomDomain",
            domain_name=custom_domain.domain_name,
            certificate=acm.Certificate.from_certificate_arn(
                self, "Certificate", custom_domain.certificate_arn
            ),
            endpoint_type=apigateway.EndpointType.REGIONAL,
            security_policy=apigateway.SecurityPolicy.TLS_1_2,
        )
        # Mapped at the root, so the public URLs carry no stage name.
        domain.add_base_path_mapping(self.rest_api, stage=self.rest_api.deployment_stage)
        if custom_domain.hosted_zone_id and custom_domain.hosted_zone_name:
            zone = route53.HostedZone.from_hosted_zone_attributes(
                self,
                "Zone",
                hosted_zone_id=custom_domain.hosted_zone_id,
                zone_name=custom_domain.hosted_zone_name,
            )
            route53.ARecord(
                self,
                "AliasRecord",
                zone=zone,
                record_name=custom_domain.domain_name,
                target=route53.RecordTarget.from_alias(route53_targets.ApiGatewayDomain(domain)),
            )
        else:
            CfnOutput(
                self,
                "CustomDomainTarget",
                key="CustomDomainTarget",
                value=domain.domain_name_alias_domain_name,
                description=(
                    f"Point {custom_domain.domain_name} here: a CNAME record, or a Route 53 alias "
                    "record in the zone CustomDomainTargetZone"
                ),
            )
            CfnOutput(
                self,
                "CustomDomainTargetZone",
                key="CustomDomainTargetZone",
                value=domain.domain_name_alias_hosted_zone_id,
                description="The hosted zone id of CustomDomainTarget, for a Route 53 alias record",
            )
        return domain

    def _acknowledge_findings(self, cloudwatch_role: bool) -> None:
        reasons = {
            "AwsSolutions-APIG2": (
                "The routes take HTML form posts and SAML messages that API Gateway models cannot "
                "describe; every route parses and validates its input in the function."
            ),
            "AwsSolutions-APIG4": (
                "This API is the identity provider itself: its pages are where users authenticate. "
                "The function enforces sessions, CSRF tokens and admin rights on every protected route."
            ),
            "AwsSolutions-COG4": (
                "No Cognito: the identity provider authenticates users itself (see AwsSolutions-APIG4)."
            ),
        }
        for rule_id, reason in reasons.items():
            Validations.of(self.rest_api).acknowledge(Acknowledgment(id=rule_id, reason=reason))
        if cloudwatch_role:
            Validations.of(self.rest_api).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                    reason=(
                        "The account's API Gateway CloudWatch Logs role serves every REST API of the account "
                        "and region, whose log groups this stack cannot know; AWS's own policy for that role "
                        "is the one API Gateway documents, kept current by AWS."
                    ),
                )
            )

    def acknowledge_no_waf(self) -> None:
        """The deployer left the web ACL out (``-c waf=false``)."""
        Validations.of(self.rest_api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG3",
                reason=(
                    "The deployment left AWS WAF out on purpose (-c waf=false, e.g. a firewall in front of "
                    "the API already); the stage throttling and the per-account lockout still bound abuse."
                ),
            )
        )
