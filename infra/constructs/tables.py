"""The DynamoDB tables, one per concern, keyed exactly as ``idp_core.models`` expects."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from idp_core.config import Tables as ConfigTables

SESSIONS_BY_USER_INDEX = "by_user"
USERS_BY_SOURCE_INDEX = "by_source"
USERS_BY_EMAIL_INDEX = "by_email"
TRANSACTIONS_BY_USER_INDEX = "by_user"
USERS_BY_NAME_INDEX = "by_name"
# What a directory import compares (idp_core.models.UsersBySource); the counters a sign-in
# moves stay out, so those updates do not write the index as well.
USERS_BY_SOURCE_ATTRIBUTES = [
    "display_username",
    "email",
    "display_name",
    "groups",
    "disabled",
    "directory_id",
]
TTL_ATTRIBUTE = "expires_at"


class Tables(Construct):
    """The tables of ``idp_core.config.Tables``: users, groups, apps, sessions, settings, audit,
    factors, OATH tokens, login transactions, rate limits, the devices users sign in from and
    the LDAP / Active Directory user stores.

    Names are left to CloudFormation so that several stacks can live in one account and
    region; the function finds them through its environment. Every table holds part of the
    identity store or the audit trail, so it is retained when the stack is deleted or a
    change would replace it (but not when the stack's first creation rolls back: nothing to
    orphan then), and DynamoDB's deletion protection refuses a DeleteTable from anyone until
    it is turned off.

    Encryption uses the AWS managed key (aws/dynamodb): every use shows in the customer's
    CloudTrail, there is no key policy to get wrong, and no scheduled key deletion can make
    the identity store unreadable. Secrets inside items (TOTP seeds, bind passwords) are
    additionally encrypted by the application with the customer managed data key.
    """

    def __init__(self, scope: Construct, construct_id: str, *, users_list_index: bool = True) -> None:
        super().__init__(scope, construct_id)
        self.users = self._table("Users", "username")
        self.users.add_global_secondary_index(
            index_name=USERS_BY_SOURCE_INDEX,
            partition_key=dynamodb.Attribute(name="source", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="username", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=USERS_BY_SOURCE_ATTRIBUTES,
        )
        # "Forgot password?" finds a user by e-mail address (idp_core.models.UsersByEmail).
        self.users.add_global_secondary_index(
            index_name=USERS_BY_EMAIL_INDEX,
            partition_key=dynamodb.Attribute(name="email", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        # The users list pages through this index (idp_core.user_listing): every user under one
        # partition value, sorted by username. Keys only, so only creating and deleting a user
        # writes it, never the counters a sign-in moves. Left out only for the first step of an
        # upgrade (infra.settings.Operations.users_list_index).
        if users_list_index:
            self.users.add_global_secondary_index(
                index_name=USERS_BY_NAME_INDEX,
                partition_key=dynamodb.Attribute(name="listing", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name="username", type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.KEYS_ONLY,
            )
        self.groups = self._table("Groups", "name")
        self.apps = self._table("Apps", "name")
        self.sessions = self._table("Sessions", "id_hash", ttl=True)
        self.sessions.add_global_secondary_index(
            index_name=SESSIONS_BY_USER_INDEX,
            partition_key=dynamodb.Attribute(name="username", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.settings = self._table("Settings", "name")
        self.audit = self._table("Audit", "day", sort_key="event_id", ttl=True)
        self.factors = self._table("Factors", "username", sort_key="factor_id")
        self.tokens = self._table("Tokens", "serial")
        self.transactions = self._table("Transactions", "id_hash", ttl=True)
        # Deleting a user deletes their pending codes: their keys derive from session hashes,
        # so only this index finds them without scanning the table. Keys only, so the
        # updates a code causes never write it (idp_core.models.TransactionsByUser).
        self.transactions.add_global_secondary_index(
            index_name=TRANSACTIONS_BY_USER_INDEX,
            partition_key=dynamodb.Attribute(name="username", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        self.rate_limits = self._table("RateLimits", "key", ttl=True)
        # A device stays until its user or an admin removes it (it counts against the
        # adaptive policy's device limit), so it has no TTL.
        self.devices = self._table("Devices", "username", sort_key="key_hash")
        # A directory's settings, its sealed bind password and its import watermark.
        self.directories = self._table("Directories", "name")
        # Directory entries that met the IdP without being its users: the failed sign-ins of
        # an entry not registered here, and name collisions with users of other sources.
        self.directory_entries = self._table("DirectoryEntries", "source", sort_key="entry_id")
        # Security keys' credential ids -> their user and factor, for the passkey sign-in.
        self.credentials = self._table("Credentials", "credential_id")

    def all(self) -> dict[str, dynamodb.Table]:
        """The tables by concern, in the order of ``idp_core.config.Tables``."""
        return {concern: getattr(self, concern) for concern in ConfigTables.concerns()}

    def _table(
        self, construct_id: str, partition_key: str, *, sort_key: str | None = None, ttl: bool = False
    ) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING)
            if sort_key
            else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=TTL_ATTRIBUTE if ttl else None,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            deletion_protection=True,
        )
