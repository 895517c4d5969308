"""Each user belongs to one source (S27), and failures through an alias or of an entry not
registered here are counted (S29): sign-ins and imports against a real slapd.

The attack these tests replay: a directory that syncs users and finds them by ``mail``; an
entry ``uid=alice, mail=mallory@example.com`` whose password the attacker knows; a local
user ``alice``. Signing in as ``mallory@example.com`` gave a session for the local ``alice``.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from idp_core import accounts
from idp_core.clock import FakeClock
from idp_core.directories import imports, store
from idp_core.directories.settings import DirectorySettings
from idp_core.models import AuditEvent, DirectoryEntry, Session, User
from tests.helpers.mfa import alert
from tests.helpers.sso import PASSWORD, Sso, csrf_token
from tests.support.slapd import Slapd, Subtree

SERVICE_PASSWORD = "service-secret"
MALLORY_PASSWORD = "Mallory-knows-this-1"
WRONG = "not-the-password-at-all"
UPN_FILTER = "(&(objectClass=inetOrgPerson)(description={username}))"


pytestmark = pytest.mark.sso_setup("two_apps", "password_only")


def save(
    sso: Sso,
    slapd: Slapd,
    tree: Subtree,
    name: str = "corp",
    user_filter: str | None = None,
    **switches: bool,
) -> DirectorySettings:
    if not tree.exists(f"uid=svc,{tree.dn}"):
        tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)
    settings = DirectorySettings(
        name=name,
        display_name=name.title(),
        kind="openldap",
        urls=(slapd.url,),
        bind_dn=f"uid=svc,{tree.dn}",
        bases=(tree.people,),
        user_filter=user_filter,
        # slapd speaks plain LDAP on 127.0.0.1; a test may still turn the switch off (S30).
        **{"allow_cleartext": True, **switches},
    )
    store.save_directory(
        settings,
        create=not [saved for saved in store.list_directories() if saved.name == name],
        bind_password=SERVICE_PASSWORD,
        kms=boto3.client("kms"),
        key_id=sso.settings.require_data_key(),
        clock=sso.clock,
    )
    store.forget_cached_directories()
    return settings


def refused_like_a_wrong_password(sso: Sso, typed: str, password: str) -> None:
    """The sign-in fails with the same status and message as a wrong password for a user."""
    answer = sso.sign_in(sso.browser(), typed, password)
    wrong = sso.sign_in(sso.browser(), "alice", WRONG)
    assert (
        (answer.status_code, alert(answer.text))
        == (wrong.status_code, alert(wrong.text))
        == (
            401,
            alert(wrong.text),
        )
    )


def events(kind: str) -> list[AuditEvent]:
    return [event for event in AuditEvent.scan() if event.type == kind]


@pytest.mark.parametrize(
    ("user_filter", "typed", "extra"),
    [
        ("mail", "mallory@example.com", {"mail": "mallory@example.com"}),
        (UPN_FILTER, "mallory@corp.example", {"description": "mallory@corp.example"}),
    ],
    ids=["mail", "userPrincipalName-style"],
)
def test_attack_an_alias_never_signs_a_directory_entry_into_a_local_user(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree, clock: FakeClock, user_filter: str, typed: str, extra: Any
) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    ldap_tree.add_user("alice", MALLORY_PASSWORD, extra=extra)
    save(sso, slapd, ldap_tree, user_filter=user_filter, activate=True, sync_users=True)

    refused_like_a_wrong_password(sso, typed, MALLORY_PASSWORD)
    assert list(Session.scan()) == []
    alice = User.get("alice")
    assert (alice.source, alice.fail_password) == ("local", 1)  # only the plain wrong password above
    (collision,) = events("directory.collision")
    assert collision.details is not None
    details = collision.details.as_dict()
    assert (details["directory_source"], details["user_source"], details["typed"]) == (
        "ldap:corp",
        "local",
        typed,
    )
    (entry,) = store.entries_needing_attention("corp")
    assert (entry.username, entry.collision_with, entry.failures) == ("alice", "local", 1)
    # The local alice still signs in with her own password.
    assert sso.sign_in(sso.browser(), "alice", PASSWORD).status_code == 303


def test_attack_a_uid_entry_never_answers_for_a_local_user(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree, clock: FakeClock
) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    ldap_tree.add_user("alice", MALLORY_PASSWORD)
    save(sso, slapd, ldap_tree, user_filter="uid", activate=True, sync_users=True)
    refused_like_a_wrong_password(sso, "alice", MALLORY_PASSWORD)
    assert list(Session.scan()) == []


def test_attack_an_entry_of_a_second_directory_never_signs_into_the_first_ones_user(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree
) -> None:
    ldap_tree.add_user("bob", "Bob-of-corp-1", mail="bob@corp.example")
    save(sso, slapd, ldap_tree, user_filter="mail", activate=True, sync_users=True)
    assert sso.sign_in(sso.browser(), "bob@corp.example", "Bob-of-corp-1").status_code == 303
    assert User.get("bob").source == "ldap:corp"
    with slapd.subtree() as other:
        other.add_user("bob", MALLORY_PASSWORD, mail="eve@other.example")
        save(sso, slapd, other, name="other", user_filter="mail", activate=True, sync_users=True)
        sessions_before = Session.count()
        refused_like_a_wrong_password(sso, "eve@other.example", MALLORY_PASSWORD)
        assert Session.count() == sessions_before
        (entry,) = store.entries_needing_attention("other")
        assert (entry.username, entry.collision_with) == ("bob", "ldap:corp")
        # Typed as "bob", the name is corp's user: only corp's entry can sign in as bob.
        refused_like_a_wrong_password(sso, "bob", MALLORY_PASSWORD)


def test_attack_a_new_entry_that_takes_over_a_username_is_not_the_old_user(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree
) -> None:
    dn = ldap_tree.add_user("alice", "Alice-first-1")
    save(sso, slapd, ldap_tree, activate=True, sync_users=True)
    assert sso.sign_in(sso.browser(), "alice", "Alice-first-1").status_code == 303
    assert User.get("alice").directory_id
    ldap_tree.delete_entry(dn)
    ldap_tree.add_user("alice", MALLORY_PASSWORD)  # a new entry, a new entryUUID
    refused_like_a_wrong_password(sso, "alice", MALLORY_PASSWORD)
    (entry,) = store.entries_needing_attention("corp")
    assert (
        entry.collision_reason is not None
        and "not the one this user was created from" in entry.collision_reason
    )


def test_an_alias_and_the_mapped_username_reach_the_same_user(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree
) -> None:
    ldap_tree.add_user("lena", "Lena-Directory-1", mail="lena@corp.example")
    save(sso, slapd, ldap_tree, user_filter="mail", activate=True, sync_users=True)
    assert sso.sign_in(sso.browser(), "lena@corp.example", "Lena-Directory-1").status_code == 303
    assert sso.sign_in(sso.browser(), "lena", "Lena-Directory-1").status_code == 303
    assert [user.username for user in User.scan()] == ["lena"]
    assert {session.username for session in Session.scan()} == {"lena"}


def test_attack_wrong_passwords_through_an_alias_count_on_the_user(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree
) -> None:
    ldap_tree.add_user("lena", "Lena-Directory-1", mail="lena@corp.example")
    save(sso, slapd, ldap_tree, user_filter="mail", activate=True, sync_users=True)
    assert sso.sign_in(sso.browser(), "lena", "Lena-Directory-1").status_code == 401  # the filter is mail
    assert sso.sign_in(sso.browser(), "lena@corp.example", "Lena-Directory-1").status_code == 303
    for _ in range(3):
        assert sso.sign_in(sso.browser(), "LENA@corp.example", WRONG).status_code == 401
    assert int(User.get("lena").fail_password) == 3


def test_attack_an_entry_not_registered_here_is_counted_and_locked_without_a_user(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree, clock: FakeClock
) -> None:
    ldap_tree.add_user("newbie", "Newbie-Directory-1", mail="newbie@corp.example")
    save(sso, slapd, ldap_tree, user_filter="mail", activate=True, sync_users=True)
    for _ in range(10):
        assert sso.sign_in(sso.browser(), "newbie@corp.example", WRONG).status_code == 401
    assert User.count() == 0  # counted without creating a user
    (entry,) = store.entries_needing_attention("corp")
    assert (entry.username, entry.failures, entry.locked) == ("newbie", 10, True)
    # Locked: even the right password is not checked.
    assert sso.sign_in(sso.browser(), "newbie@corp.example", "Newbie-Directory-1").status_code == 401
    assert User.count() == 0
    clock.advance(sso.settings.lockout.wait_increment_seconds)
    assert sso.sign_in(sso.browser(), "newbie@corp.example", "Newbie-Directory-1").status_code == 303
    assert User.get("newbie").source == "ldap:corp"


def test_an_admin_clears_an_entry_in_the_cli(sso: Sso, slapd: Slapd, ldap_tree: Subtree) -> None:
    ldap_tree.add_user("newbie", "Newbie-Directory-1", mail="newbie@corp.example")
    save(sso, slapd, ldap_tree, user_filter="mail", activate=True)
    assert sso.sign_in(sso.browser(), "newbie@corp.example", WRONG).status_code == 401
    (entry,) = store.entries_needing_attention("corp")
    store.clear_entry("corp", entry.entry_id)
    assert store.entries_needing_attention("corp") == []
    assert list(DirectoryEntry.scan()) == []


def test_attack_an_import_never_takes_over_a_local_user_and_records_the_collision(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree, clock: FakeClock
) -> None:
    accounts.create_user(
        accounts.NewUser("carol", password=PASSWORD, email="carol@local.example"), clock=clock
    )
    ldap_tree.add_user("carol", MALLORY_PASSWORD, mail="carol@corp.example")
    save(sso, slapd, ldap_tree, activate=True, auto_register=True)
    first = imports.run_import("corp", full=True, kms=boto3.client("kms"), clock=clock)
    second = imports.run_import("corp", full=True, kms=boto3.client("kms"), clock=clock)
    assert (first.errors, second.errors) == (1, 1)
    carol = User.get("carol")
    assert (carol.source, carol.email) == ("local", "carol@local.example")
    (entry,) = store.entries_needing_attention("corp")
    assert (entry.username, entry.collision_with) == ("carol", "local")
    assert len(events("directory.collision")) == 1  # recorded once, not at every run


def test_the_console_lists_a_collision_and_clears_it(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree, clock: FakeClock
) -> None:
    from tests.helpers.mfa import give_totp, prove_second_factor

    accounts.create_user(accounts.NewUser("admin", password=PASSWORD, is_admin=True), clock=clock)
    secret = give_totp(sso, "admin")
    accounts.create_user(accounts.NewUser("carol", password=PASSWORD), clock=clock)
    ldap_tree.add_user("carol", MALLORY_PASSWORD)
    save(sso, slapd, ldap_tree, activate=True, auto_register=True)
    imports.run_import("corp", full=True, kms=boto3.client("kms"), clock=clock)

    browser = sso.browser()
    sso.sign_in(browser, "admin")
    prove_second_factor(sso, browser, secret, "/admin/directories/corp")
    page = sso.get(browser, "/admin/directories/corp")
    assert page.status_code == 200
    section = page.text[page.text.index('id="entries-heading"') :]
    assert "carol" in section and ">local<" in section and "the name belongs to a user of local" in section
    (entry,) = store.entries_needing_attention("corp")
    cleared = sso.post(
        browser,
        "/admin/directories/corp/entries/clear",
        {"csrf_token": csrf_token(page.text), "entry_id": entry.entry_id},
    )
    assert cleared.status_code == 303
    assert store.entries_needing_attention("corp") == []
    assert "None." in sso.get(browser, "/admin/directories/corp").text
