"""KMS keys: the SAML signing key and the symmetric data key, with key policies that name
who may use them (S32)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# What the account's administrators (IAM principals the account allows through its own
# policies) may do with either key: describe, enable and disable, rotate, tag, alias, change
# the policy and schedule or cancel deletion, which keeps every deployment manageable and
# passes KMS's lockout check (the principal that creates a key must be able to put its
# policy). No cryptographic operation and no kms:CreateGrant: a grant would hand out
# kms:Sign or kms:Decrypt without touching the policy.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
SIGNING_ACTIONS = ("kms:Sign", "kms:GetPublicKey")


def encryption_context_condition(
    context_keys: Sequence[str], values: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """KMS conditions that admit a request only with exactly these context keys (and, when
    given, these values)."""
    conditions: dict[str, Any] = {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(context_keys)},
        # ForAllValues is also true for a request without any context; this requires one.
        "Null": {"kms:EncryptionContextKeys": "false"},
    }
    if values:
        conditions["StringEquals"] = {f"kms:EncryptionContext:{key}": value for key, value in values.items()}
    return conditions


class Keys(Construct):
    """The private half of the signing key never leaves KMS; the function asks KMS to sign.

    Neither key policy delegates use to IAM (no ``kms:*`` for the account): the sso
    function's role alone may sign, and each function's role may use the data key only for
    its own actions under its own encryption context (``IdpFunction.allow_key`` writes both
    the key's statement and the role's). The operators' CLI gets its few uses of the data key,
    each under its encryption context, from ``OperatorAccess``.
    The account keeps the administration of both keys (``KEY_ADMIN_ACTIONS``), so an
    administrator can always describe, disable, re-enable, re-police or delete them; a change
    of policy is a visible, CloudTrail-logged act, never a side effect of a broad IAM policy.

    Both keys are retained when the stack is deleted or a change replaces them, but not when
    the stack's first creation fails and rolls back (nothing to orphan then): losing the
    signing key breaks every SAML trust the customer has registered, and losing the data key
    makes the encrypted secrets (TOTP seeds, LDAP bind passwords) unrecoverable.
    """

    def __init__(self, scope: Construct, construct_id: str, *, alias_prefix: str) -> None:
        super().__init__(scope, construct_id)
        # Asymmetric KMS keys cannot rotate automatically; rolling the signing key is an
        # explicit admin action because every service provider must trust the new key.
        self.signing_key = self._signing_key(
            "SamlSigningKey",
            "Signs SAML assertions of the serverless IdP (RSA 2048, private key stays in KMS)",
        )
        # The key a rotation switches to (`idp signing-key rotate`), and the next rotation back
        # from: made with the stack, so its policy is as reviewed as the first one's and no
        # operator ever needs kms:CreateKey (a key they made could name themselves as signer).
        self.next_signing_key = self._signing_key(
            "SamlNextSigningKey",
            "Second SAML signing key of the serverless IdP, for key rotations (RSA 2048)",
        )
        self.data_key = kms.Key(
            self,
            "DataKey",
            description="Encrypts secrets of the serverless IdP (TOTP seeds, directory bind passwords)",
            enable_key_rotation=True,
            policy=self._admin_policy(),
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.signing_alias = kms.Alias(
            self,
            "SamlSigningKeyAlias",
            alias_name=f"alias/{alias_prefix}/saml-signing",
            target_key=self.signing_key,
        )
        self.next_signing_alias = kms.Alias(
            self,
            "SamlNextSigningKeyAlias",
            alias_name=f"alias/{alias_prefix}/saml-signing-next",
            target_key=self.next_signing_key,
        )
        self.data_alias = kms.Alias(
            self, "DataKeyAlias", alias_name=f"alias/{alias_prefix}/data", target_key=self.data_key
        )

    @property
    def signing_keys(self) -> tuple[kms.Key, kms.Key]:
        return (self.signing_key, self.next_signing_key)

    def _signing_key(self, construct_id: str, description: str) -> kms.Key:
        return kms.Key(
            self,
            construct_id,
            description=description,
            key_spec=kms.KeySpec.RSA_2048,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            policy=self._admin_policy(),
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )

    @staticmethod
    def _admin_policy() -> iam.PolicyDocument:
        return iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="AccountAdministersTheKey",
                    principals=[iam.AccountRootPrincipal()],
                    actions=list(KEY_ADMIN_ACTIONS),
                    resources=["*"],
                )
            ]
        )
