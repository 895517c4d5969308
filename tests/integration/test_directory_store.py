"""Stored directories (idp_core.directories.store) against moto's DynamoDB and KMS: the bind
password is sealed under {"directory": name}, a save is validated completely before anything
is written (S26), and every change leaves an audit event without secrets."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.directories import store
from idp_core.directories.settings import DirectorySettings
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.models import Directory
from idp_core.sealing import SecretUnreadable

PASSWORD = "bind-Secret-1"
NEW_PASSWORD = "bind-Secret-2"
ADMIN = AuditContext(actor="admin:root", source_ip="192.0.2.10")


def corp(**changes: Any) -> DirectorySettings:
    values: dict[str, Any] = {
        "name": "corp",
        "display_name": "Corp LDAP",
        "kind": "openldap",
        "urls": ("ldap://ldap.example.com:389",),
        "allow_cleartext": True,  # stored, never connected to (S30 has its own tests)
        "bind_dn": "cn=svc,dc=example,dc=com",
        "bases": ("ou=people,dc=example,dc=com",),
    }
    values.update(changes)
    return DirectorySettings(**values)


@pytest.fixture
def saved(tables: Tables, kms: Any, key_id: str, clock: FakeClock) -> DirectorySettings:
    return store.save_directory(
        corp(), create=True, bind_password=PASSWORD, kms=kms, key_id=key_id, context=ADMIN, clock=clock
    )


def _details(event: Any) -> dict[str, str]:
    return dict(event.details.as_dict()) if event.details is not None else {}


def _decrypt(kms: Any, item: Directory, context: dict[str, str]) -> bytes:
    blob = base64.b64decode(str(item.bind_password))
    return bytes(kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"])


def test_a_created_directory_keeps_its_settings_and_a_sealed_password(
    saved: DirectorySettings, kms: Any, clock: FakeClock
) -> None:
    item = store.get_directory("corp")

    assert store.load("corp") == saved == corp()
    assert item.bind_password and PASSWORD not in item.bind_password
    assert PASSWORD not in item.settings
    assert (item.created_at, item.updated_at) == (clock.now(), clock.now())
    assert _decrypt(kms, item, {"directory": "corp"}) == PASSWORD.encode()
    assert store.bind_password(item, kms=kms) == PASSWORD


def test_the_sealed_password_opens_only_under_its_own_directory_context(
    saved: DirectorySettings, kms: Any
) -> None:
    item = store.get_directory("corp")
    with pytest.raises(ClientError) as raised:
        _decrypt(kms, item, {"directory": "other"})
    assert raised.value.response["Error"]["Code"] == "InvalidCiphertextException"
    # A ciphertext copied onto another directory's item does not open there either.
    moved = Directory(
        "other", settings=item.settings, bind_password=item.bind_password, created_at=0, updated_at=0
    )
    with pytest.raises(SecretUnreadable):
        store.bind_password(moved, kms=kms)


def test_a_directory_without_a_password_binds_anonymously(tables: Tables, kms: Any, key_id: str) -> None:
    store.save_directory(corp(), create=True, kms=kms, key_id=key_id)
    item = store.get_directory("corp")
    assert item.bind_password is None
    assert store.bind_password(item, kms=kms) is None


def test_creating_a_directory_twice_is_a_conflict_and_keeps_the_first(
    saved: DirectorySettings, kms: Any, key_id: str
) -> None:
    with pytest.raises(Conflict, match="already exists"):
        store.save_directory(
            corp(display_name="Impostor"), create=True, bind_password=NEW_PASSWORD, kms=kms, key_id=key_id
        )
    item = store.get_directory("corp")
    assert store.settings_of(item).display_name == "Corp LDAP"
    assert store.bind_password(item, kms=kms) == PASSWORD


def test_an_update_keeps_the_password_unless_a_new_one_is_given(
    saved: DirectorySettings, kms: Any, key_id: str, clock: FakeClock
) -> None:
    created_at = clock.now()
    clock.advance(60)
    first = store.get_directory("corp").bind_password

    store.save_directory(
        replace(saved, display_name="Corp OpenLDAP", sync_users=True), create=False, clock=clock
    )
    kept = store.get_directory("corp")
    assert kept.bind_password == first
    assert store.settings_of(kept).display_name == "Corp OpenLDAP" and store.settings_of(kept).sync_users
    assert (kept.created_at, kept.updated_at) == (created_at, clock.now())

    store.save_directory(saved, create=False, bind_password=NEW_PASSWORD, kms=kms, key_id=key_id, clock=clock)
    changed = store.get_directory("corp")
    assert changed.bind_password != first
    assert store.bind_password(changed, kms=kms) == NEW_PASSWORD


def test_updating_an_unknown_directory_is_not_found_and_creates_nothing(tables: Tables) -> None:
    with pytest.raises(NotFound):
        store.save_directory(corp(), create=False)
    assert store.list_directories() == []


@pytest.mark.parametrize("password", ["", "x" * (store.MAX_BIND_PASSWORD_CHARS + 1), "pass\x00word"])
def test_an_invalid_password_is_bad_request_and_nothing_is_written(
    tables: Tables, kms: Any, key_id: str, password: str
) -> None:
    with pytest.raises(BadRequest, match="bind password"):
        store.save_directory(corp(), create=True, bind_password=password, kms=kms, key_id=key_id)
    assert store.list_directories() == []
    assert audit.recent() == []


def test_an_invalid_password_on_update_leaves_the_stored_one(
    saved: DirectorySettings, kms: Any, key_id: str
) -> None:
    before = store.get_directory("corp")
    with pytest.raises(BadRequest):
        store.save_directory(
            replace(saved, display_name="Changed"), create=False, bind_password="", kms=kms, key_id=key_id
        )
    after = store.get_directory("corp")
    assert (after.settings, after.bind_password, after.updated_at) == (
        before.settings,
        before.bind_password,
        before.updated_at,
    )


def test_settings_that_no_longer_validate_are_bad_request_and_nothing_is_written(
    tables: Tables, kms: Any, key_id: str
) -> None:
    """An instance changed behind its validation (or not a DirectorySettings at all) is
    validated again by the store before it writes."""
    tampered = corp()
    object.__setattr__(tampered, "urls", ("http://ldap.example.com",))
    with pytest.raises(BadRequest, match="not a directory server URL"):
        store.save_directory(tampered, create=True, bind_password=PASSWORD, kms=kms, key_id=key_id)
    not_settings: Any = json.loads(corp().to_json())
    with pytest.raises(BadRequest, match="settings are required"):
        store.save_directory(not_settings, create=True, bind_password=PASSWORD, kms=kms, key_id=key_id)
    assert store.list_directories() == []


def test_list_is_sorted_by_name_and_delete_removes_a_directory(
    saved: DirectorySettings, kms: Any, key_id: str
) -> None:
    store.save_directory(
        corp(name="branch", kind="ad"), create=True, bind_password=PASSWORD, kms=kms, key_id=key_id
    )
    assert [s.name for s in store.list_directories()] == ["branch", "corp"]

    store.delete_directory("corp")
    assert [s.name for s in store.list_directories()] == ["branch"]
    with pytest.raises(NotFound):
        store.load("corp")
    with pytest.raises(NotFound):
        store.delete_directory("corp")


def test_every_change_is_audited_without_the_password_or_its_ciphertext(
    saved: DirectorySettings, kms: Any, key_id: str, clock: FakeClock
) -> None:
    ciphertext = str(store.get_directory("corp").bind_password)
    clock.advance(1)
    store.save_directory(
        saved, create=False, bind_password=NEW_PASSWORD, kms=kms, key_id=key_id, context=ADMIN, clock=clock
    )
    clock.advance(1)
    store.save_directory(replace(saved, activate=True), create=False, context=ADMIN, clock=clock)
    clock.advance(1)
    store.delete_directory("corp", context=ADMIN, clock=clock)

    events = list(reversed(audit.recent(clock=clock)))
    assert [(e.type, e.outcome, e.subject, e.actor) for e in events] == [
        ("directory.created", "success", "corp", "admin:root"),
        ("directory.changed", "success", "corp", "admin:root"),
        ("directory.changed", "success", "corp", "admin:root"),
        ("directory.deleted", "success", "corp", "admin:root"),
    ]
    assert [_details(e).get("bind_password_changed") for e in events] == [
        "True",
        "True",
        "False",
        None,
    ]
    assert _details(events[2])["activate"] == "True"
    text = json.dumps([(e.type, e.subject, e.actor, _details(e)) for e in events])
    for secret in (PASSWORD, NEW_PASSWORD, ciphertext):
        assert secret not in text
