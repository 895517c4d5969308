"""LDAP bind authentication and the admin's directory tests, against a real OpenLDAP slapd
(S22, S23). Each test has its own subtree of one session-wide server."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from idp_core.directories import client
from idp_core.directories.errors import (
    AttributeMissing,
    BadServiceBind,
    EmptyPassword,
    NoSuchUser,
    SeveralUsers,
    TlsFailure,
    Unreachable,
    WrongPassword,
)
from idp_core.directories.settings import AttributeMap, DirectorySettings
from tests.helpers.ldap_directory import ADMIN_PASSWORD, ALICE_PASSWORD, SERVICE_PASSWORD, add_service_account
from tests.support.slapd import Slapd, Subtree, closed_port


def settings_for(slapd: Slapd, tree: Subtree, **changes: Any) -> DirectorySettings:
    values: dict[str, Any] = {
        "name": "corp",
        "display_name": "Corp LDAP",
        "kind": "openldap",
        "urls": (slapd.url,),
        "allow_cleartext": True,  # slapd speaks plain LDAP on 127.0.0.1 (S30)
        "bind_dn": f"uid=svc,{tree.dn}",
        "bases": (tree.people,),
    }
    values.update(changes)
    return DirectorySettings(**values)


def test_bind_authentication_returns_the_mapped_attributes_and_group_names(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    user = client.authenticate(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, "alice", ALICE_PASSWORD)

    # The entry's stable id is its entryUUID (RFC 4530), which names it whatever its DN becomes.
    assert uuid.UUID(user.entry_id)
    assert user == client.DirectoryUser(
        dn=people["alice"],
        entry_id=user.entry_id,
        username="alice",
        email="alice@example.com",
        phone="+44 20 7946 0000",
        first_name="Alice",
        last_name="Example",
        display_name="Alice Example",
        groups=("awsadmins", "developers"),
    )


def test_groups_found_by_a_group_search_when_chosen_instead_of_member_of(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    # The groups attribute maps to one alice does not have: only the group search can find them.
    mapping = AttributeMap.for_kind("openldap", {"groups": "description"})
    settings = settings_for(
        slapd, ldap_tree, attribute_map=mapping, group_lookup="search", group_base=ldap_tree.groups
    )
    user = client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD)
    assert user.groups == ("awsadmins", "developers")

    by_member_of = client.authenticate(
        settings_for(slapd, ldap_tree, attribute_map=mapping), SERVICE_PASSWORD, "alice", ALICE_PASSWORD
    )
    assert by_member_of.groups == ()


def test_a_wrong_password_is_refused(slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]) -> None:
    with pytest.raises(WrongPassword, match="refused the password"):
        client.authenticate(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, "alice", ADMIN_PASSWORD)


def test_an_unknown_username_is_no_such_user(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    with pytest.raises(NoSuchUser, match=r"matches \(uid=bob\)"):
        client.authenticate(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, "bob", ALICE_PASSWORD)


@pytest.mark.parametrize("password", ["", None])
def test_an_empty_password_is_refused_before_any_connection(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str], password: str | None
) -> None:
    """S22. Given a stopped server, a real password gets Unreachable; an empty one is
    refused without the client trying to connect at all."""
    settings = settings_for(slapd, ldap_tree)
    slapd.stop()
    with pytest.raises(Unreachable):
        client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD)

    with pytest.raises(EmptyPassword, match="empty password"):
        client.authenticate(settings, SERVICE_PASSWORD, "alice", password)


@pytest.mark.parametrize("username", ["*)(uid=*", "admin)(|(uid=*", "*", "admi*"])
def test_filter_injection_matches_no_one(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str], username: str
) -> None:
    """S23. With a custom filter, an unescaped ``admin)(|(uid=*`` would make
    ``(&(objectClass=inetOrgPerson)(uid=admin)(|(uid=*))``, which finds admin, whose
    password is given; escaped, the whole string is one uid that no one has."""
    settings = settings_for(slapd, ldap_tree, user_filter="(&(objectClass=inetOrgPerson)(uid={username}))")
    with pytest.raises(NoSuchUser):
        client.authenticate(settings, SERVICE_PASSWORD, username, ADMIN_PASSWORD)
    with pytest.raises(NoSuchUser):
        client.authenticate(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, username, ALICE_PASSWORD)
    # The same filter signs admin in under their own name, so the refusals above are the escaping's doing.
    assert client.authenticate(settings, SERVICE_PASSWORD, "admin", ADMIN_PASSWORD).dn == people["admin"]


def test_dn_values_with_commas_plus_signs_and_non_ascii_letters_authenticate(
    slapd: Slapd, ldap_tree: Subtree
) -> None:
    add_service_account(ldap_tree)
    dn = ldap_tree.add_user(
        "jmüller", "Grüße-2024", cn="Müller, Jürgen+Test", sn="Müller", given_name="Jürgen"
    )
    ldap_tree.add_group("Ops, EU+Ünits", [dn])
    ldap_tree.add_group(r"back\slash", [dn])

    user = client.authenticate(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, "jmüller", "Grüße-2024")

    # slapd hands the DN back with hex escapes (cn=M\C3\BCller\2C ...), not as it was added.
    assert client.group_name(user.dn) == "Müller, Jürgen+Test"
    assert user.dn.endswith(f",{ldap_tree.people}")
    assert (user.username, user.display_name, user.first_name) == ("jmüller", "Müller, Jürgen+Test", "Jürgen")
    assert user.groups == ("Ops, EU+Ünits", r"back\slash")
    with pytest.raises(WrongPassword):
        client.authenticate(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, "jmüller", "Grusse-2024")


def test_group_names_are_the_unescaped_cn_of_the_group_dn() -> None:
    assert client.group_name("cn=awsadmins,ou=groups,dc=example,dc=com") == "awsadmins"
    assert client.group_name(r"CN=Ops\2C EU\2B\C3\9Cnits,OU=Groups,DC=corp") == "Ops, EU+Ünits"
    assert client.group_name(r"cn=a\,b\+c,ou=groups") == "a,b+c"
    assert client.group_name("ou=x+cn=team,dc=example") == "team"
    assert client.group_name("not a dn") is None


def test_two_entries_matching_the_filter_are_refused(slapd: Slapd, ldap_tree: Subtree) -> None:
    add_service_account(ldap_tree)
    ldap_tree.add_user("twin", "twin-one", cn="Twin One")
    ldap_tree.add_user("twin", "twin-two", cn="Twin Two")

    with pytest.raises(SeveralUsers, match="2 entries match"):
        client.authenticate(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, "twin", "twin-one")


def test_entries_matching_under_two_bases_are_refused(slapd: Slapd, ldap_tree: Subtree) -> None:
    add_service_account(ldap_tree)
    ldap_tree.add_user("twin", "twin-one")
    ldap_tree.add_user("twin", "twin-two", parent=ldap_tree.groups)
    one_base = settings_for(slapd, ldap_tree)
    assert client.authenticate(one_base, SERVICE_PASSWORD, "twin", "twin-one").username == "twin"

    with pytest.raises(SeveralUsers):
        client.authenticate(
            replace(one_base, bases=(ldap_tree.people, ldap_tree.groups)),
            SERVICE_PASSWORD,
            "twin",
            "twin-one",
        )


def test_three_matches_hit_the_search_limit_and_are_refused(slapd: Slapd, ldap_tree: Subtree) -> None:
    add_service_account(ldap_tree)
    for n in range(3):
        ldap_tree.add_user("triplet", f"pw-{n}", cn=f"Triplet {n}")
    with pytest.raises(SeveralUsers, match="exactly one must"):
        client.authenticate(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, "triplet", "pw-0")


def test_an_unreachable_url_is_reported(slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]) -> None:
    closed = f"ldap://127.0.0.1:{closed_port()}"
    settings = settings_for(slapd, ldap_tree, urls=(closed,))
    with pytest.raises(Unreachable, match="No directory server could be reached"):
        client.test_connection(settings, timeout=1)
    with pytest.raises(Unreachable):
        client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD, timeout=1)


def test_the_next_url_is_used_when_the_first_is_closed(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    settings = settings_for(slapd, ldap_tree, urls=(f"ldap://127.0.0.1:{closed_port()}", slapd.url))

    assert client.test_connection(settings, timeout=1).message == f"Connected to {slapd.url}."
    user = client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD, timeout=1)
    assert user.dn == people["alice"]


def test_ldaps_to_a_plain_ldap_port_is_a_tls_failure(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    settings = settings_for(slapd, ldap_tree, urls=(slapd.url.replace("ldap://", "ldaps://"),))
    with pytest.raises(TlsFailure, match="securely"):
        client.test_connection(settings, timeout=2)


def test_start_tls_refused_by_the_server_is_a_tls_failure(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    # This slapd has no certificate, so it refuses StartTLS; the client must not go on in clear.
    settings = settings_for(slapd, ldap_tree, start_tls=True)
    with pytest.raises(TlsFailure):
        client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD, timeout=2)


def test_service_bind_test(slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]) -> None:
    settings = settings_for(slapd, ldap_tree)
    result = client.test_service_bind(settings, SERVICE_PASSWORD)
    assert (result.ok, result.message) == (True, f"Bound to {slapd.url} as uid=svc,{ldap_tree.dn}.")

    with pytest.raises(BadServiceBind, match="refused the bind DN"):
        client.test_service_bind(settings, "not-the-password")
    with pytest.raises(BadServiceBind, match="refused the bind DN"):
        client.test_service_bind(replace(settings, bind_dn=f"uid=nobody,{ldap_tree.dn}"), SERVICE_PASSWORD)
    with pytest.raises(BadServiceBind, match="empty"):
        client.test_service_bind(settings, "")


def test_configuration_test(slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]) -> None:
    settings = settings_for(slapd, ldap_tree)
    result = client.test_configuration(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD)
    assert (result.ok, result.message) == (True, f"alice signed in as {people['alice']}.")
    with pytest.raises(WrongPassword):
        client.test_configuration(settings, SERVICE_PASSWORD, "alice", "wrong")


def test_attribute_mapping_test_shows_the_mapped_attributes(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    result = client.test_attribute_mapping(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, "alice")

    assert result.ok
    assert result.message == f"alice ({people['alice']}) maps to all fields; groups: awsadmins, developers."
    assert result.attributes == {
        "username": "alice",
        "email": "alice@example.com",
        "phone": "+44 20 7946 0000",
        "first_name": "Alice",
        "last_name": "Example",
        "display_name": "Alice Example",
        "groups": ["awsadmins", "developers"],
    }


def test_attribute_mapping_test_names_an_attribute_the_entry_lacks(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    # A valid attribute name the schema does not even know: slapd ignores it in the request.
    mapping = AttributeMap.for_kind("openldap", {"phone": "mobileTelephoneNumberX"})
    settings = settings_for(slapd, ldap_tree, attribute_map=mapping)

    with pytest.raises(AttributeMissing, match=r"has no attribute for: phone \(mobileTelephoneNumberX\)\.$"):
        client.test_attribute_mapping(settings, SERVICE_PASSWORD, "alice")
    # admin has no givenName nor telephoneNumber in the default mapping.
    with pytest.raises(AttributeMissing, match=r"phone \(telephoneNumber\), first name \(givenName\)"):
        client.test_attribute_mapping(settings_for(slapd, ldap_tree), SERVICE_PASSWORD, "admin")


def test_a_missing_username_attribute_stops_the_sign_in(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    mapping = AttributeMap.for_kind("openldap", {"username": "employeeNumber"})
    with pytest.raises(AttributeMissing, match="'employeeNumber' attribute, which is mapped to the username"):
        client.authenticate(
            settings_for(slapd, ldap_tree, attribute_map=mapping), SERVICE_PASSWORD, "alice", ALICE_PASSWORD
        )


def test_a_stopped_server_comes_back_with_its_data(
    slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    settings = settings_for(slapd, ldap_tree)
    slapd.stop()
    with pytest.raises(Unreachable):
        client.test_connection(settings, timeout=1)
    slapd.start()
    assert client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD).username == "alice"
