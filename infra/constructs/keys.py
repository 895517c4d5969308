"""KMS keys: the SAML signing key and the symmetric data key."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct


class Keys(Construct):
    """The private half of the signing key never leaves KMS; the function asks KMS to sign.

    Both keys are retained when the stack is deleted: losing the signing key breaks every
    SAML trust the customer has registered, and losing the data key makes the encrypted
    secrets (TOTP seeds, LDAP bind passwords) unrecoverable.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Asymmetric KMS keys cannot rotate automatically; rolling the signing key is an
        # explicit admin action because every service provider must trust the new key.
        self.signing_key = kms.Key(
            self,
            "SamlSigningKey",
            description="Signs SAML assertions of the serverless IdP (RSA 2048, private key stays in KMS)",
            key_spec=kms.KeySpec.RSA_2048,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.data_key = kms.Key(
            self,
            "DataKey",
            description="Encrypts secrets of the serverless IdP (TOTP seeds, directory bind passwords)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
