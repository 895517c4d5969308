"""CloudWatch alarms on what an operator must hear about, sent to one encrypted SNS topic."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.constructs.metrics import app_metric, app_total

PERIOD = Duration.minutes(5)
# More than this share of the API's answers are 5xx (in percent), given enough requests
# that one failure among a handful is not an outage.
API_5XX_PERCENT = 5
API_5XX_MIN_REQUESTS = 20
# A burst of accounts locked in 15 minutes is what a password-spraying run looks like.
LOCKOUT_SPIKE = 10
LOCKOUT_PERIOD = Duration.minutes(15)
# SNS stops sending SMS at the account's MonthlySpendLimit; hear about it before.
SMS_SPEND_SHARE = 0.8


class Alarms(Construct):
    """The alarm topic (its own KMS key, TLS only; ``alarm_email`` subscribes an address) and:

    - the API's 5xx rate; each function's errors and throttles; each table's throttled
      requests;
    - from the application's metrics: KMS failures (``KmsError``), a spike of locked
      accounts (``AccountLocked``) and failed directory imports (``ImportFailed``);
    - SMS spend this month near the account's limit (``AWS/SNS SMSMonthToDateSpentUSD``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: apigateway.Stage,
        functions: Mapping[str, lambda_.IFunction],
        tables: Mapping[str, dynamodb.ITable],
        alarm_email: str | None,
        sms_monthly_limit_usd: float,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._topic()
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.alarms: list[cloudwatch.Alarm] = []

        requests = stage.metric_count(period=PERIOD, statistic=cloudwatch.Stats.SUM)
        errors = stage.metric_server_error(period=PERIOD, statistic=cloudwatch.Stats.SUM)
        self._alarm(
            "Api5xxRate",
            cloudwatch.MathExpression(
                expression=f"IF(requests >= {API_5XX_MIN_REQUESTS}, 100 * errors / requests, 0)",
                using_metrics={"requests": requests, "errors": errors},
                label="5xx answers (%)",
                period=PERIOD,
            ),
            threshold=API_5XX_PERCENT,
            description=f"More than {API_5XX_PERCENT}% of the API's answers were 5xx errors",
            evaluation_periods=2,
        )
        for service, function in functions.items():
            name = service.capitalize()
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                description=f"The {service} function failed (an invocation ended in an error)",
            )
            self._alarm(
                f"{name}Throttles",
                function.metric_throttles(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                description=f"Lambda throttled the {service} function (concurrency limit reached)",
            )
        for concern, table in tables.items():
            label = "".join(part.capitalize() for part in concern.split("_"))
            self._alarm(
                f"{label}TableThrottles",
                cloudwatch.MathExpression(
                    expression="FILL(reads, 0) + FILL(writes, 0)",
                    using_metrics={
                        "reads": _table_metric(table, "ReadThrottleEvents"),
                        "writes": _table_metric(table, "WriteThrottleEvents"),
                    },
                    label=f"{concern} throttled requests",
                    period=PERIOD,
                ),
                description=f"DynamoDB throttled requests to the {concern} table",
            )
        self._alarm(
            "KmsErrors",
            app_total("KmsError", PERIOD, label="KMS calls that failed"),
            description="A KMS call failed (signing assertions or reading secrets is at risk)",
        )
        self._alarm(
            "LockoutSpike",
            app_total("AccountLocked", LOCKOUT_PERIOD, label="accounts locked"),
            threshold=LOCKOUT_SPIKE,
            description=f"{LOCKOUT_SPIKE} or more accounts were locked in 15 minutes (password spraying?)",
        )
        self._alarm(
            "ImportFailures",
            app_metric("ImportFailed", "provisioning", PERIOD),
            description="A directory import failed (see the provisioning log and `idp directory show`)",
        )
        spend_threshold = round(sms_monthly_limit_usd * SMS_SPEND_SHARE, 2)
        self._alarm(
            "SmsSpendNearLimit",
            cloudwatch.Metric(
                namespace="AWS/SNS",
                metric_name="SMSMonthToDateSpentUSD",
                statistic=cloudwatch.Stats.MAXIMUM,
                period=Duration.hours(1),
            ),
            threshold=spend_threshold,
            description=(
                f"SMS spend this month reached USD {spend_threshold}, {int(SMS_SPEND_SHARE * 100)}% of the "
                f"account's limit of USD {sms_monthly_limit_usd:g}: SNS stops sending codes at the limit"
            ),
        )

    def _topic(self) -> sns.Topic:
        # CloudWatch publishes alarms to an encrypted topic only with a customer managed key
        # whose policy lets the CloudWatch service use it (the AWS managed aws/sns key does not).
        key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the serverless IdP's alarm notifications",
            enable_key_rotation=True,
        )
        stack = Stack.of(self)
        from_this_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchEncryptsAlarmNotifications",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=from_this_account,
            )
        )
        topic = sns.Topic(
            self, "Topic", display_name="serverless IdP alarms", master_key=key, enforce_ssl=True
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchPublishesAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=from_this_account,
            )
        )
        return topic

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        description: str,
        threshold: float = 1,
        evaluation_periods: int = 1,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        self.alarms.append(alarm)


def _table_metric(table: dynamodb.ITable, name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/DynamoDB",
        metric_name=name,
        dimensions_map={"TableName": table.table_name},
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
    )
