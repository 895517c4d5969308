"""The admin console's user store form over HTTP against a real slapd: create a directory
with every setting, the cleartext switch and what the pages say of it, edit it (an empty bind
password keeps the stored one), delete it, and bad input refused with the settings' own
sentence and nothing stored (S26)."""

from __future__ import annotations

import json

import lxml.html
import pytest
import requests

from idp_core.directories import store
from idp_core.directories.settings import AttributeMap, DirectorySettings
from idp_core.models import Directory
from tests.helpers.console import submit, text_of
from tests.helpers.directory_console import (
    NEW_SERVICE_PASSWORD,
    SERVICE_PASSWORD,
    alert_of,
    audit_events,
    create_corp,
    details_text,
    form_for,
    form_value,
    notice_of,
    sealed_password,
    stored,
)
from tests.helpers.sso import Sso
from tests.support.slapd import Slapd, Subtree, certificate_authority

pytestmark = pytest.mark.sso_setup("password_only")


def test_the_admin_creates_a_user_store_with_every_setting(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    assert "There are no user stores yet." in sso.get(admin, "/admin/directories").text
    assert 'href="/admin/directories"' in sso.get(admin, "/admin").text
    ca_pem = certificate_authority("Corp CA").certificate_pem
    every_setting = {
        "name": "Corp-AD",
        "display_name": "Corp Active Directory",
        "kind": "ad",
        "urls": "ldap://dc1.corp.example:389\r\n\r\n  ldap://dc2.corp.example \r\n",
        "start_tls": "on",
        "ca_cert_pem": ca_pem.replace("\n", "\r\n"),
        "verify_certificates": "on",
        "bind_dn": "CN=IdP Service,OU=Service Accounts,DC=corp,DC=example",
        "bind_password": SERVICE_PASSWORD,
        "bases": "OU=Staff,DC=corp,DC=example\r\nOU=Contractors,DC=corp,DC=example",
        "user_filter": "custom",
        "custom_filter": "(&(objectClass=user)(sAMAccountName={username}))",
        "map_username": "",
        "map_email": "userPrincipalName",
        "map_phone": "mobile",
        "map_first_name": "",
        "map_last_name": "",
        "map_display_name": "",
        "map_groups": "",
        "group_lookup": "search",
        "group_base": "OU=Groups,DC=corp,DC=example",
        "group_member_attribute": "member",
        **{
            switch: "on"
            for switch in (
                "activate",
                "sync_users",
                "backup_auth",
                "allow_password_change",
                "admin_login",
                "show_to_users",
                "send_configured_attributes",
                "auto_register",
                "welcome_emails",
            )
        },
        "schedule": "rate(1 hour)",
    }

    created = submit(sso, admin, "/admin/directories", every_setting, page="/admin/directories/new")

    assert created.status_code == 303, text_of(created)[:3000]
    assert created.headers["Location"] == "/admin/directories/corp-ad?notice=directory-created"
    assert store.load("corp-ad") == DirectorySettings(
        name="corp-ad",
        display_name="Corp Active Directory",
        kind="ad",
        urls=("ldap://dc1.corp.example:389", "ldap://dc2.corp.example"),
        bind_dn="CN=IdP Service,OU=Service Accounts,DC=corp,DC=example",
        bases=("OU=Staff,DC=corp,DC=example", "OU=Contractors,DC=corp,DC=example"),
        user_filter="(&(objectClass=user)(sAMAccountName={username}))",
        attribute_map=AttributeMap.for_kind("ad", {"email": "userPrincipalName", "phone": "mobile"}),
        start_tls=True,
        ca_cert_pem=ca_pem,
        verify_certificates=True,
        group_lookup="search",
        group_base="OU=Groups,DC=corp,DC=example",
        group_member_attribute="member",
        activate=True,
        sync_users=True,
        backup_auth=True,
        allow_password_change=True,
        admin_login=True,
        show_to_users=True,
        send_configured_attributes=True,
        auto_register=True,
        welcome_emails=True,
        schedule="rate(1 hour)",
    )
    assert sealed_password("corp-ad") == SERVICE_PASSWORD
    (event,) = audit_events("directory.created")
    assert event.actor == "root" and event.subject == "corp-ad"
    assert SERVICE_PASSWORD not in details_text(event)

    page = sso.get(admin, created.headers["Location"])
    assert notice_of(page) == "The directory was saved. Test its settings with the buttons below."
    document = lxml.html.fromstring(page.text)
    assert form_value(document, "urls") == "ldap://dc1.corp.example:389\nldap://dc2.corp.example"
    assert form_value(document, "user_filter") == "custom"
    assert form_value(document, "custom_filter") == "(&(objectClass=user)(sAMAccountName={username}))"
    assert form_value(document, "map_username") == "sAMAccountName"
    assert form_value(document, "map_email") == "userPrincipalName"
    assert form_value(document, "bind_password") == ""
    assert form_value(document, "welcome_emails") == "on"
    assert SERVICE_PASSWORD not in page.text

    listing = sso.get(admin, "/admin/directories")
    (row,) = lxml.html.fromstring(listing.text).xpath("//tbody/tr")
    assert [" ".join(cell.text_content().split()) for cell in row] == [
        "corp-ad",
        "Corp Active Directory",
        "Active Directory",
        "ldap://dc1.corp.example:389, ldap://dc2.corp.example",
        "Encrypted (StartTLS)",
        "Activate LDAP, Sync users, Backup authentication, Allow users to change password, "
        "Enable administrator login, Show IdP to users, Send configured attributes, "
        "Enable user auto registration, Send welcome e-mails after registration",
        "rate(1 hour)",
        "Never",
    ]


def test_the_form_offers_the_cleartext_switch_with_a_warning_and_the_pages_show_it(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    new_form = lxml.html.fromstring(sso.get(admin, "/admin/directories/new").text)
    [box] = new_form.xpath("//input[@type='checkbox'][@name='allow_cleartext']")
    assert box.get("checked") is None
    [label] = new_form.xpath(f"//label[@for='{box.get('id')}']")
    assert label.text_content() == "Allow unencrypted connection"
    [warning] = new_form.xpath(f"//*[@id='{box.get('aria-describedby')}']")
    assert warning.text_content().startswith(
        "Warning: without ldaps:// or StartTLS, the service account's password"
    )
    assert box.xpath("ancestor::fieldset/legend/text()") == ["Connection security"]

    # Unticked, an ldap:// URL without StartTLS is refused with the reason, and nothing is stored.
    before = stored()
    refused = submit(sso, admin, "/admin/directories", form_for(slapd, ldap_tree, allow_cleartext="-"))
    assert refused.status_code == 400
    assert alert_of(refused).startswith(f"Connections to {slapd.url} would not be encrypted,")
    assert stored() == before

    create_corp(sso, admin, slapd, ldap_tree)
    page = sso.get(admin, "/admin/directories/corp")
    document = lxml.html.fromstring(page.text)
    assert (
        document.xpath("string(//*[@id='connection-security'])") == "Unencrypted, allowed by an administrator"
    )
    assert "an administrator allowed it" in document.xpath("string(//*[@id='cleartext-warning'])")
    assert form_value(document, "allow_cleartext") == "on"
    listed = lxml.html.fromstring(sso.get(admin, "/admin/directories").text)
    assert "Unencrypted, allowed by an administrator" in listed.xpath("string(//tbody/tr)")
    assert "Allow unencrypted connection" in listed.xpath("string(//tbody/tr)")
    (event,) = audit_events("directory.created")
    assert event.details is not None and event.details["allow_cleartext"] == "True"


def test_a_directory_stored_before_the_switch_says_its_connections_are_refused(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    item = Directory.get("corp")
    legacy = json.loads(item.settings)
    del legacy["allow_cleartext"]
    item.update(actions=[Directory.settings.set(json.dumps(legacy))])

    page = sso.get(admin, "/admin/directories/corp")
    document = lxml.html.fromstring(page.text)
    assert document.xpath("string(//*[@id='connection-security'])") == "Unencrypted, refused"
    assert "sign-ins, tests and imports through it are refused" in document.xpath(
        "string(//*[@id='cleartext-warning'])"
    )
    tested = submit(sso, admin, "/admin/directories/corp/test/connection", {}, page="/admin/directories/corp")
    assert tested.status_code == 400
    assert alert_of(tested).startswith(f"Connections to {slapd.url} would not be encrypted,")


def test_editing_keeps_the_bind_password_when_its_field_is_empty(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)

    saved = submit(
        sso,
        admin,
        "/admin/directories/corp",
        form_for(slapd, ldap_tree, name="-", bind_password="", display_name="Corp", map_phone="mobile"),
        page="/admin/directories/corp",
    )

    assert saved.status_code == 303, text_of(saved)[:3000]
    assert saved.headers["Location"] == "/admin/directories/corp?notice=directory-saved"
    settings = store.load("corp")
    assert settings.display_name == "Corp" and settings.mapping.phone == "mobile"
    assert sealed_password() == SERVICE_PASSWORD
    (event,) = audit_events("directory.changed")
    assert event.actor == "root" and event.details["bind_password_changed"] == "False"

    sso.clock.advance(1)  # so the two change events sort by time
    changed = submit(
        sso,
        admin,
        "/admin/directories/corp",
        form_for(slapd, ldap_tree, name="-", bind_password=NEW_SERVICE_PASSWORD),
        page="/admin/directories/corp",
    )
    assert changed.status_code == 303
    assert sealed_password() == NEW_SERVICE_PASSWORD
    assert audit_events("directory.changed")[-1].details["bind_password_changed"] == "True"


def test_the_admin_deletes_a_user_store(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)

    deleted = submit(sso, admin, "/admin/directories/corp/delete", {}, page="/admin/directories/corp")

    assert deleted.status_code == 303
    assert deleted.headers["Location"] == "/admin/directories?notice=directory-deleted"
    assert list(Directory.scan()) == []
    assert "The directory was deleted." in sso.get(admin, deleted.headers["Location"]).text
    missing = sso.get(admin, "/admin/directories/corp")
    assert missing.status_code == 404 and "There is no directory 'corp'." in text_of(missing)
    (event,) = audit_events("directory.deleted")
    assert event.actor == "root" and event.subject == "corp"


def test_a_new_user_store_cannot_take_an_existing_name(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    before = stored()
    refused = submit(sso, admin, "/admin/directories", form_for(slapd, ldap_tree, display_name="Other"))
    assert refused.status_code == 409
    assert alert_of(refused) == "The directory 'corp' already exists."
    assert stored() == before


# ---------------------------------------------------------------- bad input


BAD_INPUT = [
    (
        {"user_filter": "custom", "custom_filter": "(&(objectClass=person)(uid=alice))"},
        "A custom user filter has exactly one {username} slot for the name typed at sign-in",
        'value="(&amp;(objectClass=person)(uid=alice))"',
    ),
    (
        {"map_email": "e mail"},
        "'e mail' for the email is not an LDAP attribute name (a letter, then letters, digits and hyphens).",
        'value="e mail"',
    ),
    (
        {"urls": "http://ldap.corp.example"},
        "'http://ldap.corp.example' is not a directory server URL: use ldap://host[:port] or "
        "ldaps://host[:port], without a path or query.",
        ">http://ldap.corp.example</textarea>",
    ),
    (
        {"ca_cert_pem": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"},
        "The CA certificate is not a PEM X.509 certificate",
        ">-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----</textarea>",
    ),
    ({"schedule": "every hour"}, "'every hour' is not a schedule", 'value="every hour"'),
    ({"display_name": ""}, "The display name is 1-100 characters on one line.", None),
    ({"kind": "novell"}, "The directory type must be one of: Active Directory, OpenLDAP, Other LDAP.", None),
]


@pytest.mark.parametrize(("change", "message", "kept"), BAD_INPUT)
def test_bad_input_on_create_is_a_clear_400_on_the_form_and_stores_nothing(
    sso: Sso,
    admin: requests.Session,
    slapd: Slapd,
    ldap_tree: Subtree,
    change: dict[str, str],
    message: str,
    kept: str | None,
) -> None:
    before = stored()

    refused = submit(
        sso, admin, "/admin/directories", form_for(slapd, ldap_tree, **change), page="/admin/directories/new"
    )

    assert refused.status_code == 400, text_of(refused)[:3000]
    assert message in alert_of(refused)
    # The form comes back with what the admin typed, except the bind password.
    assert ">New user store</h1>" in refused.text and 'value="corp"' in refused.text
    if kept is not None:
        assert kept in refused.text
    assert SERVICE_PASSWORD not in refused.text
    assert stored() == before


@pytest.mark.parametrize(("change", "message", "kept"), BAD_INPUT)
def test_bad_input_on_edit_is_a_clear_400_and_keeps_the_stored_settings(
    sso: Sso,
    admin: requests.Session,
    slapd: Slapd,
    ldap_tree: Subtree,
    change: dict[str, str],
    message: str,
    kept: str | None,
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    before = stored()

    refused = submit(
        sso,
        admin,
        "/admin/directories/corp",
        form_for(slapd, ldap_tree, name="-", bind_password=NEW_SERVICE_PASSWORD, **change),
        page="/admin/directories/corp",
    )

    assert refused.status_code == 400, text_of(refused)[:3000]
    assert message in alert_of(refused)
    if kept is not None:
        assert kept in refused.text
    assert NEW_SERVICE_PASSWORD not in refused.text
    assert stored() == before
    assert sealed_password() == SERVICE_PASSWORD


def test_a_new_user_store_needs_a_bind_password(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    refused = submit(sso, admin, "/admin/directories", form_for(slapd, ldap_tree, bind_password=""))
    assert refused.status_code == 400
    assert alert_of(refused) == "The bind password of the service account is required."
    assert stored() == {"items": [], "events": []}


# ---------------------------------------------------------------- the four tests
