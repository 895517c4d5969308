"""Directory connections are encrypted unless an admin allows cleartext for that directory
(S30; issue 11 point 5).

An ``ldap://`` URL without StartTLS sends the service account's password and every user's
password as plain text over the network. Such a directory is refused when it is saved and
whenever a connection would be made, unless its "Allow unencrypted connection" switch is on;
a directory stored before the switch existed does not silently keep working in cleartext.
The wire is watched by a plain TCP listener that records what reaches it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import replace
from typing import Any

import pytest

from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.directories import client, store
from idp_core.directories.errors import CleartextRefused, TlsFailure
from idp_core.directories.settings import DirectorySettings
from idp_core.errors import BadRequest
from idp_core.models import AuditEvent, Directory
from tests.support.slapd import Slapd, Subtree

SERVICE_PASSWORD = "service-Secret-1"
REFUSED = (
    "Connections to ldap://127.0.0.1:{port} would not be encrypted, and this directory does not allow "
    "unencrypted connections: use ldaps:// URLs or StartTLS, or turn on "
    '"Allow unencrypted connection" (idp directory update corp --allow-cleartext) if the network '
    "between this service and the directory is trusted."
)


class Wire:
    """A TCP port that accepts connections and keeps every byte sent to it (it never answers)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        # accept() wakes up now and then to see whether the test is over.
        self._server.settimeout(0.05)
        self.port = int(self._server.getsockname()[1])
        self.received = bytearray()
        self.connections = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.settimeout(0.5)
            with connection, suppress(OSError):
                while chunk := connection.recv(4096):
                    self.received.extend(chunk)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._server.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    listener = Wire()
    yield listener
    listener.close()


def settings_at(url: str, **changes: Any) -> DirectorySettings:
    values: dict[str, Any] = {
        "name": "corp",
        "display_name": "Corp LDAP",
        "kind": "openldap",
        "urls": (url,),
        "bind_dn": "cn=svc,dc=example,dc=com",
        "bases": ("ou=people,dc=example,dc=com",),
        "activate": True,
    }
    values.update(changes)
    return DirectorySettings(**values)


def store_as_an_older_version_did(url: str, kms: Any, key_id: str) -> None:
    """A directory item as stored before the switch existed: no ``allow_cleartext`` in it."""
    data = json.loads(settings_at(url, allow_cleartext=True).to_json())
    del data["allow_cleartext"]
    Directory(
        "corp",
        settings=json.dumps(data, sort_keys=True),
        bind_password=store.seal(kms, key_id, SERVICE_PASSWORD.encode(), store.password_context("corp")),
        created_at=0,
        updated_at=0,
    ).save()


def test_attack_a_directory_stored_before_the_switch_sends_passwords_in_cleartext(
    tables: Tables, kms: Any, key_id: str, wire: Wire
) -> None:
    # Given a directory an older version stored with an ldap:// URL and no StartTLS,
    store_as_an_older_version_did(f"ldap://127.0.0.1:{wire.port}", kms, key_id)
    item = store.get_directory("corp")
    settings = store.settings_of(item)  # it still loads, so the console can show and fix it
    # a sign-in through it is refused before anything is sent,
    with pytest.raises(CleartextRefused) as refused:
        client.authenticate(
            settings, store.bind_password(item, kms=kms) or "", "alice", "alice-Secret-1", timeout=1
        )
    assert refused.value.message == REFUSED.format(port=wire.port)
    # and neither the service account's password nor the user's reached the network.
    wire.close()
    assert wire.connections == 0 and SERVICE_PASSWORD.encode() not in wire.received


def test_attack_a_new_cleartext_directory_is_refused_when_saved_without_the_switch(
    tables: Tables, kms: Any, key_id: str
) -> None:
    for url in ("ldap://ldap.example.com", "ldap://ldap.example.com:3268"):
        with pytest.raises(BadRequest) as refused:
            store.save_directory(
                settings_at(url), create=True, bind_password=SERVICE_PASSWORD, kms=kms, key_id=key_id
            )
        assert "would not be encrypted" in refused.value.message
    # One cleartext URL among encrypted ones is enough to refuse.
    mixed = replace(
        settings_at("ldaps://dc1.example.com"), urls=("ldaps://dc1.example.com", "ldap://dc2.example.com")
    )
    with pytest.raises(BadRequest) as refused:
        store.save_directory(mixed, create=True, bind_password=SERVICE_PASSWORD, kms=kms, key_id=key_id)
    assert refused.value.message.startswith("Connections to ldap://dc2.example.com would not be encrypted,")
    assert list(Directory.scan()) == []


def test_every_admin_test_refuses_a_cleartext_directory_without_the_switch(wire: Wire) -> None:
    settings = settings_at(f"ldap://127.0.0.1:{wire.port}")
    for run in (
        lambda: client.test_connection(settings, timeout=1),
        lambda: client.test_service_bind(settings, SERVICE_PASSWORD, timeout=1),
        lambda: client.test_attribute_mapping(settings, SERVICE_PASSWORD, "alice", timeout=1),
    ):
        with pytest.raises(TlsFailure, match="would not be encrypted"):
            run()
    wire.close()
    assert wire.connections == 0


def test_with_the_switch_on_a_cleartext_directory_works(
    tables: Tables, kms: Any, key_id: str, slapd: Slapd, ldap_tree: Subtree, clock: FakeClock
) -> None:
    ldap_tree.add_user("svc", SERVICE_PASSWORD, parent=ldap_tree.dn)
    settings = settings_at(slapd.url, bind_dn=f"uid=svc,{ldap_tree.dn}", allow_cleartext=True)
    store.save_directory(
        settings, create=True, bind_password=SERVICE_PASSWORD, kms=kms, key_id=key_id, clock=clock
    )
    assert store.load("corp").allow_cleartext is True
    assert client.test_service_bind(settings, SERVICE_PASSWORD).message.startswith("Bound to ")


def test_encrypted_directories_need_no_switch(tables: Tables, kms: Any, key_id: str) -> None:
    for settings in (
        settings_at("ldaps://dc1.example.com"),
        settings_at("ldap://dc1.example.com", start_tls=True),
    ):
        store.save_directory(settings, create=True, bind_password=SERVICE_PASSWORD, kms=kms, key_id=key_id)
        store.delete_directory("corp")


def test_the_switch_is_either_on_or_off() -> None:
    with pytest.raises(BadRequest) as refused:
        settings_at("ldap://dc1.example.com", allow_cleartext="yes")
    assert refused.value.message == "The setting allow cleartext is either on or off."


def test_attack_a_sign_in_through_a_directory_stored_before_the_switch_sends_no_password(
    tables: Tables, kms: Any, clock: FakeClock, wire: Wire
) -> None:
    from idp_core import accounts
    from tests.helpers.mfa import password_only
    from tests.helpers.sso import running_sso

    with running_sso(tables, clock) as sso:
        password_only(clock)
        store_as_an_older_version_did(f"ldap://127.0.0.1:{wire.port}", kms, sso.settings.require_data_key())
        store.forget_cached_directories()
        accounts.create_user(accounts.NewUser("alice", source="ldap:corp"), clock=clock)
        refused = sso.sign_in(sso.browser(), "alice", "alice-Directory-1")
        # The directory cannot be used: no session, nothing counted against alice, and the
        # audit trail (and the log line, with the whole sentence) tells the admin why.
        assert refused.status_code == 503
        reasons = [
            event.details.as_dict().get("reason")
            for event in AuditEvent.scan()
            if event.type == "auth.failure" and event.details is not None
        ]
        assert reasons == ["directory unavailable: CleartextRefused"]
    wire.close()
    assert wire.connections == 0 and b"alice-Directory-1" not in wire.received
