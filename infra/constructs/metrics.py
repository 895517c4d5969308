"""The application's metrics (Powertools EMF, namespace ServerlessIdp, one ``service``
dimension per function) as CloudWatch metrics for the alarms and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

NAMESPACE = "ServerlessIdp"
SERVICES = ("sso", "otp", "adaptive", "provisioning")


def app_metric(name: str, service: str, period: Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=cloudwatch.Stats.SUM,
        period=period,
    )


def app_total(
    name: str, period: Duration, *, label: str | None = None, services: Sequence[str] = SERVICES
) -> cloudwatch.MathExpression:
    """``name`` summed over the functions that may emit it; a function that emitted nothing
    in a period counts as zero rather than leaving the sum empty."""
    metrics = {
        f"{name.lower()}{index}": app_metric(name, service, period) for index, service in enumerate(services)
    }
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({key}, 0)" for key in metrics),
        using_metrics=dict(metrics),
        label=label or name,
        period=period,
    )
