"""Directory imports: a full import of 10,000 users from a real OpenLDAP slapd (size limit 500,
so the import must page) into moto tables, and an incremental run after 100 users changed.

Reports users per second of the full import (target >= 500) and the seconds of the
incremental run (target <= 2). Both depend on the machine; moto is slower than DynamoDB."""

from __future__ import annotations

import time

import boto3
import ldap3

from bench.common import verdict
from idp_core.clock import SYSTEM_CLOCK
from idp_core.directories import imports, store
from idp_core.directories.settings import DirectorySettings
from tests.support.aws import fresh_tables, moto_server
from tests.support.slapd import Slapd

USERS = 10_000
CHANGED = 100
USERS_PER_SECOND_TARGET = 500
INCREMENTAL_SECONDS_TARGET = 2.0
SERVICE_PASSWORD = "service-secret"  # noqa: S105 - a throwaway bench server's account


def _load(server: Slapd, people: str) -> list[str]:
    conn = server.connection()
    dns = []
    try:
        for i in range(USERS):
            uid = f"user{i:05d}"
            dn = f"uid={uid},{people}"
            conn.add(
                dn,
                ["inetOrgPerson"],
                {"uid": uid, "cn": f"User {i}", "sn": "User", "mail": f"{uid}@example.com"},
            )
            dns.append(dn)
        conn.add(f"cn=staff,{server.base_dn}", ["groupOfNames"], {"cn": "staff", "member": dns[: USERS // 2]})
    finally:
        conn.unbind()
    return dns


def run() -> dict:
    with Slapd(size_limit=500) as server, moto_server(), server.subtree() as tree:
        fresh_tables()
        kms = boto3.client("kms")
        key_id = kms.create_key(Description="bench data key")["KeyMetadata"]["KeyId"]
        tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)
        dns = _load(server, tree.people)
        settings = DirectorySettings(
            name="bench",
            display_name="Bench LDAP",
            kind="openldap",
            urls=(server.url,),
            allow_cleartext=True,  # the benchmark's slapd speaks plain LDAP on 127.0.0.1
            bind_dn=f"uid=svc,{tree.dn}",
            bases=(tree.people,),
            auto_register=True,
            # The group sits outside the people: incremental runs look for changed groups there.
            group_base=server.base_dn,
        )
        store.save_directory(settings, create=True, bind_password=SERVICE_PASSWORD, kms=kms, key_id=key_id)

        started = time.perf_counter()
        full = imports.run_import("bench", full=True, kms=kms, clock=SYSTEM_CLOCK)
        full_seconds = time.perf_counter() - started
        if full.created != USERS:
            raise RuntimeError(f"the full import created {full.created} users, not {USERS}: {full.problems}")

        conn = server.connection()
        try:
            for dn in dns[:CHANGED]:
                conn.modify(dn, {"mail": [(ldap3.MODIFY_REPLACE, [f"changed-{dn[4:13]}@example.com"])]})
        finally:
            conn.unbind()
        started = time.perf_counter()
        incremental = imports.run_import("bench", full=False, kms=kms, clock=SYSTEM_CLOCK)
        incremental_seconds = time.perf_counter() - started
        if incremental.updated != CHANGED:
            raise RuntimeError(f"the incremental run updated {incremental.updated} users, not {CHANGED}")

    rate = USERS / full_seconds
    figures = {
        "full_import_users": USERS,
        "full_import_seconds": round(full_seconds, 2),
        "full_import_users_per_second": round(rate, 1),
        "incremental_changed_users": CHANGED,
        "incremental_entries_read": incremental.updated + incremental.unchanged,
        "incremental_seconds": round(incremental_seconds, 2),
    }
    rows = [
        (
            f"LDAP full import of {USERS:,} users (slapd -> moto)",
            f"{rate:.0f} users/s",
            f">= {USERS_PER_SECOND_TARGET}",
            verdict(rate >= USERS_PER_SECOND_TARGET),
        ),
        (
            f"LDAP incremental run, {CHANGED} changed users",
            f"{incremental_seconds:.2f} s",
            f"<= {INCREMENTAL_SECONDS_TARGET:g}",
            verdict(incremental_seconds <= INCREMENTAL_SECONDS_TARGET),
        ),
    ]
    return {"figures": figures, "rows": rows}
