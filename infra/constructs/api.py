"""The public REST API in front of the sso function, with an optional custom domain."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from constructs import Construct

from infra.settings import CustomDomain

STAGE_NAME = "prod"


class PublicApi(Construct):
    """A regional REST API (Lambda proxy integrations).

    The root and ``{proxy+}`` go to ``handler``; each path prefix in ``prefix_handlers``
    (e.g. ``/me/mfa``) and everything below it go to its own function. API Gateway picks
    the most specific resource, so the prefix resources win over the root's ``{proxy+}``.
    Every resource on the way to a prefix (``/me`` for ``/me/mfa``) gets ANY and
    ``{proxy+}`` for the default handler too, so ``/me`` and ``/me/apps`` keep reaching it.

    Access logs go to a log group of their own. They use the standard JSON fields, which
    name the resource template and never the query string or body, so no SAML message or
    password can end up in them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        prefix_handlers: Mapping[str, lambda_.IFunction] | None = None,
        throttle_rate: float,
        throttle_burst: int,
        custom_domain: CustomDomain | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            description="serverless IdP: sign-in pages, SAML endpoints, admin console",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # The API Gateway CloudWatch role is an account-wide setting; a product deployed
            # into a customer's account must not replace the one the account already has.
            cloud_watch_role=False,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=throttle_rate,
                throttling_burst_limit=throttle_burst,
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
        self._acknowledge_findings()

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
        return domain

    def _acknowledge_findings(self) -> None:
        reasons = {
            "AwsSolutions-APIG2": (
                "The routes take HTML form posts and SAML messages that API Gateway models cannot "
                "describe; every route parses and validates its input in the function."
            ),
            "AwsSolutions-APIG3": (
                "WAF is optional in the design (rate rules added by a later issue behind a context "
                "flag); until then the stage throttling bounds the request rate."
            ),
            "AwsSolutions-APIG4": (
                "This API is the identity provider itself: its pages are where users authenticate. "
                "The function enforces sessions, CSRF tokens and admin rights on every protected route."
            ),
            "AwsSolutions-COG4": (
                "No Cognito: the identity provider authenticates users itself (see AwsSolutions-APIG4)."
            ),
            "AwsSolutions-APIG6": (
                "Execution logging needs the account-wide API Gateway CloudWatch role, which this stack "
                "must not replace in a customer's account; access logs record every request instead."
            ),
        }
        for rule_id, reason in reasons.items():
            Validations.of(self.rest_api).acknowledge(Acknowledgment(id=rule_id, reason=reason))
