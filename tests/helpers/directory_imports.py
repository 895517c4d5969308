"""Steps for the tests of directory imports run by the provisioning function's schedule: the
event an EventBridge rule delivers, a directory over a slapd subtree that registers its
users, people to import, and what an import left behind (users, audit events)."""

from __future__ import annotations

import time
import uuid
from types import ModuleType
from typing import Any

from idp_core.clock import FakeClock
from idp_core.directories import store
from idp_core.directories.imports import source_of
from idp_core.directories.settings import DirectorySettings
from idp_core.models import AuditEvent, User
from tests.support.slapd import Slapd, Subtree

SERVICE_PASSWORD = "service-secret"


def scheduled_event(clock: FakeClock) -> dict[str, Any]:
    """The event an EventBridge schedule rule delivers to its Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now())),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ServerlessIdp-ProvisioningImportTick"],
        "detail": {},
    }


def tick(handler: ModuleType, clock: FakeClock) -> dict[str, Any]:
    return dict(handler.lambda_handler(scheduled_event(clock), None))


def add_directory(
    slapd: Slapd,
    tree: Subtree,
    name: str,
    schedule: str | None,
    kms: Any,
    key_id: str,
    clock: FakeClock,
    *,
    urls: tuple[str, ...] | None = None,
) -> DirectorySettings:
    """A directory over ``tree``'s people that creates users (auto registration on)."""
    tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)
    settings = DirectorySettings(
        name=name,
        display_name=name.title(),
        kind="openldap",
        urls=urls or (slapd.url,),
        allow_cleartext=True,  # slapd speaks plain LDAP on 127.0.0.1 (S30)
        bind_dn=f"uid=svc,{tree.dn}",
        bases=(tree.people,),
        auto_register=True,
        schedule=schedule,
    )
    return store.save_directory(
        settings, create=True, bind_password=SERVICE_PASSWORD, kms=kms, key_id=key_id, clock=clock
    )


def add_people(tree: Subtree, prefix: str, count: int) -> list[str]:
    return [tree.add_user(f"{prefix}{i}", None, mail=f"{prefix}{i}@example.com") for i in range(count)]


def users_of(name: str) -> dict[str, User]:
    return {user.username: user for user in User.scan(User.source == source_of(name))}


def import_events(name: str) -> list[AuditEvent]:
    events = [e for e in AuditEvent.scan() if e.type == "directory.import" and e.subject == name]
    return sorted(events, key=lambda e: e.at)


def slapd_delete(slapd: Slapd, dn: str) -> None:
    conn = slapd.connection()
    try:
        conn.delete(dn)
    finally:
        conn.unbind()
