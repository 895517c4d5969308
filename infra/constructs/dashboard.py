"""The CloudWatch dashboard: the sign-in funnel and where time goes."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.metrics import app_total

PERIOD = Duration.minutes(5)
PERCENTILES = ("p50", "p90", "p99")
# The sign-in funnel, in order: the first factor, the second, the SAML Response issued.
FUNNEL = (
    ("SignInPasswordAccepted", "Password accepted"),
    ("SecondFactorAccepted", "Second factor accepted"),
    ("AssertionIssued", "Assertion issued"),
)
# What fell out of the funnel, and why.
FUNNEL_LOSSES = (
    ("SignInPasswordRefused", "Password refused"),
    ("SecondFactorRefused", "Second factor refused"),
    ("AssertionRefused", "Assertion refused (AWS rules)"),
    ("AdaptiveDenied", "Denied by an adaptive policy"),
    ("AccountLocked", "Accounts locked"),
)


class Dashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        stage: apigateway.Stage,
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        funnel = [app_total(name, PERIOD, label=label) for name, label in FUNNEL]
        losses = [app_total(name, PERIOD, label=label) for name, label in FUNNEL_LOSSES]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.days(1),
            widgets=[
                [
                    cloudwatch.SingleValueWidget(
                        title="Sign-in funnel (totals over the time range)",
                        metrics=funnel,
                        set_period_to_time_range=True,
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="Sign-in funnel", left=funnel, stacked=False, width=12, height=6
                    ),
                ],
                [
                    cloudwatch.GraphWidget(title="Refusals and lockouts", left=losses, width=12, height=6),
                    cloudwatch.GraphWidget(
                        title="API Gateway latency (ms)",
                        left=[
                            stage.metric_latency(
                                period=PERIOD, statistic=percentile, label=f"API {percentile}"
                            )
                            for percentile in PERCENTILES
                        ],
                        width=12,
                        height=6,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title=f"{service} function duration (ms)",
                        left=[
                            function.metric_duration(period=PERIOD, statistic=percentile, label=percentile)
                            for percentile in PERCENTILES
                        ],
                        width=6,
                        height=6,
                    )
                    for service, function in functions.items()
                ],
            ],
        )
