"""The Active Directory password change, on ldap3's in-memory MOCK_SYNC server (no AD runs in
the tests; the OpenLDAP path runs against a real slapd in test_password_change): the change
is the unicodePwd delete-old/add-new pair with double-quoted UTF-16-LE values, and AD's
refusal comes back in its own words. The checks that run before any connection are here too."""

from __future__ import annotations

from collections.abc import Iterator

import ldap3
import pytest

from idp_core.directories.errors import EmptyPassword, TlsFailure
from idp_core.directories.passwords import PasswordRefused, change_password, reset_password, write_password
from idp_core.directories.settings import AD, DirectorySettings
from idp_core.errors import BadRequest
from tests.support.slapd import closed_port

ALICE = "CN=Alice Example,OU=People,DC=corp,DC=example"
OLD = "old-Password-1"
NEW = "new passphrase ünïcode 42"
# The protocol's numbers of the two modify operations (RFC 4511 4.6).
LDAP_DELETE, LDAP_ADD, LDAP_REPLACE = 1, 0, 2


def ad_value(password: str) -> bytes:
    return f'"{password}"'.encode("utf-16-le")


@pytest.fixture
def alice() -> Iterator[ldap3.Connection]:
    """A connection bound as alice to an in-memory server that holds her entry."""
    server = ldap3.Server("mock-ad")
    conn = ldap3.Connection(
        server,
        user=ALICE,
        password=OLD,
        client_strategy=ldap3.MOCK_SYNC,
        raise_exceptions=False,
    )
    conn.strategy.add_entry(
        ALICE,
        {
            "objectClass": ["user"],
            "sAMAccountName": "alice",
            # The mock checks a simple bind against userPassword; AD keeps only unicodePwd.
            "userPassword": OLD,
            "unicodePwd": ad_value(OLD),
        },
    )
    assert conn.bind()
    yield conn
    conn.unbind()


def test_the_ad_change_deletes_the_old_unicode_pwd_and_adds_the_new_one(alice: ldap3.Connection) -> None:
    write_password(alice, AD, ALICE, OLD, NEW)

    changes = alice.request["changes"]
    assert [(change["operation"], change["attribute"]["type"]) for change in changes] == [
        (LDAP_DELETE, "unicodePwd"),
        (LDAP_ADD, "unicodePwd"),
    ]
    assert alice.strategy.entries[ALICE]["unicodePwd"] == [ad_value(NEW)]


def test_an_ad_refusal_is_reported_in_its_own_words(alice: ldap3.Connection) -> None:
    with pytest.raises(PasswordRefused) as refused:
        write_password(alice, AD, ALICE, "not the old password", NEW)
    assert refused.value.message == (
        "The directory refused the new password: value to delete not found (operationsError)."
    )


def settings(kind: str, url: str) -> DirectorySettings:
    return DirectorySettings(
        name="corp",
        display_name="Corp",
        kind=kind,
        urls=(url,),
        bind_dn="cn=svc,dc=corp,dc=example",
        bases=("ou=people,dc=corp,dc=example",),
    )


def test_an_empty_current_password_is_refused_before_any_connection() -> None:
    # The URL answers nothing: reaching the network would be Unreachable, not EmptyPassword.
    with pytest.raises(EmptyPassword):
        change_password(settings("openldap", f"ldap://127.0.0.1:{closed_port()}"), "svc", "alice", "", NEW)


def test_an_ad_password_never_goes_over_an_unencrypted_connection() -> None:
    with pytest.raises(TlsFailure):
        change_password(settings(AD, f"ldap://127.0.0.1:{closed_port()}"), "svc", "alice", OLD, NEW)


def test_an_ad_reset_without_the_current_password_replaces_unicode_pwd(alice: ldap3.Connection) -> None:
    # A forgotten password is reset by the service account: AD's administrator reset.
    write_password(alice, AD, ALICE, None, NEW)

    changes = alice.request["changes"]
    assert [(change["operation"], change["attribute"]["type"]) for change in changes] == [
        (LDAP_REPLACE, "unicodePwd")
    ]
    assert alice.strategy.entries[ALICE]["unicodePwd"] == [ad_value(NEW)]


def test_a_reset_refuses_an_unencrypted_ad_and_an_empty_password_before_any_connection() -> None:
    closed = f"ldap://127.0.0.1:{closed_port()}"
    with pytest.raises(TlsFailure):
        reset_password(settings(AD, closed), "svc", "alice", NEW)
    with pytest.raises(BadRequest, match="new password is required"):
        reset_password(settings("openldap", closed), "svc", "alice", "")
