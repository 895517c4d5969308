"""DynamoDB items, one table per concern (DESIGN.md "Data").

Table names are bound at cold start from ``Settings.tables`` by ``bind_tables``; the
model classes themselves carry no environment lookups.
"""

from __future__ import annotations

import botocore.loaders
import botocore.session
import pynamodb.connection.base
from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from idp_core.config import Tables

_shared_loader = botocore.loaders.create_loader()


def _session_with_shared_loader(env_vars: dict | None = None) -> botocore.session.Session:
    session = botocore.session.get_session(env_vars)
    session.register_component("data_loader", _shared_loader)
    return session


# PynamoDB gives each model (and each thread) its own botocore session, and each session
# would parse the DynamoDB service model again: about 150 ms per table on a Lambda's first
# request. One shared loader parses it once per process.
pynamodb.connection.base.get_session = _session_with_shared_loader

# Every factor that can fail has its own consecutive-failure counter on the user item
# (S2: a success resets only its own count); the lock looks at their sum (S1).
FACTORS = ("password", "totp", "sms", "email", "backup", "token", "webauthn")


class User(Model):
    class Meta:
        table_name = "unbound-users"

    # NFKC + casefold of the username (S3): one item, one counter, whatever the spelling.
    username = UnicodeAttribute(hash_key=True)
    display_username = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    display_name = UnicodeAttribute(null=True)
    password_hash = UnicodeAttribute(null=True)
    is_admin = BooleanAttribute(default=False)
    disabled = BooleanAttribute(default=False)
    groups = UnicodeSetAttribute(null=True)
    source = UnicodeAttribute(default="local")
    created_at = NumberAttribute()
    updated_at = NumberAttribute()

    fail_password = NumberAttribute(default=0)
    fail_totp = NumberAttribute(default=0)
    fail_sms = NumberAttribute(default=0)
    fail_email = NumberAttribute(default=0)
    fail_backup = NumberAttribute(default=0)
    fail_token = NumberAttribute(default=0)
    fail_webauthn = NumberAttribute(default=0)
    last_failure_at = NumberAttribute(null=True)
    # Temporary lockout (Keycloak model) ends at this time; ``locked`` is the hard lock
    # after the maximum number of failures, lifted only by an admin.
    locked_until = NumberAttribute(null=True)
    locked = BooleanAttribute(default=False)

    def total_failures(self) -> int:
        return sum(int(getattr(self, f"fail_{factor}") or 0) for factor in FACTORS)

    def group_names(self) -> list[str]:
        return sorted(self.groups or ())


class Group(Model):
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


class App(Model):
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


class SessionsByUser(GlobalSecondaryIndex["Session"]):
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    username = UnicodeAttribute(hash_key=True)


class Session(Model):
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
    # The factors this session has proven, e.g. ["password"]; later issues add more.
    factors = UnicodeSetAttribute(null=True)
    source_ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)


class KeyValue(Model):
    """Small named settings: the IdP certificate, later policies and MFA settings."""

    class Meta:
        table_name = "unbound-settings"

    name = UnicodeAttribute(hash_key=True)
    value = UnicodeAttribute()
    updated_at = NumberAttribute()


class AuditEvent(Model):
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


ALL_MODELS: dict[str, type[Model]] = {
    "users": User,
    "groups": Group,
    "apps": App,
    "sessions": Session,
    "settings": KeyValue,
    "audit": AuditEvent,
}


def condition_failed(exc: Exception) -> bool:
    """True when a PynamoDB write failed only because its condition did not hold."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def bind_tables(tables: Tables) -> None:
    """Point every model at its deployed table (called once at cold start)."""
    for concern, model in ALL_MODELS.items():
        model.Meta.table_name = getattr(tables, concern)
        model._connection = None  # PynamoDB caches the connection with the old name.


def create_tables(tables: Tables) -> None:
    """Create the tables with the same keys as infra/; used by the local stack and tests."""
    bind_tables(tables)
    for model in ALL_MODELS.values():
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
