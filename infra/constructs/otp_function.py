"""The otp function: second-factor challenge, enrolment and settings (``/mfa``, ``/me/mfa``,
``/admin/mfa``)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from idp_core.config import MessagingConfig
from infra.constructs.function import ADMIN_GUARD_TABLES, Access, FunctionSpec, IdpFunction, SharedInputs
from infra.layer_build import REPO_ROOT

FUNCTION_DIR = REPO_ROOT / "functions" / "otp"


# Groups are the only table it never needs: it does not issue assertions.
OTP_TABLES = {
    "users": Access.READ_WRITE,
    "apps": Access.READ_WRITE,
    "sessions": Access.READ_WRITE,
    "settings": Access.READ_WRITE,
    "audit": Access.READ_WRITE,
    "factors": Access.READ_WRITE,
    "tokens": Access.READ_WRITE,
    "transactions": Access.READ_WRITE,
    "rate_limits": Access.READ_WRITE,
    "directories": ADMIN_GUARD_TABLES["directories"],
    # Registering and removing a security key writes its credential item.
    "credentials": Access.READ_WRITE,
}
# Every SNS resource ARN: topics and platform application endpoints.
ANY_SNS_RESOURCE = "arn:*:sns:*:*:*"


class OtpFunction(IdpFunction):
    """The shared function shape, plus exactly what second factors need.

    - SMS: ``sns:Publish`` to phone numbers only. A direct SMS publish has no resource ARN,
      so IAM evaluates it against ``*``; a second statement denies publishing to any SNS
      ARN, which leaves topics and mobile push endpoints out of reach.
    - E-mail: ``ses:SendEmail``/``ses:SendRawEmail`` on the configured sender identity only,
      and only with that From address.
    - Secrets: encrypt/decrypt on the data key only, and only when the encryption context
      has exactly the keys ``user`` and ``factor`` (TOTP seeds, token secrets). No signing.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: SharedInputs,
        data_key: kms.IKey,
        messaging: MessagingConfig,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            spec=FunctionSpec(
                service_name="otp",
                code_dir=FUNCTION_DIR,
                description="serverless IdP: second factors (challenge, enrolment, settings)",
                table_access=OTP_TABLES,
            ),
            shared=shared,
            data_key_id=data_key.key_id,
            messaging=messaging,
        )
        self._allow_sms()
        self.allow_email(messaging)
        # Enrolment seals new seeds under the factor data key (generated once, then unwrapped at
        # most every five minutes); seeds still in the KMS form are only read.
        self.allow_factor_data_key(
            data_key, ["kms:GenerateDataKey", "kms:Decrypt"], "WrapFactorSecretsWithTheDataKey"
        )
        self.allow_data_key(data_key, ["kms:Decrypt"], "ReadSecretsWithTheDataKey")

    def _allow_sms(self) -> None:
        self.allow(
            iam.PolicyStatement(
                sid="PublishSmsToPhoneNumbers",
                actions=["sns:Publish"],
                resources=["*"],
            )
        )
        self.allow(
            iam.PolicyStatement(
                sid="NeverPublishToTopicsOrEndpoints",
                effect=iam.Effect.DENY,
                actions=["sns:Publish"],
                resources=[ANY_SNS_RESOURCE],
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "sns:Publish to a phone number has no resource ARN, so IAM can only grant it on '*'; "
                    "the role's explicit Deny on arn:aws:sns:*:*:* keeps every topic and push endpoint "
                    "out of reach, leaving direct SMS as the only thing it can publish."
                ),
            )
        )
