"""The admin console's user stores over HTTP against a real slapd: create a directory with
every setting, edit it (an empty bind password keeps the stored one), bad input refused with
the settings' own sentence and nothing stored (S26), the four tests succeeding and failing
with a precise reason (each an audit event without the password, S25), "Import now" with
its counts on the page after the next tick, delete, and the pages for administrators only (CSRF, S16)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import lxml.html
import pytest
import requests

from idp_core import accounts
from idp_core.clock import FakeClock, readable_utc
from idp_core.config import Tables
from idp_core.directories import scheduling, store
from idp_core.directories.settings import AttributeMap, DirectorySettings
from idp_core.models import AuditEvent, Directory, User
from tests.helpers.mfa import give_totp, password_only, prove_second_factor
from tests.helpers.sso import PASSWORD, Sso, csrf_token, running_sso
from tests.integration.test_scheduled_imports import slapd_delete, tick
from tests.support.slapd import Slapd, Subtree, certificate_authority, closed_port

SERVICE_PASSWORD = "service-secret"
NEW_SERVICE_PASSWORD = "service-secret-2"
ALICE_PASSWORD = "alice-Directory-1"
TEST_PASSWORD_FIELD = "password"


@pytest.fixture
def sso(tables: Tables, clock: FakeClock) -> Iterator[Sso]:
    with running_sso(tables, clock) as stack:
        password_only(clock)
        yield stack


@pytest.fixture
def admin(sso: Sso) -> requests.Session:
    """root, signed in and stepped up with an authenticator app: the console wants both."""
    accounts.create_user("root", password=PASSWORD, is_admin=True, clock=sso.clock)
    secret = give_totp(sso, "root")
    browser = sso.browser()
    assert sso.sign_in(browser, "root").status_code == 303
    prove_second_factor(sso, browser, secret)
    return browser


@pytest.fixture
def people(ldap_tree: Subtree) -> dict[str, str]:
    """The service account outside ou=people, alice (every mapped attribute, in engineers)
    and bob (no phone); returns their DNs."""
    ldap_tree.add_user("svc", SERVICE_PASSWORD, parent=ldap_tree.dn)
    alice = ldap_tree.add_user(
        "alice",
        ALICE_PASSWORD,
        cn="Alice Example",
        sn="Example",
        given_name="Alice",
        mail="alice@corp.example",
        phone="+15555550100",
    )
    bob = ldap_tree.add_user(
        "bob", "bob-Directory-1", cn="Bob Builder", sn="Builder", mail="bob@corp.example"
    )
    ldap_tree.add_group("engineers", [alice])
    return {"alice": alice, "bob": bob}


def form_for(slapd: Slapd, tree: Subtree, **changes: str) -> dict[str, str]:
    """The console's form for the directory ``corp`` over the test's subtree, as a browser
    posts it: every text field, the ticked boxes only."""
    form = {
        "name": "corp",
        "display_name": "Corp LDAP",
        "kind": "openldap",
        "urls": slapd.url,
        "allow_cleartext": "on",  # slapd speaks plain LDAP on 127.0.0.1 (S30)
        "ca_cert_pem": "",
        "verify_certificates": "on",
        "bind_dn": f"uid=svc,{tree.dn}",
        "bind_password": SERVICE_PASSWORD,
        "bases": tree.people,
        "user_filter": "uid",
        "custom_filter": "",
        **{f"map_{field}": "" for field in ("username", "email", "phone", "first_name", "last_name")},
        "map_display_name": "",
        "map_groups": "",
        "group_lookup": "memberOf",
        "group_base": "",
        "group_member_attribute": "member",
        "activate": "on",
        "auto_register": "on",
        "schedule": "",
    }
    form.update(changes)
    return {name: value for name, value in form.items() if value != "-"}


def submit(
    sso: Sso, browser: requests.Session, path: str, data: dict[str, str], *, page: str = "/admin/directories"
) -> requests.Response:
    """Post a console form the way the browser does: with the session's CSRF token."""
    shown = sso.get(browser, page)
    assert shown.status_code == 200, shown.text[:500]
    return sso.post(browser, path, {"csrf_token": csrf_token(shown.text), **data})


def text_of(response: requests.Response) -> str:
    return html.unescape(response.text)


def alert_of(response: requests.Response) -> str:
    (alert,) = lxml.html.fromstring(response.text).xpath("//*[@role='alert']")
    return " ".join(alert.text_content().split())


def notice_of(response: requests.Response) -> str:
    (notice,) = lxml.html.fromstring(response.text).xpath("//*[@role='status']")
    return " ".join(notice.text_content().split())


def stored() -> dict[str, Any]:
    """Every stored directory and directory change event, to show a refused post wrote nothing."""
    return {
        "items": sorted((item.name, item.settings, item.bind_password) for item in Directory.scan()),
        "events": sorted(
            event.type
            for event in AuditEvent.scan()
            if event.type.startswith("directory.") and event.type != "directory.test"
        ),
    }


def sealed_password(name: str = "corp") -> str | None:
    return store.bind_password(Directory.get(name), kms=boto3.client("kms"))


def details_text(event: AuditEvent) -> str:
    return json.dumps(event.details.as_dict() if event.details else {})


def audit_events(event_type: str) -> list[AuditEvent]:
    return sorted((e for e in AuditEvent.scan() if e.type == event_type), key=lambda e: e.at)


def create_corp(sso: Sso, admin: requests.Session, slapd: Slapd, tree: Subtree, **changes: str) -> None:
    created = submit(sso, admin, "/admin/directories", form_for(slapd, tree, **changes))
    assert created.status_code == 303, text_of(created)[:3000]


def form_value(document: Any, name: str) -> str:
    (control,) = document.xpath(f"//form//*[@name='{name}']")
    if control.tag == "select":
        (selected,) = control.xpath("option[@selected]/@value")
        return str(selected)
    if control.get("type") == "checkbox":
        return "on" if control.get("checked") is not None else ""
    return str(control.text or "") if control.tag == "textarea" else str(control.get("value"))


# ---------------------------------------------------------------- create, edit, delete


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


def run_test(
    sso: Sso, admin: requests.Session, test: str, **fields: str
) -> tuple[requests.Response, AuditEvent]:
    """Press one test button of corp's page; returns the page and the test's audit event."""
    sso.clock.advance(1)  # each test's event is the latest one
    response = submit(
        sso, admin, f"/admin/directories/corp/test/{test}", fields, page="/admin/directories/corp"
    )
    event = audit_events("directory.test")[-1]
    assert event.actor == "root" and event.subject == "corp" and event.details["test"] == test
    # The password typed for a test is never shown again nor recorded.
    for secret in (ALICE_PASSWORD, "wrong-Password-1", SERVICE_PASSWORD):
        assert secret not in response.text and secret not in details_text(event)
    return response, event


def test_each_test_button_answers_with_a_clear_success(
    sso: Sso,
    admin: requests.Session,
    slapd: Slapd,
    ldap_tree: Subtree,
    people: dict[str, str],
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    before = stored()

    connected, event = run_test(sso, admin, "connection")
    assert connected.status_code == 200 and event.outcome == "success"
    assert notice_of(connected) == f"Connected to {slapd.url}."

    bound, event = run_test(sso, admin, "bind")
    assert bound.status_code == 200 and event.outcome == "success"
    assert notice_of(bound) == f"Bound to {slapd.url} as uid=svc,{ldap_tree.dn}."

    signed_in, event = run_test(sso, admin, "configuration", username="alice", password=ALICE_PASSWORD)
    assert signed_in.status_code == 200 and event.outcome == "success"
    assert notice_of(signed_in) == f"alice signed in as {people['alice']}."
    assert event.details["username"] == "alice"
    (typed,) = lxml.html.fromstring(signed_in.text).xpath("//input[@id='configuration-username']/@value")
    assert typed == "alice"

    mapped, event = run_test(sso, admin, "mapping", username="alice")
    assert mapped.status_code == 200 and event.outcome == "success"
    assert notice_of(mapped) == f"alice ({people['alice']}) maps to all fields; groups: engineers."
    (table,) = lxml.html.fromstring(mapped.text).xpath("//table[caption='Mapped attributes']")
    rows = [[" ".join(cell.text_content().split()) for cell in row] for row in table.xpath("./tbody/tr")]
    assert rows == [
        ["Username", "uid", "alice"],
        ["E-mail", "mail", "alice@corp.example"],
        ["Phone", "telephoneNumber", "+15555550100"],
        ["First name", "givenName", "Alice"],
        ["Last name", "sn", "Example"],
        ["Display name", "cn", "Alice Example"],
        ["Group membership", "memberOf", "engineers"],
    ]
    # Tests change nothing but the audit trail.
    assert stored() == before


FAILING_TESTS = [
    pytest.param(
        {"bind_password": "wrong-Password-1"},
        "bind",
        {},
        "The directory refused the bind DN uid=svc,{tree} or its password (invalidCredentials).",
        id="wrong bind password",
    ),
    pytest.param(
        {},
        "configuration",
        {"username": "alice", "password": "wrong-Password-1"},
        "The directory refused the password of {alice}.",
        id="wrong user password",
    ),
    pytest.param(
        {},
        "configuration",
        {"username": "alice", "password": ""},
        "An empty password is never sent to the directory.",
        id="empty user password",
    ),
    pytest.param(
        {},
        "mapping",
        {"username": "carol"},
        "No entry under ou=people,{tree} matches (uid=carol).",
        id="no such user",
    ),
    pytest.param(
        {},
        "mapping",
        {"username": "admin)(|(uid=*"},
        r"No entry under ou=people,{tree} matches (uid=admin\29\28|\28uid=\2a).",
        id="filter injection matches no one",
    ),
    pytest.param(
        {"user_filter": "custom", "custom_filter": "(|(uid={username})(sn=Builder)(sn=Example))"},
        "mapping",
        {"username": "alice"},
        "2 entries match (|(uid=alice)(sn=Builder)(sn=Example)) ({alice}, {bob}); exactly one must.",
        id="several users",
    ),
    pytest.param(
        {},
        "mapping",
        {"username": "bob"},
        "The entry {bob} has no attribute for: phone (telephoneNumber), first name (givenName).",
        id="attribute missing",
    ),
]


@pytest.mark.parametrize(("settings", "test", "fields", "reason"), FAILING_TESTS)
def test_each_test_button_fails_with_the_precise_reason(
    sso: Sso,
    admin: requests.Session,
    slapd: Slapd,
    ldap_tree: Subtree,
    people: dict[str, str],
    settings: dict[str, str],
    test: str,
    fields: dict[str, str],
    reason: str,
) -> None:
    create_corp(sso, admin, slapd, ldap_tree, **settings)
    before = stored()

    failed, event = run_test(sso, admin, test, **fields)

    expected = reason.format(tree=ldap_tree.dn, alice=people["alice"], bob=people["bob"])
    assert failed.status_code == 400, text_of(failed)[:3000]
    assert alert_of(failed) == expected
    assert event.outcome == "failure" and event.details["reason"] == expected
    if "username" in fields:
        assert event.details["username"] == fields["username"]
        # The page keeps the username typed into the test's form.
        field_id = f"{test}-username"
        (typed,) = lxml.html.fromstring(failed.text).xpath(f"//input[@id='{field_id}']/@value")
        assert typed == fields["username"]
    assert ">User store corp</h1>" in failed.text
    assert stored() == before


def test_an_unreachable_server_fails_the_test_with_the_reason(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    port = closed_port()
    create_corp(sso, admin, slapd, ldap_tree, urls=f"ldap://127.0.0.1:{port}")
    before = stored()

    for test in ("connection", "bind"):
        failed, event = run_test(sso, admin, test)
        assert failed.status_code == 400
        reason = alert_of(failed)
        assert reason.startswith(f"No directory server could be reached (ldap://127.0.0.1:{port}: "), reason
        assert event.outcome == "failure" and event.details["reason"] == reason
    assert stored() == before


def test_an_unknown_test_or_directory_is_a_clear_404(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    unknown = submit(
        sso, admin, "/admin/directories/corp/test/everything", {}, page="/admin/directories/corp"
    )
    assert unknown.status_code == 404
    assert "There is no directory test 'everything'" in alert_of(unknown)
    assert submit(sso, admin, "/admin/directories/nothing/test/bind", {}).status_code == 404
    assert submit(sso, admin, "/admin/directories/nothing/import", {}).status_code == 404
    assert (
        submit(sso, admin, "/admin/directories/nothing", form_for(slapd, ldap_tree, name="-")).status_code
        == 404
    )
    assert submit(sso, admin, "/admin/directories/nothing/delete", {}).status_code == 404
    assert audit_events("directory.test") == []


# ---------------------------------------------------------------- import now

REQUESTED = (
    "Import requested: it starts within 5 minutes, at the next scheduled check; "
    "this page shows its counts when it has run."
)


def request_import(sso: Sso, admin: requests.Session, **fields: str) -> requests.Response:
    """Press "Import now" on corp's page (ticking Full import with full="on")."""
    pressed = submit(sso, admin, "/admin/directories/corp/import", fields, page="/admin/directories/corp")
    assert pressed.status_code == 303, text_of(pressed)[:3000]
    assert pressed.headers["Location"] == "/admin/directories/corp?notice=import-requested"
    return pressed


def last_run_facts(page: requests.Response) -> dict[str, str]:
    (facts,) = lxml.html.fromstring(page.text).xpath("//section[@aria-labelledby='last-run-heading']/dl")
    return dict(zip(facts.xpath("./dt/text()"), facts.xpath("./dd/text()"), strict=True))


def text_by_id(page: requests.Response, element_id: str) -> str | None:
    found = lxml.html.fromstring(page.text).xpath(f"//*[@id='{element_id}']")
    return " ".join(found[0].text_content().split()) if found else None


def list_cell(sso: Sso, admin: requests.Session) -> str:
    """The Last import cell of corp's row in the list of user stores."""
    (row,) = lxml.html.fromstring(sso.get(admin, "/admin/directories").text).xpath("//tbody/tr")
    return " ".join(row[-1].text_content().split())


def corp_users() -> set[str]:
    return {user.username for user in User.scan() if user.source == "ldap:corp"}


def test_import_now_is_a_request_the_next_tick_runs_and_the_page_then_shows_the_counts(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    """A directory without a schedule: the button records the request and imports nothing;
    the next Scheduled Event runs it in the admin's name."""
    create_corp(sso, admin, slapd, ldap_tree)
    page = sso.get(admin, "/admin/directories/corp")
    assert "No import has run yet." in page.text and "It runs in the background" in page.text
    assert text_by_id(page, "import-pending") is None

    pressed = request_import(sso, admin, full="on")

    shown = sso.get(admin, pressed.headers["Location"])
    assert notice_of(shown) == REQUESTED
    requested_at = readable_utc(sso.clock.now())
    assert text_by_id(shown, "import-pending") == (
        f"A full import was requested at {requested_at} by root; it starts at the next scheduled check."
    )
    assert "No import has run yet." in shown.text
    assert list_cell(sso, admin) == f"Never; full import requested at {requested_at} by root"
    assert corp_users() == set()
    item = Directory.get("corp")
    assert (item.import_requested_at, item.import_requested_full, item.import_requested_by) == (
        sso.clock.now(),
        True,
        "root",
    )
    (requested,) = audit_events("directory.import_requested")
    assert (requested.actor, requested.subject, requested.details["full"]) == ("root", "corp", "True")
    assert audit_events("directory.import") == []

    sso.clock.advance(3 * 60)
    result = tick(sso.provisioning_handler, sso.clock)

    corp = result["directories"]["corp"]
    assert (corp["status"], corp["full"], corp["requested_by"], corp["created"]) == ("ran", True, "root", 2)
    assert corp_users() == {"alice", "bob"}
    assert User.get("alice").groups == {"engineers"}
    shown = sso.get(admin, "/admin/directories/corp")
    assert text_by_id(shown, "import-pending") is None and text_by_id(shown, "import-running") is None
    pairs = last_run_facts(shown)
    assert pairs["Kind of run"] == "Full" and pairs["Finished"] == readable_utc(sso.clock.now())
    assert (pairs["Created"], pairs["Updated"], pairs["Disabled"], pairs["Unchanged"], pairs["Errors"]) == (
        "2",
        "0",
        "0",
        "0",
        "0",
    )
    (event,) = audit_events("directory.import")
    assert event.actor == "root" and event.outcome == "success" and event.details["full"] == "True"
    item = Directory.get("corp")
    # The request is served and the lock released; a directory without a schedule has no slot.
    assert (item.import_requested_at, item.running_until, item.last_scheduled_at) == (None, None, None)
    assert item.last_full_at == sso.clock.now()

    # Nothing is pending: the next tick leaves the directory alone.
    sso.clock.advance(5 * 60)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"] == {
        "status": "skipped",
        "reason": "no schedule",
    }

    # An incremental request changes nothing (it may re-read entries at the watermark's
    # second); the list shows its counts.
    sso.clock.advance(60)
    request_import(sso, admin)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]["full"] is False
    assert re.fullmatch(
        r"[0-9-]{10} [0-9:]{5} UTC, incremental: 0 created, 0 updated, 0 disabled, [0-2] unchanged, 0 errors",
        list_cell(sso, admin),
    ), list_cell(sso, admin)


def test_a_full_request_runs_full_and_a_second_request_only_makes_a_pending_one_full(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    request_import(sso, admin)
    tick(sso.provisioning_handler, sso.clock)  # the first run is full: none has run yet
    slapd_delete(slapd, people["bob"])
    sso.clock.advance(60)

    # Incremental requested: an incremental run cannot see that bob is gone.
    request_import(sso, admin)
    incremental = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]
    assert (incremental["full"], incremental["disabled"]) == (False, 0)
    assert not User.get("bob").disabled

    sso.clock.advance(60)
    first_at = sso.clock.now()
    request_import(sso, admin)
    sso.clock.advance(60)
    request_import(sso, admin, full="on")
    sso.clock.advance(60)
    request_import(sso, admin)
    item = Directory.get("corp")
    # One pending request, from the first press, made full by the second.
    assert (item.import_requested_at, item.import_requested_full) == (first_at, True)
    pending = text_by_id(sso.get(admin, "/admin/directories/corp"), "import-pending")
    assert pending == (
        f"A full import was requested at {readable_utc(first_at)} by root; "
        "it starts at the next scheduled check."
    )

    full = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]

    assert (full["status"], full["full"], full["disabled"]) == ("ran", True, 1)
    assert User.get("bob").disabled
    assert [e.details["full"] for e in audit_events("directory.import_requested")] == [
        "False",
        "False",
        "False",
        "True",
        "False",
    ]
    assert len(audit_events("directory.import")) == 3
    sso.clock.advance(5 * 60)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]["status"] == "skipped"


def test_a_request_made_during_a_running_import_waits_for_the_next_tick(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    """A tick serves the first request and holds the lock; the admin presses again meanwhile:
    the following ticks wait for the lock, then run the second request."""
    create_corp(sso, admin, slapd, ldap_tree)
    request_import(sso, admin)
    started = sso.clock.now()
    # A tick has taken the lock for the first request and is importing.
    held = scheduling.take_lock(Directory.get("corp"), started, slot=False, request=True)
    assert held is not None and Directory.get("corp").import_requested_at is None
    sso.clock.advance(60)
    request_import(sso, admin, full="on")

    page = sso.get(admin, "/admin/directories/corp")
    assert text_by_id(page, "import-running") == f"An import is running since {readable_utc(started)}."
    assert text_by_id(page, "import-pending") == (
        f"A full import was requested at {readable_utc(sso.clock.now())} by root; "
        "it starts at the next scheduled check after the running import."
    )
    requested_at = readable_utc(sso.clock.now())
    assert list_cell(sso, admin).endswith(
        f"running since {readable_utc(started)}; full import requested at {requested_at} by root"
    )
    sso.clock.advance(4 * 60)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"] == {
        "status": "skipped",
        "reason": "already running",
    }
    assert corp_users() == set() and Directory.get("corp").import_requested_full is True

    scheduling.release_lock("corp", held)
    sso.clock.advance(5 * 60)
    outcome = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]

    assert (outcome["status"], outcome["full"], outcome["created"]) == ("ran", True, 2)
    assert corp_users() == {"alice", "bob"}
    assert Directory.get("corp").import_requested_at is None


def test_a_tick_that_read_an_older_request_does_not_clear_a_newer_one(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    """Two overlapping ticks read the first request; the first serves it and the admin asks
    again: the second tick's stale copy takes neither the lock nor the new request."""
    create_corp(sso, admin, slapd, ldap_tree)
    request_import(sso, admin)
    seen_by_first = Directory.get("corp")
    seen_by_second = Directory.get("corp")
    until = scheduling.take_lock(seen_by_first, sso.clock.now(), slot=False, request=True)
    assert until is not None
    scheduling.release_lock("corp", until)
    sso.clock.advance(60)
    request_import(sso, admin)

    assert scheduling.take_lock(seen_by_second, sso.clock.now(), slot=False, request=True) is None
    assert Directory.get("corp").import_requested_at == sso.clock.now()


def test_a_requested_run_does_not_move_the_directorys_schedule(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]
) -> None:
    """An hourly directory: a tick that finds its slot due and a request pending serves both
    with one run; a request later in the hour runs without moving the next slot."""
    create_corp(sso, admin, slapd, ldap_tree, schedule="rate(1 hour)")
    request_import(sso, admin)
    first = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]
    assert (first["status"], first["created"], first["requested_by"]) == ("ran", 2, "root")
    slot = Directory.get("corp").last_scheduled_at
    assert slot == sso.clock.now() and Directory.get("corp").import_requested_at is None

    sso.clock.advance(10 * 60)
    request_import(sso, admin)
    requested = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]

    assert (requested["status"], requested["requested_by"]) == ("ran", "root")
    assert Directory.get("corp").last_scheduled_at == slot
    # The next slot is still an hour after the first run, not after the requested one.
    sso.clock.advance(45 * 60)
    assert tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]["reason"] == "not due"
    sso.clock.advance(5 * 60)
    scheduled = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]
    assert scheduled["status"] == "ran" and "requested_by" not in scheduled
    assert Directory.get("corp").last_scheduled_at == sso.clock.now()
    assert [e.actor for e in audit_events("directory.import")] == ["root", "root", "scheduler"]


def test_a_requested_import_of_an_unreachable_directory_shows_the_reason(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    port = closed_port()
    create_corp(sso, admin, slapd, ldap_tree, urls=f"ldap://127.0.0.1:{port}")
    request_import(sso, admin, full="on")

    failed = tick(sso.provisioning_handler, sso.clock)["directories"]["corp"]

    assert (failed["status"], failed["requested_by"]) == ("failed", "root")
    page = sso.get(admin, "/admin/directories/corp")
    failure = text_by_id(page, "last-failure") or ""
    assert failure.startswith(
        f"The full import at {readable_utc(sso.clock.now())} failed: No directory server could be reached "
        f"(ldap://127.0.0.1:{port}"
    ), failure
    assert "last failure:" in list_cell(sso, admin)
    item = Directory.get("corp")
    assert (item.last_run, item.import_requested_at, item.running_until) == (None, None, None)
    (event,) = audit_events("directory.import")
    assert event.outcome == "failure" and event.actor == "root"


# ---------------------------------------------------------------- who may use the console


def test_the_user_store_pages_are_for_administrators_only(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    accounts.create_user("bob", password=PASSWORD, clock=sso.clock)
    bob = sso.browser()
    assert sso.sign_in(bob, "bob").status_code == 303
    token = csrf_token(sso.get(bob, "/me").text)
    before = stored()

    for path in ("/admin/directories", "/admin/directories/new", "/admin/directories/corp"):
        page = sso.get(bob, path)
        assert page.status_code == 403, path
        assert "This page is for administrators." in page.text
    for path, data in (
        ("/admin/directories", form_for(slapd, ldap_tree, name="evil")),
        ("/admin/directories/corp", form_for(slapd, ldap_tree, name="-")),
        ("/admin/directories/corp/delete", {}),
        ("/admin/directories/corp/test/bind", {}),
        ("/admin/directories/corp/import", {"full": "on"}),
    ):
        assert sso.post(bob, path, {"csrf_token": token, **data}).status_code == 403, path

    assert stored() == before
    assert audit_events("directory.test") == []
    assert (
        sso.get(sso.browser(), "/admin/directories").headers["Location"]
        == "/login?next=%2Fadmin%2Fdirectories"
    )


def test_a_post_without_a_valid_csrf_token_is_refused_and_stores_nothing(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    before = stored()
    for path, data in (
        ("/admin/directories", form_for(slapd, ldap_tree, name="evil")),
        ("/admin/directories/corp", form_for(slapd, ldap_tree, name="-")),
        ("/admin/directories/corp/delete", {}),
        ("/admin/directories/corp/test/bind", {}),
        ("/admin/directories/corp/import", {}),
    ):
        missing = sso.post(admin, path, data)
        forged = sso.post(admin, path, {**data, "csrf_token": "not-the-session-token"})
        assert missing.status_code == forged.status_code == 403, path
        assert "did not come from this site" in missing.text
    assert stored() == before
    assert audit_events("directory.test") == []


def test_every_user_store_page_labels_its_inputs_and_posts_carry_the_csrf_token(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    token = csrf_token(sso.get(admin, "/admin").text)
    for path in ("/admin/directories", "/admin/directories/new", "/admin/directories/corp"):
        response = sso.get(admin, path)
        assert response.status_code == 200, path
        document = lxml.html.fromstring(response.text)
        labelled = {label.get("for") for label in document.iter("label")}
        ids = [control.get("id") for control in document.xpath("//*[@id]")]
        assert len(ids) == len(set(ids)), path
        for control in document.xpath("//input[not(@type='hidden')] | //select | //textarea"):
            assert control.get("id") in labelled, f"{path}: {lxml.html.tostring(control)!r} has no label"
        for form in document.xpath("//form"):
            assert form.get("method") == "post", path
            assert form.xpath("input[@name='csrf_token']/@value") == [token], path
        for table in document.xpath("//table"):
            assert table.xpath(".//th[@scope='col']"), path
    edit = lxml.html.fromstring(sso.get(admin, "/admin/directories/corp").text)
    labels = {" ".join(label.text_content().split()) for label in edit.iter("label")}
    assert {
        "Display name",
        "Directory type",
        "Server URLs",
        "Use StartTLS",
        "CA certificate (PEM)",
        "Verify server certificates",
        "Bind DN",
        "Bind password",
        "Search bases",
        "User search filter",
        "Custom search filter",
        "Username attribute",
        "E-mail attribute",
        "Phone attribute",
        "First name attribute",
        "Last name attribute",
        "Display name attribute",
        "Group membership attribute",
        "Look up groups by",
        "Group search base",
        "Group member attribute",
        "Activate LDAP",
        "Sync users",
        "Backup authentication",
        "Allow users to change password",
        "Enable administrator login",
        "Show IdP to users",
        "Send configured attributes",
        "Enable user auto registration",
        "Send welcome e-mails after registration",
        "Import schedule",
        "Username to test",
        "Password to test",
        "Username to map",
        "Full import",
    } <= labels
    buttons = {" ".join(button.text_content().split()) for button in edit.iter("button")}
    assert {
        "Test connection",
        "Test bind account credentials",
        "Test configuration",
        "Test attribute mapping",
        "Import now",
        "Save user store",
        "Delete user store",
    } <= buttons
