"""Directory settings validate themselves when built: bad input is a BadRequest with a
sentence (S26), never a half-valid settings object."""

from __future__ import annotations

import datetime
from dataclasses import asdict, fields
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp_core.directories.settings import (
    SWITCHES,
    AttributeMap,
    DirectorySettings,
)
from idp_core.errors import BadRequest


def make(**changes: Any) -> DirectorySettings:
    values: dict[str, Any] = {
        "name": "corp",
        "display_name": "Corp directory",
        "kind": "openldap",
        "urls": ("ldap://ldap.example.com",),
        "bind_dn": "cn=svc,dc=example,dc=com",
        "bases": ("ou=people,dc=example,dc=com",),
    }
    values.update(changes)
    return DirectorySettings(**values)


def ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_defaults_are_off_and_follow_the_kind() -> None:
    openldap = make()
    assert all(getattr(openldap, switch) is False for switch in SWITCHES)
    assert (openldap.verify_certificates, openldap.start_tls, openldap.schedule) == (True, False, None)
    assert (openldap.user_filter, openldap.search_filter) == ("uid", "(uid={username})")
    assert openldap.mapping.as_dict() == {
        "username": "uid",
        "email": "mail",
        "phone": "telephoneNumber",
        "first_name": "givenName",
        "last_name": "sn",
        "display_name": "cn",
        "groups": "memberOf",
    }

    ad = make(kind="ad")
    assert (ad.user_filter, ad.search_filter) == ("sAMAccountName", "(sAMAccountName={username})")
    assert ad.mapping == AttributeMap(
        username="sAMAccountName",
        email="mail",
        phone="telephoneNumber",
        first_name="givenName",
        last_name="sn",
        display_name="displayName",
        groups="memberOf",
    )


def test_the_username_is_escaped_into_the_filter() -> None:
    settings = make(user_filter="(&(objectClass=person)(uid={username}))")
    assert (
        settings.user_search_filter("admin)(|(uid=*")
        == r"(&(objectClass=person)(uid=admin\29\28|\28uid=\2a))"
    )
    assert make(user_filter="mail").user_search_filter("a*b\\c") == r"(mail=a\2ab\5cc)"


@pytest.mark.parametrize(
    ("name", "message"),
    [("New", "'new' is reserved"), ("Bad_Name", "lower-case letters"), ("", "lower-case letters")],
)
def test_names_follow_the_policy_name_rule(name: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        make(name=name)
    assert make(name="  Corp-AD1 ").name == "corp-ad1"


@pytest.mark.parametrize("display_name", ["", "   ", "x" * 101, "two\nlines"])
def test_display_name_is_one_line_of_1_to_100_characters(display_name: str) -> None:
    with pytest.raises(BadRequest, match="display name"):
        make(display_name=display_name)


def test_kind_is_ad_openldap_or_ldap() -> None:
    with pytest.raises(BadRequest, match="ad, openldap, ldap"):
        make(kind="novell")
    assert make(kind="ldap").mapping.username == "uid"


def test_urls_are_normalised() -> None:
    settings = make(
        urls=("LDAPS://dc1.corp.example:636/", "ldap://[2001:db8::1]:389", "ldaps://dc1.corp.example:636")
    )
    assert settings.urls == ("ldaps://dc1.corp.example:636", "ldap://[2001:db8::1]:389")


@pytest.mark.parametrize(
    "urls",
    [
        (),
        ("http://ldap.example.com",),
        ("ldap://ldap.example.com/dc=example,dc=com",),
        ("ldap://ldap.example.com?uid",),
        ("ldap://ldap.example.com:0",),
        ("ldap://ldap.example.com:65536",),
        ("ldap://user@ldap.example.com",),
        ("ldap://",),
        tuple(f"ldap://dc{n}.example.com" for n in range(6)),
        "ldap://ldap.example.com",
    ],
)
def test_bad_urls_are_refused(urls: Any) -> None:
    with pytest.raises(BadRequest, match="URL"):
        make(urls=urls)


def test_start_tls_with_ldaps_is_refused() -> None:
    with pytest.raises(BadRequest, match="StartTLS secures an ldap:// connection"):
        make(urls=("ldap://a.example.com", "ldaps://b.example.com"), start_tls=True)
    assert make(start_tls=True).encrypted


def test_ca_certificate_must_be_a_pem_certificate() -> None:
    pem = ca_pem()
    assert make(ca_cert_pem=pem).ca_cert_pem == pem.strip() + "\n"
    assert make(ca_cert_pem="  ").ca_cert_pem is None
    for bad in (
        "not a certificate",
        pem.replace("MII", "XXX", 1),
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
    ):
        with pytest.raises(BadRequest, match=r"The CA certificate is not a PEM X\.509 certificate"):
            make(ca_cert_pem=bad)


@pytest.mark.parametrize("bind_dn", ["", "svc", "cn=svc,,dc=example", "cn="])
def test_bind_dn_must_be_a_dn(bind_dn: str) -> None:
    with pytest.raises(BadRequest, match="bind DN"):
        make(bind_dn=bind_dn)


@pytest.mark.parametrize(
    ("bases", "message"),
    [
        ((), "1 to 10 search bases"),
        (tuple(f"ou=u{n},dc=example,dc=com" for n in range(11)), "1 to 10 search bases"),
        (("ou=people,dc=example,dc=com", "people"), "not a distinguished name"),
    ],
)
def test_bases_are_1_to_10_dns(bases: tuple[str, ...], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        make(bases=bases)
    assert make(bases=("dc=a", "dc=b", "dc=a")).bases == ("dc=a", "dc=b")


@pytest.mark.parametrize(
    ("user_filter", "message"),
    [
        ("(uid=alice)", "exactly one {username} slot"),
        ("(|(uid={username})(mail={username}))", "exactly one {username} slot"),
        ("(uid={username}", "not a valid LDAP filter"),
        ("uid={username}", "not a valid LDAP filter"),
        ("(uid={username})(cn=x)", "not a valid LDAP filter"),
        ("(&(objectClass=person)(uid={username})", "not a valid LDAP filter"),
    ],
)
def test_custom_filters_need_one_slot_and_valid_syntax(user_filter: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        make(user_filter=user_filter)


def test_named_and_custom_filters_are_accepted() -> None:
    assert make(user_filter="userPrincipalName").search_filter == "(userPrincipalName={username})"
    custom = (
        "(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(sAMAccountName={username}))"
    )
    assert make(user_filter=custom).search_filter == custom


@pytest.mark.parametrize("attribute", ["", "1mail", "mail;binary", "mail attr", "ma_il"])
def test_mapped_attribute_names_must_be_ldap_attribute_names(attribute: str) -> None:
    with pytest.raises(BadRequest, match="is not an LDAP attribute name"):
        AttributeMap.for_kind("openldap", {"email": attribute})


def test_attribute_map_overrides_the_kind_defaults_and_knows_its_fields() -> None:
    mapping = AttributeMap.for_kind("ad", {"email": "userPrincipalName", "phone": "mobile"})
    assert (mapping.username, mapping.email, mapping.phone) == (
        "sAMAccountName",
        "userPrincipalName",
        "mobile",
    )
    with pytest.raises(BadRequest, match="'mobile' is not a mapped field"):
        AttributeMap.for_kind("ad", {"mobile": "mobile"})


def test_group_search_needs_a_group_base_and_a_member_attribute() -> None:
    with pytest.raises(BadRequest, match="needs the DN under which the groups are"):
        make(group_lookup="search")
    with pytest.raises(BadRequest, match="not an LDAP attribute name"):
        make(
            group_lookup="search", group_base="ou=groups,dc=example,dc=com", group_member_attribute="member;x"
        )
    with pytest.raises(BadRequest, match="memberOf, search"):
        make(group_lookup="nested")
    settings = make(group_lookup="search", group_base="ou=groups,dc=example,dc=com")
    assert (settings.group_base, settings.group_member_attribute) == ("ou=groups,dc=example,dc=com", "member")


@pytest.mark.parametrize("switch", [*SWITCHES, "start_tls", "verify_certificates"])
def test_switches_are_on_or_off(switch: str) -> None:
    with pytest.raises(BadRequest, match="is either on or off"):
        make(**{switch: "yes"})


def test_option_rules() -> None:
    with pytest.raises(BadRequest, match="turn on user auto registration or sync users"):
        make(welcome_emails=True)
    assert make(welcome_emails=True, auto_register=True).welcome_emails
    with pytest.raises(BadRequest, match="Active Directory changes a password only over an encrypted"):
        make(kind="ad", allow_password_change=True)
    assert make(kind="ad", allow_password_change=True, start_tls=True).allow_password_change
    assert make(kind="openldap", allow_password_change=True).allow_password_change


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(1 hour)",
        "rate(15 minutes)",
        "rate(2 days)",
        "cron(0 2 * * ? *)",
        "cron(0/30 8-17 ? * MON-FRI *)",
    ],
)
def test_eventbridge_schedules_are_accepted(schedule: str) -> None:
    assert make(schedule=f" {schedule} ").schedule == schedule


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(1 hours)",
        "rate(2 hour)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "cron(0 2 * * ?)",
        "cron(0 2 * * ? * *)",
        "hourly",
    ],
)
def test_bad_schedules_are_refused(schedule: str) -> None:
    with pytest.raises(BadRequest, match=r"rate\(1 hour\)"):
        make(schedule=schedule)


def test_settings_round_trip_through_json_and_hold_no_password() -> None:
    import json

    settings = make(
        kind="ad",
        urls=("ldaps://dc1.corp.example", "ldaps://dc2.corp.example"),
        attribute_map=AttributeMap.for_kind("ad", {"phone": "mobile"}),
        ca_cert_pem=ca_pem(),
        activate=True,
        schedule="rate(1 hour)",
    )
    assert DirectorySettings.from_mapping(json.loads(settings.to_json())) == settings
    assert not any(
        "password" in item.name for item in fields(DirectorySettings) if item.name != "allow_password_change"
    )
    assert "search_filter" not in json.loads(settings.to_json())
    assert asdict(settings)["attribute_map"]["phone"] == "mobile"


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("rate(1 minute)", "imports are checked every 5 minutes"),
        ("rate(4 minutes)", "imports are checked every 5 minutes"),
        ("cron(0 2 L * ? *)", "L, W and # .* are not supported"),
        ("cron(0 2 ? * 6#3 *)", "L, W and # .* are not supported"),
        ("cron(0 2 * * MON *)", "either the day of month or the day of week"),
        ("cron(61 2 * * ? *)", "the minutes must be from 0 to 59"),
    ],
)
def test_schedules_the_scheduled_imports_cannot_keep_are_refused_with_the_reason(
    schedule: str, reason: str
) -> None:
    with pytest.raises(BadRequest, match=reason):
        make(schedule=schedule)
    assert make(schedule="rate(5 minutes)").schedule == "rate(5 minutes)"
