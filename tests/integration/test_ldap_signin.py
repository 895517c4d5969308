"""Signing in with a directory password through the sso function, against a real slapd:
"Activate LDAP" (bind as the user's entry), "Sync users" (an unknown name the directory
knows becomes a user with mapped attributes and groups) and "Backup authentication" (the
local password when the directory refuses or cannot be reached)."""

from __future__ import annotations

from typing import Any

import pytest

from idp_core import accounts
from idp_core.clock import FakeClock
from idp_core.directories import store
from idp_core.directories.settings import DirectorySettings
from idp_core.models import AuditEvent, Group, User
from tests.helpers.adaptive import is_saml_post, launch_from_login
from tests.helpers.mfa import OPEN_APP
from tests.helpers.sso import PASSWORD, Sso
from tests.support.slapd import Slapd, Subtree

SERVICE_PASSWORD = "service-secret"
DIRECTORY_PASSWORD = "alice-Directory-1"


# The open app maps the group "engineers" to a role.
pytestmark = pytest.mark.sso_setup("two_apps", "password_only")


@pytest.fixture
def corp(sso: Sso, slapd: Slapd, ldap_tree: Subtree) -> Any:
    """A directory with alice in the groups engineers and auditors; returns a saver that
    stores it with the given switches."""
    ldap_tree.add_user("svc", SERVICE_PASSWORD, parent=ldap_tree.dn)
    alice = ldap_tree.add_user(
        "alice", DIRECTORY_PASSWORD, cn="Alice Example", sn="Example", mail="alice@corp.example"
    )
    ldap_tree.add_group("engineers", [alice])
    ldap_tree.add_group("auditors", [alice])

    def save(**switches: bool) -> DirectorySettings:
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
        create = not [d for d in store.list_directories() if d.name == "corp"]
        store.save_directory(
            settings,
            create=create,
            bind_password=SERVICE_PASSWORD,
            kms=_kms(),
            key_id=sso.settings.require_data_key(),
            clock=sso.clock,
        )
        store.forget_cached_directories()
        return settings

    return save


def _kms() -> Any:
    import boto3

    return boto3.client("kms")


def _signed_in_via(username: str) -> list[str]:
    return [
        str(event.details.as_dict().get("via"))
        for event in AuditEvent.scan()
        if event.type == "auth.signin" and event.subject == username and event.details
    ]


def test_sync_on_sign_in_creates_the_user_with_mapped_attributes_and_groups(sso: Sso, corp: Any) -> None:
    corp(activate=True, sync_users=True)
    browser = sso.browser()
    signed_in = sso.sign_in(browser, "alice", DIRECTORY_PASSWORD, app=OPEN_APP)
    assert is_saml_post(launch_from_login(sso, browser, signed_in))  # the role of the group engineers
    alice = User.get("alice")
    assert (alice.source, alice.email, alice.display_name, alice.password_hash) == (
        "ldap:corp",
        "alice@corp.example",
        "Alice Example",
        None,
    )
    assert alice.group_names() == ["auditors", "engineers"]
    assert Group.get("auditors").source == "ldap:corp"  # created for the role mappings
    assert _signed_in_via("alice") == ["ldap:corp"]


def test_without_sync_an_unknown_directory_user_cannot_sign_in(sso: Sso, corp: Any) -> None:
    corp(activate=True)
    refused = sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD)
    assert refused.status_code == 401 and User.count() == 0


def test_a_directory_user_signs_in_with_the_directory_password_only(sso: Sso, corp: Any) -> None:
    corp(activate=True, sync_users=True)
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 303
    wrong = sso.sign_in(sso.browser(), "alice", "not-the-password-1")
    assert wrong.status_code == 401
    assert int(User.get("alice").fail_password) == 1  # counted like any wrong password (S1)


def test_backup_authentication_uses_the_local_password_when_the_directory_is_down(
    sso: Sso, corp: Any, slapd: Slapd
) -> None:
    corp(activate=True, sync_users=True, backup_auth=True)
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 303
    accounts.reset_password("alice", PASSWORD, clock=sso.clock)  # a local password as well
    slapd.stop()
    assert sso.sign_in(sso.browser(), "alice", PASSWORD).status_code == 303
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 401
    slapd.start()
    via = _signed_in_via("alice")
    assert sorted(via) == ["ldap:corp", "password (the directory corp did not answer: Unreachable)"]


def test_without_backup_authentication_a_directory_that_is_down_refuses_with_try_again(
    sso: Sso, corp: Any, slapd: Slapd
) -> None:
    corp(activate=True, sync_users=True)
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 303
    accounts.reset_password("alice", PASSWORD, clock=sso.clock)
    slapd.stop()
    down = sso.sign_in(sso.browser(), "alice", PASSWORD)
    # Not a wrong password: nothing counts against alice, and the page says to try again.
    assert down.status_code == 503 and "Please try again in a moment." in down.text
    assert int(User.get("alice").fail_password) == 0
    slapd.start()


def test_a_directory_that_is_not_activated_leaves_the_local_password_in_charge(sso: Sso, corp: Any) -> None:
    corp(activate=True, sync_users=True)
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 303
    corp(activate=False)
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 401
    accounts.reset_password("alice", PASSWORD, clock=sso.clock)
    assert sso.sign_in(sso.browser(), "alice", PASSWORD).status_code == 303


def test_a_local_user_is_never_checked_against_the_directory(sso: Sso, corp: Any, clock: FakeClock) -> None:
    corp(activate=True, sync_users=True)
    accounts.create_user(
        accounts.NewUser("alice", password=PASSWORD), clock=clock
    )  # a local alice exists first
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 401
    assert sso.sign_in(sso.browser(), "alice", PASSWORD).status_code == 303
    assert User.get("alice").source == "local"
