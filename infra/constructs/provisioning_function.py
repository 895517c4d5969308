"""The provisioning function: the console's user stores (``/admin/directories``) and the
scheduled imports, with the EventBridge rule that calls it every few minutes."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from constructs import Construct

from idp_core.config import MessagingConfig
from idp_core.directories.schedule import TICK_SECONDS
from infra.constructs.function import ADMIN_GUARD_TABLES, Access, FunctionSpec, IdpFunction, SharedInputs
from infra.constructs.network import ImportedNetwork
from infra.layer_build import REPO_ROOT

FUNCTION_DIR = REPO_ROOT / "functions" / "provisioning"

# Directories: their settings, sealed bind passwords and import state. Users and groups:
# what the imports create, update and disable. Sessions: a disabled user's sessions end, and
# the console's admin check refreshes the admin's session. Audit: every change and run.
# Directory entries: the collisions imports meet, and the admin's clearing of an entry.
# Factors and settings are only read, by the admin pages' guard (ADMIN_GUARD_TABLES). It
# issues no assertion, checks no second factor and changes no app or policy: apps, tokens,
# transactions, rate limits and devices stay out of its reach.
PROVISIONING_TABLES = {
    **ADMIN_GUARD_TABLES,
    "directories": Access.READ_WRITE,
    "users": Access.READ_WRITE,
    "groups": Access.READ_WRITE,
    "sessions": Access.READ_WRITE,
    "audit": Access.READ_WRITE,
    "directory_entries": Access.READ_WRITE,
}
# An import of a large directory pages through it for minutes; Lambda's maximum.
TIMEOUT = Duration.minutes(15)
MEMORY_MB = 512


class ProvisioningFunction(IdpFunction):
    """The shared function shape, plus sealing and unsealing directory bind passwords with
    the data key (only under the ``{directory}`` encryption context), sending welcome
    e-mails from the configured sender only, and the rule whose tick runs the due imports.

    Scheduled imports use one rule for every directory: each directory's own schedule is
    in the directories table, and the function runs those that are due at each tick
    (``idp_core.directories.scheduling``), so no rule is created or changed at run time.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: SharedInputs,
        data_key: kms.IKey,
        messaging: MessagingConfig,
        network: ImportedNetwork | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            spec=FunctionSpec(
                service_name="provisioning",
                code_dir=FUNCTION_DIR,
                description="serverless IdP: LDAP and Active Directory user stores, scheduled imports",
                table_access=PROVISIONING_TABLES,
                memory_size=MEMORY_MB,
                timeout=TIMEOUT,
            ),
            shared=shared,
            data_key_id=data_key.key_id,
            messaging=messaging,
            network=network,
        )
        self.allow_directory_data_key(
            data_key, ["kms:Encrypt", "kms:Decrypt"], "SealBindPasswordsWithTheDataKey"
        )
        self.allow_email(messaging)
        # A tick that fails is not retried: the next one comes within minutes, and a retry
        # could only overlap it.
        self.entry.configure_async_invoke(retry_attempts=0, max_event_age=Duration.seconds(TICK_SECONDS))
        self.schedule = events.Rule(
            self,
            "ImportTick",
            description="Runs the scheduled directory imports that are due",
            schedule=events.Schedule.rate(Duration.seconds(TICK_SECONDS)),
            targets=[targets.LambdaFunction(self.entry, retry_attempts=0)],
        )
