"""Imports of directory users and groups from a real OpenLDAP slapd (size limit 500) into moto:
paging, incremental runs (group-only changes too), deletions, idempotency, a failure half way,
local users kept, auto registration off."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import ldap3
import pytest
from pynamodb.connection.base import Connection

from idp_core import accounts
from idp_core.audit import AuditContext
from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.directories import imports, store
from idp_core.directories import signin as directory_signin
from idp_core.directories.errors import Unreachable
from idp_core.directories.settings import DirectorySettings
from idp_core.models import AuditEvent, Directory, Group, Session, User
from tests.support.slapd import Slapd, Subtree

SERVICE_PASSWORD = "service-secret"
SOURCE = "ldap:corp"
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def add_people(tree: Subtree, count: int, prefix: str = "user") -> list[str]:
    """``count`` inetOrgPersons over one connection (one per entry would take minutes)."""
    conn = tree.server.connection()
    dns = []
    try:
        for i in range(count):
            uid = f"{prefix}{i:05d}"
            dn = f"uid={uid},{tree.people}"
            conn.add(
                dn,
                ["inetOrgPerson"],
                {"uid": uid, "cn": f"User {i}", "sn": "User", "mail": f"{uid}@example.com"},
            )
            dns.append(dn)
    finally:
        conn.unbind()
    return dns


def modify(slapd: Slapd, dn: str, **changes: str) -> None:
    conn = slapd.connection()
    try:
        conn.modify(dn, {name: [(ldap3.MODIFY_REPLACE, [value])] for name, value in changes.items()})
    finally:
        conn.unbind()


def delete(slapd: Slapd, dn: str) -> None:
    conn = slapd.connection()
    try:
        conn.delete(dn)
    finally:
        conn.unbind()


def save_corp(
    slapd: Slapd, tree: Subtree, kms: Any, key_id: str, clock: FakeClock, **options: Any
) -> DirectorySettings:
    """The directory ``corp`` over ``tree``'s people (``options``: its other settings)."""
    settings = DirectorySettings(
        name="corp",
        display_name="Corp LDAP",
        kind="openldap",
        urls=(slapd.url,),
        allow_cleartext=True,  # slapd speaks plain LDAP on 127.0.0.1 (S30)
        bind_dn=f"uid=svc,{tree.dn}",
        bases=(tree.people,),
        **options,
    )
    store.save_directory(
        settings, create=True, bind_password=SERVICE_PASSWORD, kms=kms, key_id=key_id, clock=clock
    )
    return settings


@pytest.fixture
def service_account(ldap_tree: Subtree) -> str:
    """The service account, outside ou=people so that no import finds it."""
    return ldap_tree.add_user("svc", SERVICE_PASSWORD, parent=ldap_tree.dn)


@pytest.fixture
def directory(
    slapd: Slapd,
    ldap_tree: Subtree,
    service_account: str,
    tables: Tables,
    kms: Any,
    key_id: str,
    clock: FakeClock,
) -> str:
    """The directory ``corp`` over the test's subtree, creating users ("auto registration")."""
    save_corp(slapd, ldap_tree, kms, key_id, clock, auto_register=True)
    return "corp"


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every DynamoDB write request this process sends (operation, arguments), in order."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = Connection._make_api_call

    def counting(self: Connection, operation_name: str, operation_kwargs: dict[str, Any]) -> Any:
        if operation_name in WRITES:
            seen.append((operation_name, operation_kwargs))
        return original(self, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", counting)
    return seen


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every DynamoDB request this process sends (operation, arguments), in order."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = Connection._make_api_call

    def recording(self: Connection, operation_name: str, operation_kwargs: dict[str, Any]) -> Any:
        seen.append((operation_name, operation_kwargs))
        return original(self, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", recording)
    return seen


def written_tables(writes: list[tuple[str, dict[str, Any]]]) -> list[str]:
    names: list[str] = []
    for _, kwargs in writes:
        if "TableName" in kwargs:
            names.append(kwargs["TableName"])
        names.extend(kwargs.get("RequestItems", {}))
        names.extend(next(iter(item.values()))["TableName"] for item in kwargs.get("TransactItems", []))
    return names


def run(name: str, kms: Any, clock: FakeClock, *, full: bool) -> imports.RunCounts:
    return imports.run_import(name, full=full, kms=kms, clock=clock, context=AuditContext(actor="admin"))


def own_users() -> dict[str, User]:
    # Pages of 500: a scan of thousands of items in one answer outlasts the clients' read timeout.
    return {user.username: user for user in User.scan(User.source == SOURCE, page_size=500)}


def test_a_full_import_pages_past_the_size_limit_with_groups_and_memberships(
    slapd: Slapd, ldap_tree: Subtree, directory: str, kms: Any, clock: FakeClock
) -> None:
    """Given 5,000 users and a server that answers a plain search with at most 500 entries,
    a full import brings all 5,000, the groups (by cn) and every membership."""
    started = time.monotonic()
    dns = add_people(ldap_tree, 5000)
    ldap_tree.add_group("staff", dns[:3000])
    ldap_tree.add_group("developers", dns[2000:3500])
    ldap_tree.add_group("awsadmins", dns[:25])
    loaded = time.monotonic()
    # The limit is real: without paging the service account gets 500 entries and an error.
    with ldap3.Connection(
        ldap3.Server(slapd.url), user=f"uid=svc,{ldap_tree.dn}", password=SERVICE_PASSWORD, auto_bind=True
    ) as conn:
        conn.search(ldap_tree.people, "(uid=*)", attributes=["uid"])
        assert conn.result["description"] == "sizeLimitExceeded"
        assert len(conn.entries) == 500

    counts = run(directory, kms, clock, full=True)
    imported = time.monotonic()

    assert (counts.created, counts.updated, counts.disabled, counts.unchanged, counts.errors) == (
        5000,
        0,
        0,
        0,
        0,
    )
    assert counts.groups_created == 3
    users = own_users()
    assert len(users) == 5000
    first, middle, last = users["user00000"], users["user02500"], users["user04999"]
    assert first.group_names() == ["awsadmins", "staff"]
    assert middle.group_names() == ["developers", "staff"]
    assert last.groups is None
    assert (first.email, first.display_name, first.password_hash) == ("user00000@example.com", "User 0", None)
    assert sum(1 for user in users.values() if "staff" in (user.groups or ())) == 3000
    assert sum(1 for user in users.values() if "developers" in (user.groups or ())) == 1500
    groups = {group.name: group for group in Group.scan()}
    assert {name: group.source for name, group in groups.items()} == {
        "staff": SOURCE,
        "developers": SOURCE,
        "awsadmins": SOURCE,
    }
    stored = Directory.get(directory)
    assert json.loads(stored.last_run or "{}")["created"] == 5000
    assert stored.watermark == counts.watermark and counts.watermark is not None
    print(f"\nload {loaded - started:.1f}s, import {imported - loaded:.1f}s")


def test_a_second_run_with_no_directory_change_writes_no_user_or_group(
    ldap_tree: Subtree, directory: str, kms: Any, clock: FakeClock, tables: Tables, writes: list
) -> None:
    dns = add_people(ldap_tree, 700)
    ldap_tree.add_group("staff", dns[:400])
    run(directory, kms, clock, full=True)
    before = {key: user.updated_at for key, user in own_users().items()}

    for full in (True, False):
        writes.clear()
        clock.advance(60)
        counts = run(directory, kms, clock, full=full)

        assert (counts.created, counts.updated, counts.disabled, counts.errors) == (0, 0, 0, 0)
        assert counts.groups_created == 0
        # Only the run's own record: the directory's last_run and the audit event.
        assert sorted(written_tables(writes)) == sorted([tables.directories, tables.audit])
    assert counts.unchanged > 0
    assert {key: user.updated_at for key, user in own_users().items()} == before


def test_an_incremental_run_touches_exactly_the_changed_users(
    slapd: Slapd, ldap_tree: Subtree, directory: str, kms: Any, clock: FakeClock, tables: Tables, writes: list
) -> None:
    dns = add_people(ldap_tree, 700)
    assert run(directory, kms, clock, full=True).created == 700
    changed = dns[100:110]
    for dn in changed:
        modify(slapd, dn, mail=f"new-{dn.split(',')[0][4:]}@example.com")
    writes.clear()

    counts = run(directory, kms, clock, full=False)

    assert (counts.updated, counts.created, counts.disabled, counts.errors) == (10, 0, 0, 0)
    user_writes = [(op, kwargs) for op, kwargs in writes if kwargs.get("TableName") == tables.users]
    assert [op for op, _ in user_writes] == ["UpdateItem"] * 10
    assert {kwargs["Key"]["username"]["S"] for _, kwargs in user_writes} == {
        f"user{i:05d}" for i in range(100, 110)
    }
    assert sorted(written_tables(writes)) == sorted([tables.users] * 10 + [tables.directories, tables.audit])
    assert User.get("user00105").email == "new-user00105@example.com"


def test_an_incremental_run_reads_only_entries_changed_since_the_watermark(
    slapd: Slapd, ldap_tree: Subtree, directory: str, kms: Any, clock: FakeClock
) -> None:
    dns = add_people(ldap_tree, 5)
    run(directory, kms, clock, full=True)
    # A watermark after every change in the tree: the filter must leave every entry out.
    Directory(directory).update(actions=[Directory.watermark.set("29990101000000Z")])
    modify(slapd, dns[0], mail="changed@example.com")

    counts = run(directory, kms, clock, full=False)

    assert (counts.updated, counts.unchanged, counts.created) == (0, 0, 0)
    assert User.get("user00000").email == "user00000@example.com"
    assert counts.watermark == "29990101000000Z"


def test_a_deleted_user_is_disabled_by_the_next_full_run_not_by_an_incremental_one(
    slapd: Slapd, ldap_tree: Subtree, directory: str, kms: Any, clock: FakeClock
) -> None:
    dns = add_people(ldap_tree, 3)
    run(directory, kms, clock, full=True)
    now = int(clock.now())
    Session(
        id_hash="h1",
        username="user00001",
        created_at=now,
        last_seen_at=now,
        expires_at=now + 3600,
        csrf_token="c",
    ).save()
    delete(slapd, dns[1])

    incremental = run(directory, kms, clock, full=False)
    assert incremental.disabled == 0
    assert User.get("user00001").disabled is False
    assert len(list(Session.by_user.query("user00001"))) == 1

    full = run(directory, kms, clock, full=True)

    assert (full.disabled, full.unchanged, full.updated) == (1, 2, 0)
    gone = User.get("user00001")
    assert gone.disabled is True and gone.trust_epoch == 1
    assert list(Session.by_user.query("user00001")) == []
    assert User.get("user00000").disabled is False
    # The next full run does not count them again.
    assert run(directory, kms, clock, full=True).disabled == 0


def test_a_run_that_fails_half_way_keeps_the_watermark_and_the_next_run_completes_it(
    slapd: Slapd,
    ldap_tree: Subtree,
    directory: str,
    kms: Any,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_people(ldap_tree, 700)
    pages = imports._pages

    def server_goes_away_after_one_page(*args: Any) -> Iterator[list[dict[str, Any]]]:
        # The first page with entries (the search for changed groups finds none here).
        for page in pages(*args):
            yield page
            if page:
                slapd.stop()

    monkeypatch.setattr(imports, "_pages", server_goes_away_after_one_page)
    with pytest.raises(Unreachable, match="stopped answering the import"):
        run(directory, kms, clock, full=False)

    stored = Directory.get(directory)
    assert (stored.watermark, stored.last_run) == (None, None)
    assert len(own_users()) == imports.PAGE_SIZE
    failures = [event for event in AuditEvent.scan() if event.type == "directory.import"]
    assert [event.outcome for event in failures] == ["failure"]

    monkeypatch.setattr(imports, "_pages", pages)
    slapd.start()
    counts = run(directory, kms, clock, full=False)

    assert (counts.created, counts.unchanged, counts.errors) == (
        700 - imports.PAGE_SIZE,
        imports.PAGE_SIZE,
        0,
    )
    assert len(own_users()) == 700
    assert Directory.get(directory).watermark == counts.watermark is not None


def test_a_local_user_with_the_same_name_is_never_overwritten(
    ldap_tree: Subtree, directory: str, kms: Any, clock: FakeClock
) -> None:
    add_people(ldap_tree, 3)
    local = accounts.create_user(
        accounts.NewUser("user00001", password="Local-Password-1", email="me@local.example")
    )

    for full in (True, False):
        counts = run(directory, kms, clock, full=full)

        assert counts.errors == 1
        assert any(
            "'user00001' already exists here (the name belongs to a user of local)" in text
            for text in counts.problems
        )
    kept = User.get("user00001")
    assert (kept.source, kept.email, kept.password_hash) == ("local", "me@local.example", local.password_hash)
    assert sorted(own_users()) == ["user00000", "user00002"]
    assert json.loads(Directory.get(directory).last_run or "{}")["errors"] == 1


def test_an_import_never_enables_a_user_an_admin_disabled(
    ldap_tree: Subtree, directory: str, kms: Any, clock: FakeClock
) -> None:
    from idp_core import accounts

    add_people(ldap_tree, 2)
    run(directory, kms, clock, full=True)
    accounts.set_user_disabled("user00000", True, clock=clock)  # e.g. a stolen laptop
    again = run(directory, kms, clock, full=True)
    assert User.get("user00000").disabled is True
    assert (again.updated, again.disabled, again.unchanged) == (0, 0, 2)


def users_queries(requests: list[tuple[str, dict[str, Any]]], tables: Tables) -> list[str | None]:
    """The indexes of the queries of the users table (None: the table itself)."""
    return [
        kwargs.get("IndexName")
        for operation, kwargs in requests
        if operation == "Query" and kwargs.get("TableName") == tables.users
    ]


def user_writes(writes: list[tuple[str, dict[str, Any]]], tables: Tables) -> list[tuple[str, str]]:
    """(operation, username) of the writes to the users table."""
    return [
        (operation, kwargs["Key"]["username"]["S"])
        for operation, kwargs in writes
        if kwargs.get("TableName") == tables.users
    ]


def modify_timestamp(slapd: Slapd, dn: str) -> str:
    conn = slapd.connection()
    try:
        conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["modifyTimestamp"])
        return str(conn.response[0]["raw_attributes"]["modifyTimestamp"][0].decode())
    finally:
        conn.unbind()


def test_a_membership_change_alone_reaches_exactly_those_members_in_an_incremental_run(
    slapd: Slapd,
    ldap_tree: Subtree,
    service_account: str,
    tables: Tables,
    kms: Any,
    key_id: str,
    clock: FakeClock,
    writes: list,
    requests: list,
) -> None:
    """Given users whose groups change while their own entries do not (the memberof overlay
    leaves the member's modifyTimestamp as it was), an incremental run updates exactly the
    member added and the member removed, and the next one takes the group change for new
    no more (it does not read everyone again)."""
    save_corp(slapd, ldap_tree, kms, key_id, clock, auto_register=True, group_base=ldap_tree.groups)
    dns = add_people(ldap_tree, 300)
    staff = ldap_tree.add_group("staff", dns[:3])
    assert run("corp", kms, clock, full=True).created == 300
    stamps = {dn: modify_timestamp(slapd, dn) for dn in (dns[1], dns[7])}
    conn = slapd.connection()
    try:
        conn.modify(staff, {"member": [(ldap3.MODIFY_ADD, [dns[7]]), (ldap3.MODIFY_DELETE, [dns[1]])]})
        assert conn.result["result"] == 0
    finally:
        conn.unbind()
    assert {dn: modify_timestamp(slapd, dn) for dn in stamps} == stamps  # the users' entries did not move
    writes.clear()

    counts = run("corp", kms, clock, full=False)

    assert (counts.updated, counts.created, counts.disabled, counts.errors) == (2, 0, 0, 0)
    assert sorted(user_writes(writes, tables)) == [("UpdateItem", "user00001"), ("UpdateItem", "user00007")]
    assert User.get("user00001").groups is None
    assert User.get("user00007").group_names() == ["staff"]
    assert User.get("user00000").group_names() == ["staff"]
    # The watermark moved to the group's change, so the next run does not read everyone again.
    assert counts.watermark == modify_timestamp(slapd, staff)
    [remembered] = counts.groups_at_watermark  # the group, with its OpenLDAP entryCSN
    assert remembered.startswith(staff.lower() + " ")
    writes.clear()
    requests.clear()
    again = run("corp", kms, clock, full=False)
    assert (again.updated, again.created) == (0, 0) and user_writes(writes, tables) == []
    # Reading everyone starts with the query of this directory's users; this run has none.
    assert users_queries(requests, tables) == []


def test_without_auto_registration_a_run_creates_no_one_but_keeps_the_users_already_here(
    slapd: Slapd,
    ldap_tree: Subtree,
    service_account: str,
    tables: Tables,
    kms: Any,
    key_id: str,
    clock: FakeClock,
) -> None:
    """Given alice, created by "Sync users" at her sign-in, and three directory users never
    seen here: with auto registration off a run creates none of the three (and says so),
    while alice follows the directory: updated when her entry changes, disabled when it goes."""
    save_corp(slapd, ldap_tree, kms, key_id, clock, activate=True, sync_users=True)
    alice = ldap_tree.add_user("alice", "alice-Directory-1", mail="alice@corp.example")
    store.forget_cached_directories()
    entry = directory_signin.entry_for_alias("alice", kms=kms, only=None)
    assert entry is not None and directory_signin.check_password(entry, "alice-Directory-1")
    directory_signin.register(entry, clock=clock)  # what "Sync users" does at her sign-in
    add_people(ldap_tree, 3)

    first = run("corp", kms, clock, full=True)

    assert (first.created, first.not_registered, first.unchanged, first.errors) == (0, 3, 1, 0)
    assert any(
        text.startswith("auto registration is off: 3 directory users were not created")
        for text in first.problems
    )
    assert sorted(own_users()) == ["alice"]
    stored = json.loads(Directory.get("corp").last_run or "{}")
    assert stored["not_registered"] == 3

    modify(slapd, alice, mail="alice@new.example")
    incremental = run("corp", kms, clock, full=False)
    assert (incremental.updated, incremental.created) == (1, 0)
    assert User.get("alice").email == "alice@new.example" and sorted(own_users()) == ["alice"]

    delete(slapd, alice)
    full = run("corp", kms, clock, full=True)
    assert (full.disabled, full.created, full.not_registered) == (1, 0, 3)
    assert User.get("alice").disabled is True and sorted(own_users()) == ["alice"]


def test_a_full_run_reads_this_directorys_users_from_the_index_not_a_scan(
    ldap_tree: Subtree, directory: str, kms: Any, clock: FakeClock, requests: list, tables: Tables
) -> None:
    """A full run never scans the users table: it queries the ``by_source`` index, which holds
    only this directory's users (a local user and another source's user are not in it)."""
    add_people(ldap_tree, 250)
    run(directory, kms, clock, full=True)
    accounts.create_user(accounts.NewUser("local-user", password="Local-Password-1"))
    User("other-user", display_username="other-user", source="ldap:other", created_at=0, updated_at=0).save()
    requests.clear()

    counts = run(directory, kms, clock, full=True)

    assert (counts.unchanged, counts.disabled, counts.updated, counts.created) == (250, 0, 0, 0)
    assert "Scan" not in [operation for operation, _ in requests]
    assert set(users_queries(requests, tables)) == {"by_source"}
    assert {user.username for user in User.by_source.query(SOURCE)} == set(own_users())
    assert User.get("local-user").disabled is False and User.get("other-user").disabled is False
