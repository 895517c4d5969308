"""DynamoDB items, one table per concern (DESIGN.md "Data").

Table names are bound at cold start from the settings' ``tables`` by ``bind_tables``; the
model classes themselves carry no environment lookups.
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from functools import cache
from typing import Any

import botocore.loaders
import botocore.session
import pynamodb.connection.base
import pynamodb.settings
from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.connection.table import TableConnection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from idp_core import aws
from idp_core.config import Tables, TableSet

_shared_loader = botocore.loaders.create_loader()


def _session_with_shared_loader(env_vars: dict | None = None) -> botocore.session.Session:
    session = botocore.session.get_session(env_vars)
    session.register_component("data_loader", _shared_loader)
    return session


# PynamoDB gives each model (and each thread) its own botocore session, and each session
# would parse the DynamoDB service model again: about 150 ms per table on a Lambda's first
# request. One shared loader parses it once per process.
pynamodb.connection.base.get_session = _session_with_shared_loader

# PynamoDB's own defaults (15 s to connect, 30 s to read, 3 retries) outlast a function's
# timeout; its calls get the bounds of every other AWS call (idp_core.aws). Set before the
# models below exist: PynamoDB copies its settings into each model's Meta when the class
# is made, and a bare Connection() reads them when it is made.
pynamodb.settings.default_settings_dict.update(aws.pynamodb_settings())

# Every factor that can fail has its own consecutive-failure counter (S2: a success resets
# only its own count); the hard lock counts their sum (S1). ``idp_core.lockout`` moves them.
FACTORS = ("password", "totp", "sms", "email", "backup", "token", "webauthn")


class SharedConnectionModel(Model):
    """A model whose table operations go through the process's one DynamoDB connection
    (``connection``): one botocore client per execution environment, reused by every model,
    batch and transaction, instead of one per model class."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        table = super()._get_connection()
        shared = connection()
        if table.connection is not shared:
            meta = table.connection.get_meta_table(cls.Meta.table_name)
            with suppress(ValueError):  # Already known from an earlier binding of the table.
                shared.add_meta_table(meta)
            table.connection = shared
        return table


class Lockable(SharedConnectionModel):
    """The lockout counters of anything a credential unlocks: a user, or a directory entry
    not registered here (``DirectoryEntry``). Only ``idp_core.lockout`` changes them."""

    # Consecutive failures per factor, and their sum (the hard limit's count).
    fail_password = NumberAttribute(default=0)
    fail_totp = NumberAttribute(default=0)
    fail_sms = NumberAttribute(default=0)
    fail_email = NumberAttribute(default=0)
    fail_backup = NumberAttribute(default=0)
    fail_token = NumberAttribute(default=0)
    fail_webauthn = NumberAttribute(default=0)
    fail_total = NumberAttribute(null=True)
    # Per factor, the count at which its next temporary lock starts (absent: the first one).
    limit_password = NumberAttribute(null=True)
    limit_totp = NumberAttribute(null=True)
    limit_sms = NumberAttribute(null=True)
    limit_email = NumberAttribute(null=True)
    limit_backup = NumberAttribute(null=True)
    limit_token = NumberAttribute(null=True)
    limit_webauthn = NumberAttribute(null=True)
    # When the last attempt was reserved: a reservation that reached a limit and was never
    # finished (its process died) is recognised by its age.
    last_attempt_at = NumberAttribute(null=True)
    # The random id of the last attempt reserved, and those of the attempts reserved lately in
    # four sets by minute: a reservation that botocore sends again because its answer was lost
    # finds its own id and is not counted twice.
    last_attempt_id = UnicodeAttribute(null=True)
    attempt_ids_0 = UnicodeSetAttribute(null=True)
    attempt_ids_1 = UnicodeSetAttribute(null=True)
    attempt_ids_2 = UnicodeSetAttribute(null=True)
    attempt_ids_3 = UnicodeSetAttribute(null=True)
    # Temporary lockout (Keycloak model) ends at this time; ``locked`` is the hard lock after
    # the maximum number of failures, lifted only by an admin.
    locked_until = NumberAttribute(null=True)
    locked = BooleanAttribute(default=False)
    disabled = BooleanAttribute(default=False)

    def total_failures(self) -> int:
        # Items written before ``fail_total`` existed have only the per-factor counters.
        if self.fail_total is not None:
            return int(self.fail_total)
        return sum(int(getattr(self, f"fail_{factor}") or 0) for factor in FACTORS)


class UsersBySource(GlobalSecondaryIndex["User"]):
    """The users of one source (e.g. ``ldap:corp``): a full import reads its directory's users
    with one query instead of a scan of every user.

    Only the attributes an import compares are projected: the counters a sign-in moves
    (failures, networks, devices) are not, so their updates do not write the index too, and
    no password hash is copied into it.
    """

    class Meta:
        index_name = "by_source"
        projection = IncludeProjection(
            ["display_username", "email", "display_name", "groups", "disabled", "directory_id"]
        )

    source = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute(range_key=True)


class UsersByEmail(GlobalSecondaryIndex["User"]):
    """The users with one e-mail address, for "Forgot password?", which takes an address as
    well as a username (idp_core.password_reset). Sparse (a user without an address is not in
    it) and keys only: no update but a change of address writes it."""

    class Meta:
        index_name = "by_email"
        projection = KeysOnlyProjection()

    email = UnicodeAttribute(hash_key=True)


# The one ``listing`` value of every user: the by_name index keeps them all under it, sorted
# by username, so a page of the users list is one Query (idp_core.user_listing).
USER_LISTING = "user"


class UsersByName(GlobalSecondaryIndex["User"]):
    """Every user by username, for the paged and searchable users list. Keys only: written
    when a user is created or deleted, never by the updates of a sign-in."""

    class Meta:
        index_name = "by_name"
        projection = KeysOnlyProjection()

    listing = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute(range_key=True)


class User(Lockable):
    class Meta:
        table_name = "unbound-users"

    # NFKC + casefold of the username (S3): one item, one counter, whatever the spelling.
    username = UnicodeAttribute(hash_key=True)
    display_username = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    display_name = UnicodeAttribute(null=True)
    # A contact number (E.164) that admins keep; the SMS set-up offers it. Codes go only to a
    # factor's own number.
    phone = UnicodeAttribute(null=True)
    password_hash = UnicodeAttribute(null=True)
    is_admin = BooleanAttribute(default=False)
    groups = UnicodeSetAttribute(null=True)
    source = UnicodeAttribute(default="local")
    by_source = UsersBySource()
    by_email = UsersByEmail()
    # USER_LISTING for every user written by this version (null for older items, which the
    # by_name index does not hold until they are written again: see idp_core.user_listing).
    listing = UnicodeAttribute(null=True, default=USER_LISTING)
    by_name = UsersByName()
    # The stable id of the directory entry a directory user came from (entryUUID, objectGUID):
    # a new entry that takes over the same username is not this user (S27).
    directory_id = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()

    # Registered devices, changed only together with a device item in one transaction, so
    # the cap holds under parallel sign-ins (idp_core.adaptive.devices).
    device_count = NumberAttribute(default=0)
    # Raised when the user is disabled or a factor changes: a device trusted under an older
    # value is no longer trusted.
    trust_epoch = NumberAttribute(default=0)
    # The networks (IPv4 /24, IPv6 /64) of the user's recent successful sign-ins, newest last:
    # a sign-in from any other is a behaviour change for the adaptive policies.
    known_networks = ListAttribute[str](null=True)
    # Set when an admin starts deleting the user (idp_core.account_deletion.delete_user): the item
    # stays, disabled, until everything of the user is gone, so the name cannot be taken
    # meanwhile and a deletion that fails half way is finished by deleting again.
    deleting_since = NumberAttribute(null=True)
    # Set when an admin resets the user's second factors (idp_core.account_deletion.reset_second_factors):
    # while they have no active factor, the next sign-in must set one up whatever the MFA
    # settings say, so the password alone never opens the account after a reset.
    must_enrol = BooleanAttribute(null=True)

    def group_names(self) -> list[str]:
        return sorted(self.groups or ())


class Group(SharedConnectionModel):
    class Meta:
        table_name = "unbound-groups"

    name = UnicodeAttribute(hash_key=True)
    display_name = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    disabled = BooleanAttribute(default=False)
    source = UnicodeAttribute(default="local")
    created_at = NumberAttribute()


class RoleMapping(MapAttribute[str, str]):
    """One IAM role given to the members of one group."""

    role = UnicodeAttribute()  # role name, or a full role ARN
    group = UnicodeAttribute()
    # The AWS account of the role; None (mappings stored before accounts could differ): the app's.
    account_id = UnicodeAttribute(null=True)


class App(SharedConnectionModel):
    class Meta:
        table_name = "unbound-apps"

    name = UnicodeAttribute(hash_key=True)
    display_name = UnicodeAttribute()
    kind = UnicodeAttribute(default="aws")
    account_id = UnicodeAttribute()
    provider_name = UnicodeAttribute()
    roles = ListAttribute(of=RoleMapping, default=list)
    session_duration = NumberAttribute(default=3600)
    relay_state = UnicodeAttribute()
    acs_url = UnicodeAttribute()
    audience = UnicodeAttribute()
    disabled = BooleanAttribute(default=False)
    created_at = NumberAttribute()
    # App authentication policy: "Enable 2-Factor Authentication (MFA)" (on for new apps) and
    # the second factors this app accepts (None: every method the MFA settings allow).
    mfa_required = BooleanAttribute(default=True)
    mfa_methods = UnicodeSetAttribute(null=True)
    # IAM Identity Center's strongest setting: only phishing-resistant methods (security keys
    # and passkeys) count for this app, whatever its list says.
    phishing_resistant_only = BooleanAttribute(default=False)
    # The adaptive policy (IP lists, devices) every sign-in and launch of this app passes.
    adaptive_policy = UnicodeAttribute(null=True)
    # A SAML service provider's settings (kind "saml"), as JSON: idp_core.saml_apps.SpConfig.
    sp = UnicodeAttribute(null=True)


class SessionsByUser(GlobalSecondaryIndex["Session"]):
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    username = UnicodeAttribute(hash_key=True)


class Session(SharedConnectionModel):
    class Meta:
        table_name = "unbound-sessions"

    # SHA-256 of the cookie value (S13): a table dump yields no usable session.
    id_hash = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute()
    by_user = SessionsByUser()
    created_at = NumberAttribute()
    last_seen_at = NumberAttribute()
    # DynamoDB TTL attribute; the code also checks it because TTL deletion lags.
    expires_at = NumberAttribute()
    csrf_token = UnicodeAttribute()
    # The factors this session has proven, e.g. ["password", "mfa:totp"], those still owed
    # ("pending:mfa") and the directory that checked the password ("ldap:corp"): see sessions.
    factors = UnicodeSetAttribute(null=True)
    # When this session last proved a second factor: app launches that require MFA, the
    # admin console and factor changes (S10) look at it.
    second_factor_at = NumberAttribute(null=True)
    # When this session last proved each method ({"totp": epoch seconds, ...}): factor changes
    # and the admin console ask for a fresh proof of the user's strongest tier (S28).
    second_factor_proofs = MapAttribute[str, float](null=True)
    source_ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)


class KeyValue(SharedConnectionModel):
    """Small named settings: the IdP certificate, later policies and MFA settings."""

    class Meta:
        table_name = "unbound-settings"

    name = UnicodeAttribute(hash_key=True)
    value = UnicodeAttribute()
    updated_at = NumberAttribute()


class AuditEvent(SharedConnectionModel):
    class Meta:
        table_name = "unbound-audit"

    day = UnicodeAttribute(hash_key=True)  # YYYY-MM-DD (UTC)
    event_id = UnicodeAttribute(range_key=True)  # zero-padded epoch ms + random suffix: sorts by time
    at = NumberAttribute()
    type = UnicodeAttribute()
    outcome = UnicodeAttribute()
    actor = UnicodeAttribute(null=True)
    subject = UnicodeAttribute(null=True)
    source_ip = UnicodeAttribute(null=True)
    details = MapAttribute[str, str](null=True)
    expires_at = NumberAttribute()


class Factor(SharedConnectionModel):
    """One second factor of one user: an authenticator app, a phone, an e-mail address,
    a set of backup codes or a hardware OATH token."""

    class Meta:
        table_name = "unbound-factors"

    username = UnicodeAttribute(hash_key=True)
    factor_id = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()  # totp | sms | email | backup | token
    label = UnicodeAttribute()
    # "pending" until the first valid code (S11), then "active".
    status = UnicodeAttribute(default="pending")
    is_default = BooleanAttribute(default=False)
    created_at = NumberAttribute()
    confirmed_at = NumberAttribute(null=True)
    last_used_at = NumberAttribute(null=True)
    # KMS ciphertext (base64) of the TOTP/HOTP secret; context {user, factor} (S6).
    secret = UnicodeAttribute(null=True)
    digits = NumberAttribute(null=True)
    period = NumberAttribute(null=True)
    # The last accepted TOTP time step, advanced only by a conditional write (S6).
    last_used_step = NumberAttribute(null=True)
    counter = NumberAttribute(null=True)  # HOTP moving factor
    phone = UnicodeAttribute(null=True)  # E.164
    email = UnicodeAttribute(null=True)
    # Hashes of the unused backup codes; a use removes one with a conditional DELETE (S12).
    code_hashes = UnicodeSetAttribute(null=True)
    token_serial = UnicodeAttribute(null=True)
    # A security key or passkey (idp_core.mfa.webauthn): its credential id and COSE public key
    # (base64url), the sign counter it last answered with (advanced only by a conditional
    # write), its model (AAGUID), how it connects, and whether it last verified the user.
    credential_id = UnicodeAttribute(null=True)
    public_key = UnicodeAttribute(null=True)
    sign_count = NumberAttribute(null=True)
    aaguid = UnicodeAttribute(null=True)
    transports = UnicodeSetAttribute(null=True)
    user_verified = BooleanAttribute(null=True)
    attestation_format = UnicodeAttribute(null=True)


class OathToken(SharedConnectionModel):
    """A hardware OATH token imported by an admin, assigned to at most one user."""

    class Meta:
        table_name = "unbound-tokens"

    serial = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # totp | hotp
    secret = UnicodeAttribute()  # KMS ciphertext (base64)
    digits = NumberAttribute(default=6)
    period = NumberAttribute(default=30)
    counter = NumberAttribute(default=0)
    assigned_to = UnicodeAttribute(null=True)
    imported_at = NumberAttribute()


class Device(SharedConnectionModel):
    """A browser a user signed in from: a long-lived random id in its own cookie, stored
    only as a hash (like the session), with a readable summary."""

    class Meta:
        table_name = "unbound-devices"

    username = UnicodeAttribute(hash_key=True)
    # SHA-256 of the device cookie: the sign-in finds the item by key, in its BatchGetItem.
    key_hash = UnicodeAttribute(range_key=True)
    # A short id for pages, URLs and the CLI; never the cookie or its hash.
    device_id = UnicodeAttribute()
    name = UnicodeAttribute()
    browser = UnicodeAttribute(null=True)
    os = UnicodeAttribute(null=True)
    first_seen_at = NumberAttribute()
    last_seen_at = NumberAttribute()
    last_ip = UnicodeAttribute(null=True)
    # Trusted until this time, while the user's trust_epoch still equals ``trust_epoch``.
    trusted_until = NumberAttribute(null=True)
    trust_epoch = NumberAttribute(null=True)


class Directory(SharedConnectionModel):
    """An LDAP or Active Directory user store: its settings (``DirectorySettings`` as JSON),
    its sealed bind password and the state of its imports."""

    class Meta:
        table_name = "unbound-directories"

    name = UnicodeAttribute(hash_key=True)
    settings = UnicodeAttribute()
    # KMS ciphertext (base64) of the service account's password; context {"directory": name}.
    bind_password = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    # Where the next incremental import starts: the highest modifyTimestamp (OpenLDAP) or
    # uSNChanged (AD) the last complete run saw.
    watermark = UnicodeAttribute(null=True)
    # The counts of the last run (JSON: created, updated, disabled, unchanged, errors, ...).
    last_run = UnicodeAttribute(null=True)
    # Scheduled imports (idp_core.directories.scheduling): when the last scheduled run
    # started, when the last full run finished, and until when a run holds the lock.
    last_scheduled_at = NumberAttribute(null=True)
    last_full_at = NumberAttribute(null=True)
    running_until = NumberAttribute(null=True)
    # The console's "Import now": a run the next tick starts whatever the schedule, when it
    # was asked for, whether full, and by which admin (the run's audit events name them).
    import_requested_at = NumberAttribute(null=True)
    import_requested_full = BooleanAttribute(null=True)
    import_requested_by = UnicodeAttribute(null=True)
    # The last run that failed (JSON: failed_at, full, reason), until a run succeeds: a run
    # the console requested ends after the admin's request did, so its page shows the reason.
    last_failure = UnicodeAttribute(null=True)


class DirectoryEntry(Lockable):
    """A directory entry that met this IdP without being one of its users (S27, S29): the
    failed sign-ins of an entry not registered here (counted without creating a user), and
    a name collision with a user of another source, kept for the admins to resolve."""

    class Meta:
        table_name = "unbound-directory-entries"

    source = UnicodeAttribute(hash_key=True)  # the directory's source, e.g. "ldap:corp"
    entry_id = UnicodeAttribute(range_key=True)  # its stable id (entryUUID, objectGUID)
    dn = UnicodeAttribute(null=True)
    # The username the entry maps to, and the name typed last (an alias such as an e-mail).
    username = UnicodeAttribute(null=True)
    typed = UnicodeAttribute(null=True)
    # A collision: the user here the entry would have been, and why it is not them.
    collision_with = UnicodeAttribute(null=True)  # that user's source, e.g. "local"
    collision_reason = UnicodeAttribute(null=True)
    collision_at = NumberAttribute(null=True)
    collisions = NumberAttribute(default=0)


class TransactionsByUser(GlobalSecondaryIndex["Transaction"]):
    """The transactions of one user, for deleting them with the user.

    Their keys derive from session hashes, so nothing else finds them without a scan. Keys
    only: the updates a code causes (tries, sends, the code's hash) change no key and so
    never write the index; only creating and removing a transaction does.
    """

    class Meta:
        index_name = "by_user"
        projection = KeysOnlyProjection()

    username = UnicodeAttribute(hash_key=True)


class Transaction(SharedConnectionModel):
    """A short-lived step of a sign-in or enrollment: the one-time code sent by SMS or
    e-mail is bound to it (S7)."""

    class Meta:
        table_name = "unbound-transactions"

    id_hash = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute()
    by_user = TransactionsByUser()
    purpose = UnicodeAttribute()  # signin | enrol | test | reauth
    session_hash = UnicodeAttribute(null=True)
    factor_id = UnicodeAttribute(null=True)
    code_hash = UnicodeAttribute(null=True)
    code_expires_at = NumberAttribute(null=True)
    tries = NumberAttribute(default=0)
    sends = NumberAttribute(default=0)
    last_sent_at = NumberAttribute(null=True)
    created_at = NumberAttribute()
    expires_at = NumberAttribute()  # DynamoDB TTL
    # A service provider's AuthnRequest being answered (purpose "saml-sso"), as JSON: its ID,
    # the ACS URL chosen from metadata and the RelayState (idp_core.sp_sso.PendingRequest).
    sp_request = UnicodeAttribute(null=True)
    # A browser hand-off of `idp aws login --browser` (idp_core.device_login), as JSON: the
    # app, and where and when the command line asked. Its user code's item names the hand-off.
    handoff = UnicodeAttribute(null=True)
    # The hand-off's SAMLResponse once approved, for one pick-up, as JSON: sealed to the command
    # line's key only (idp_core.handoff_seal), so a reader of the table cannot use it. And when
    # the hand-off may next be polled.
    sealed_saml_response = UnicodeAttribute(null=True)
    next_poll_at = NumberAttribute(null=True)


class RateCounter(SharedConnectionModel):
    """A counter for one rate limit window, e.g. SMS sends to one number today (S9)."""

    class Meta:
        table_name = "unbound-rate-limits"

    key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    last_at = NumberAttribute(null=True)
    expires_at = NumberAttribute()  # DynamoDB TTL: the end of the window


class WebAuthnCredential(SharedConnectionModel):
    """Which user and factor a security key's credential id belongs to: a passkey sign-in
    starts without a username and finds its key here (the key itself is the factor)."""

    class Meta:
        table_name = "unbound-credentials"

    credential_id = UnicodeAttribute(hash_key=True)  # base64url
    username = UnicodeAttribute()
    factor_id = UnicodeAttribute()
    created_at = NumberAttribute()


ALL_MODELS: dict[str, type[Model]] = {
    "users": User,
    "groups": Group,
    "apps": App,
    "sessions": Session,
    "settings": KeyValue,
    "audit": AuditEvent,
    "factors": Factor,
    "tokens": OathToken,
    "transactions": Transaction,
    "rate_limits": RateCounter,
    "devices": Device,
    "directories": Directory,
    "directory_entries": DirectoryEntry,
    "credentials": WebAuthnCredential,
}


def condition_failed(exc: Exception) -> bool:
    """True when a PynamoDB write failed only because its condition did not hold."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def new_transaction() -> TransactWrite:
    """A TransactWriteItems on the shared connection, with an idempotency token: when botocore
    retries one whose answer it did not get (a read timeout), DynamoDB recognises the retry
    instead of failing its conditions against the first attempt's own writes."""
    return TransactWrite(connection=connection(), client_request_token=secrets.token_hex(16))


def connection() -> pynamodb.connection.Connection:
    """One PynamoDB connection (and botocore client) per process for the calls that go around
    the models' own: batches across tables, transactions, updates that return a refused item.
    Keyed by the endpoint, region and read timeout, like ``idp_core.aws.client``."""
    return _connection(
        os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_DEFAULT_REGION"), aws.read_timeout_seconds()
    )


@cache
def _connection(
    endpoint_url: str | None, region: str | None, read_timeout: float
) -> pynamodb.connection.Connection:
    return pynamodb.connection.Connection(read_timeout_seconds=read_timeout)


def bind_tables(tables: TableSet) -> None:
    """Point the models of ``tables`` at their deployed tables (called once at cold start). A
    function's settings name only the tables its role grants: the other models keep their
    "unbound-" names, so using one fails at once instead of reaching a table by accident."""
    for concern, name in tables.by_concern().items():
        model = ALL_MODELS[concern]
        model.Meta.table_name = name
        model._connection = None  # PynamoDB caches the connection with the old name.


def create_tables(tables: Tables) -> None:
    """Create the tables with the same keys as infra/; used by the local stack and tests."""
    bind_tables(tables)
    for model in ALL_MODELS.values():
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)


# Keys of up to 100 items a BatchGetItem may ask for.
MAX_BATCH_KEYS = 100


def get_items(*wanted: tuple[type[Model], tuple[str, ...], bool]) -> list[Any]:
    """Several items, possibly of several tables, in one BatchGetItem request.

    ``wanted`` holds (model, string key values, strongly consistent?) per item; the answer
    has the items in that order, None for an item that does not exist. The sign-in reads
    its user and app, and the challenge its factor and app, this way: one round trip
    instead of two.
    """
    if not 0 < len(wanted) <= MAX_BATCH_KEYS:
        raise ValueError(f"between 1 and {MAX_BATCH_KEYS} items, got {len(wanted)}")
    request: dict[str, dict[str, Any]] = {}
    key_names: dict[str, list[str]] = {}
    for model, key, consistent in wanted:
        names = _key_names(model)
        if len(names) != len(key):
            raise ValueError(f"{model.__name__} has {len(names)} key attribute(s), got {len(key)} value(s)")
        key_names[model.Meta.table_name] = names
        table = request.setdefault(model.Meta.table_name, {"Keys": [], "ConsistentRead": False})
        table["Keys"].append({name: {"S": value} for name, value in zip(names, key, strict=True)})
        table["ConsistentRead"] = table["ConsistentRead"] or consistent
    found: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    client: Any = connection().client
    while request:
        answer = client.batch_get_item(RequestItems=request)
        for table_name, items in answer.get("Responses", {}).items():
            for item in items:
                found[(table_name, tuple(item[name]["S"] for name in key_names[table_name]))] = item
        # DynamoDB may leave keys for later under load; ask for those again.
        request = answer.get("UnprocessedKeys") or {}
    results = []
    for model, key, _ in wanted:
        item = found.get((model.Meta.table_name, tuple(key)))
        results.append(model.from_raw_data(item) if item is not None else None)
    return results


def _key_names(model: type[Model]) -> list[str]:
    range_key = model._range_keyname
    return [str(model._hash_keyname), *([range_key] if range_key else [])]
