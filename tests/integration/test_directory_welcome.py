"""Welcome e-mails ("Send welcome e-mails after registration"): each user an import or "Sync
users" creates gets one e-mail through moto's SES from the configured sender, after the user
is written; no sender, an SES refusal or a second run never fails an import nor sends twice.

moto's outbox is process-wide, so every test counts the e-mails to its own fresh addresses."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import boto3
import ldap3
import pytest

from idp_core import accounts
from idp_core.audit import AuditContext
from idp_core.clock import FakeClock
from idp_core.config import MessagingConfig, Settings, Tables
from idp_core.directories import imports, store
from idp_core.directories.settings import DirectorySettings
from idp_core.directories.welcome import NO_SENDER, SUBJECT, WelcomeMail
from idp_core.models import AuditEvent, User
from tests.helpers.mfa import emails_to
from tests.helpers.sso import EMAIL_SENDER, Sso
from tests.support.slapd import Slapd, Subtree

SENDER = "welcome@idp.example.com"
BASE_URL = "https://sso.corp.example"
SERVICE_PASSWORD = "service-secret"
DIRECTORY_PASSWORD = "alice-Directory-1"


@pytest.fixture
def domain() -> str:
    """A mail domain of this test alone: moto keeps every e-mail of the process."""
    return f"{secrets.token_hex(4)}.corp.example"


@pytest.fixture
def save_corp(
    slapd: Slapd, ldap_tree: Subtree, tables: Tables, kms: Any, key_id: str, clock: FakeClock
) -> Any:
    """Stores the directory ``corp`` over the test's people with the given switches."""
    ldap_tree.add_user("svc", SERVICE_PASSWORD, parent=ldap_tree.dn)

    def save(**switches: bool) -> str:
        settings = DirectorySettings(
            name="corp",
            display_name="Corp LDAP",
            kind="openldap",
            urls=(slapd.url,),
            allow_cleartext=True,  # slapd speaks plain LDAP on 127.0.0.1 (S30)
            bind_dn=f"uid=svc,{ldap_tree.dn}",
            bases=(ldap_tree.people,),
            **switches,
        )
        store.save_directory(
            settings, create=True, bind_password=SERVICE_PASSWORD, kms=kms, key_id=key_id, clock=clock
        )
        return settings.name

    return save


def welcome_mail(tables: Tables, sender: str = SENDER) -> WelcomeMail:
    """What a caller passes: built from its settings (the configured sender, the public URL)."""
    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    settings = Settings(
        tables=tables,
        signing_key_id="not-used-here",
        public_base_url=BASE_URL + "/",
        messaging=MessagingConfig(email_sender=sender),
    )
    return WelcomeMail.for_settings(settings)


def add_people(tree: Subtree, domain: str, *uids: str, with_mail: bool = True) -> dict[str, str]:
    """uid -> address (empty without one) of the added people."""
    added = {}
    for uid in uids:
        address = f"{uid}@{domain}" if with_mail else ""
        tree.add_user(uid, None, mail=address or None)
        added[uid] = address
    return added


def welcomes(address: str) -> list[Any]:
    return [message for message in emails_to(address) if message.subject == SUBJECT]


def run(name: str, kms: Any, clock: FakeClock, *, full: bool, welcome: WelcomeMail | None = None) -> Any:
    extra = {"welcome": welcome} if welcome is not None else {}
    return imports.run_import(
        name, full=full, kms=kms, clock=clock, context=AuditContext(actor="admin"), **extra
    )


def test_an_import_welcomes_each_created_user_with_an_address_once(
    save_corp: Any, ldap_tree: Subtree, domain: str, tables: Tables, kms: Any, clock: FakeClock
) -> None:
    corp = save_corp(auto_register=True, welcome_emails=True)
    people = add_people(ldap_tree, domain, "ann", "bob", "cho")
    add_people(ldap_tree, domain, "dan", with_mail=False)
    mail = welcome_mail(tables)

    counts = run(corp, kms, clock, full=True, welcome=mail)

    assert (counts.created, counts.welcome_sent, counts.welcome_failed, counts.errors) == (4, 3, 0, 0)
    assert NO_SENDER + "." not in counts.problems
    for uid, address in people.items():
        [message] = welcomes(address)
        assert message.source == SENDER
        assert f"Username: {uid}" in message.body
        assert f"at {BASE_URL}/login" in message.body
        assert "directory account" in message.body and "two-factor authentication" in message.body
    # One audit event for the run, with the number sent.
    [event] = [event for event in AuditEvent.scan() if event.type == "directory.import"]
    details = event.details.as_dict() if event.details else {}
    assert (details["welcome_sent"], details["created"]) == ("3", "4")

    # Only creations send: later runs (full or not), with a changed entry, send nothing more.
    conn = ldap_tree.server.connection()
    try:
        conn.modify(f"uid=ann,{ldap_tree.people}", {"cn": [(ldap3.MODIFY_REPLACE, ["Ann Changed"])]})
    finally:
        conn.unbind()
    for full in (False, True):
        again = run(corp, kms, clock, full=full, welcome=mail)
        assert (again.created, again.welcome_sent) == (0, 0)
    assert [len(welcomes(address)) for address in people.values()] == [1, 1, 1]


def test_without_a_sender_no_email_leaves_and_the_run_says_so_once(
    save_corp: Any, ldap_tree: Subtree, domain: str, tables: Tables, kms: Any, clock: FakeClock
) -> None:
    corp = save_corp(auto_register=True, welcome_emails=True)
    people = add_people(ldap_tree, domain, "eve", "fay")

    for welcome in (None, welcome_mail(tables, sender="")):  # nothing passed; passed without a sender
        counts = run(corp, kms, clock, full=True, welcome=welcome)
        assert counts.problems.count(NO_SENDER + ".") == 1
        assert (counts.welcome_sent, counts.welcome_failed) == (0, 0)
    assert User.get("eve").source == "ldap:corp" and User.get("fay").source == "ldap:corp"
    assert [welcomes(address) for address in people.values()] == [[], []]


def test_an_ses_refusal_is_counted_and_never_fails_the_import(
    save_corp: Any, ldap_tree: Subtree, domain: str, tables: Tables, kms: Any, clock: FakeClock
) -> None:
    """moto's SES, like SES in its sandbox, refuses a sender that is not verified."""
    corp = save_corp(auto_register=True, welcome_emails=True)
    people = add_people(ldap_tree, domain, "gus", "hal")
    unverified = welcome_mail(tables, sender=f"unverified-{secrets.token_hex(4)}@elsewhere.example")

    counts = run(corp, kms, clock, full=True, welcome=unverified)

    assert (counts.created, counts.welcome_sent, counts.welcome_failed, counts.errors) == (2, 0, 2, 0)
    assert sorted(user.username for user in User.scan(User.source == "ldap:corp")) == ["gus", "hal"]
    assert [welcomes(address) for address in people.values()] == [[], []]


def test_users_not_created_get_no_welcome(
    save_corp: Any, ldap_tree: Subtree, domain: str, tables: Tables, kms: Any, clock: FakeClock
) -> None:
    """Neither a user auto registration left out nor a local user the import does not
    overwrite is welcomed."""
    corp = save_corp(sync_users=True, welcome_emails=True)  # auto registration off
    people = add_people(ldap_tree, domain, "ida", "jon")
    accounts.create_user(accounts.NewUser("jon", password="Local-Password-1", email=people["jon"]))
    mail = welcome_mail(tables)

    off = run(corp, kms, clock, full=True, welcome=mail)
    assert (off.created, off.not_registered, off.welcome_sent) == (0, 1, 0)

    turned_on = dataclasses.replace(store.settings_of(store.get_directory(corp)), auto_register=True)
    store.save_directory(turned_on, create=False, clock=clock)
    on = run(corp, kms, clock, full=True, welcome=mail)

    assert (on.created, on.errors, on.welcome_sent) == (1, 1, 1)  # ida; jon is local and stays so
    assert (len(welcomes(people["ida"])), len(welcomes(people["jon"]))) == (1, 0)


# ---------------------------------------------------------------- "Sync users" at sign-in


def test_sync_on_sign_in_welcomes_the_new_user_once(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree, domain: str
) -> None:
    """Through the sso function: the sign-in that creates alice sends her one welcome e-mail
    from the function's sender, pointing at its sign-in page; her next sign-in sends none."""
    ldap_tree.add_user("svc", SERVICE_PASSWORD, parent=ldap_tree.dn)
    address = f"alice@{domain}"
    ldap_tree.add_user("alice", DIRECTORY_PASSWORD, cn="Alice Example", mail=address)
    settings = DirectorySettings(
        name="corp",
        display_name="Corp LDAP",
        kind="openldap",
        urls=(slapd.url,),
        allow_cleartext=True,  # slapd speaks plain LDAP on 127.0.0.1 (S30)
        bind_dn=f"uid=svc,{ldap_tree.dn}",
        bases=(ldap_tree.people,),
        activate=True,
        sync_users=True,
        welcome_emails=True,
    )
    store.save_directory(
        settings,
        create=True,
        bind_password=SERVICE_PASSWORD,
        kms=boto3.client("kms"),
        key_id=sso.settings.require_data_key(),
        clock=sso.clock,
    )
    store.forget_cached_directories()

    for _ in range(2):
        assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 303

    [message] = welcomes(address)
    assert message.source == EMAIL_SENDER
    assert "Hello Alice Example" in message.body and "Username: alice" in message.body
    assert f"at {sso.url}/login" in message.body
    assert DIRECTORY_PASSWORD not in message.body
    events = [event for event in AuditEvent.scan() if event.type == "directory.welcome"]
    assert [(event.outcome, event.subject) for event in events] == [("success", "alice")]
