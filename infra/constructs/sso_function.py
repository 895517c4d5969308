"""The sso function: sign-in, sessions, SAML issuing and metadata, the admin console."""

from __future__ import annotations

from aws_cdk import Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from idp_core.config import ENV_NEXT_SIGNING_KEY_ID, MessagingConfig
from infra.constructs.function import Access, FunctionSpec, IdpFunction, SharedInputs
from infra.constructs.keys import SIGNING_ACTIONS
from infra.constructs.network import ImportedNetwork
from infra.constructs.tables import USERS_BY_EMAIL_INDEX, USERS_BY_NAME_INDEX
from infra.layer_build import REPO_ROOT

FUNCTION_DIR = REPO_ROOT / "functions" / "sso"

# The sso function owns accounts, apps, sessions and the audit trail. It checks the answer
# to the second-factor challenge (idp_core.routing), which spends a TOTP step, a backup
# code, an HOTP counter or a sent code. It applies the apps' adaptive policies at sign-in,
# which registers and recognises devices (idp_core.adaptive). It sends the adaptive
# policies' e-mail alerts and the password reset links, which anyone may ask for: the rate
# counters limit those per user and per source address. It reads the directories (LDAP /
# Active Directory user stores) and unseals their bind passwords to sign users in through
# them; their settings are changed by admins (the CLI), not by the sign-in.
SSO_TABLES = {
    "users": Access.READ_WRITE,
    "groups": Access.READ_WRITE,
    "apps": Access.READ_WRITE,
    "sessions": Access.READ_WRITE,
    "settings": Access.READ_WRITE,
    "audit": Access.READ_WRITE,
    "transactions": Access.READ_WRITE,
    "factors": Access.READ_WRITE,
    "tokens": Access.READ_WRITE,
    "devices": Access.READ_WRITE,
    "directories": Access.READ,
    # Sign-ins count the failures of directory entries not registered here, and keep the
    # name collisions they meet (S27, S29).
    "directory_entries": Access.READ_WRITE,
    # A passkey sign-in finds its key's owner here; deleting a user forgets their keys.
    "credentials": Access.READ_WRITE,
    "rate_limits": Access.READ_WRITE,
}


class SsoFunction(IdpFunction):
    """The shared function shape, plus signing with the SAML signing key, reading (never
    sealing) TOTP and token secrets and directory bind passwords with the data key, each only
    under its own encryption context, and sending the adaptive policies' e-mail alerts from the
    configured sender only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: SharedInputs,
        signing_key: kms.IKey,
        next_signing_key: kms.IKey,
        data_key: kms.IKey,
        messaging: MessagingConfig,
        network: ImportedNetwork | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            spec=FunctionSpec(
                service_name="sso",
                code_dir=FUNCTION_DIR,
                description="serverless IdP: sign-in, sessions, SAML issuing, metadata",
                table_access=SSO_TABLES,
            ),
            shared=shared,
            signing_key_id=signing_key.key_id,
            messaging=messaging,
            # It binds to the directories at sign-in, so it runs where they are reachable.
            network=network,
        )
        # The only principal the signing keys' policies let sign (S32): the deployment's two
        # keys, of which a key rotation (idp_core.saml.signing_keys) chooses the one in use.
        self.allow_key(signing_key, "SignSamlAssertions", list(SIGNING_ACTIONS))
        self.allow_key(next_signing_key, "SignSamlAssertionsWithTheNextKey", list(SIGNING_ACTIONS))
        self.function.add_environment(ENV_NEXT_SIGNING_KEY_ID, next_signing_key.key_id)
        self.allow_data_key(data_key, ["kms:Decrypt"], "ReadSecretsWithTheDataKey")
        # Unwraps the factor data key (at most every five minutes) to check and rewrap seeds.
        self.allow_factor_data_key(data_key, ["kms:Decrypt"], "UnwrapFactorSecretsKey")
        self.allow_directory_data_key(data_key, ["kms:Decrypt"], "ReadBindPasswordsWithTheDataKey")
        self.allow_email(messaging)
        # "Forgot password?" finds the user of an e-mail address; no other function needs to.
        self.allow(
            iam.PolicyStatement(
                sid="FindUsersByEmail",
                actions=["dynamodb:Query"],
                resources=[Fn.join("", [shared.tables.users.table_arn, f"/index/{USERS_BY_EMAIL_INDEX}"])],
            )
        )
        # The console's users list pages through the users by name (idp_core.user_listing).
        self.allow(
            iam.PolicyStatement(
                sid="PageThroughTheUsersByName",
                actions=["dynamodb:Query"],
                resources=[Fn.join("", [shared.tables.users.table_arn, f"/index/{USERS_BY_NAME_INDEX}"])],
            )
        )
