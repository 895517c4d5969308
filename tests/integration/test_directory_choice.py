""" "Show IdP to users" through the sso function against a real slapd: the sign-in form offers
"Sign in with" only when an activated directory shows itself, and the choice decides who
checks the password. A chosen directory never vouches for a user who is not its own, "local"
checks only the local password, a value that is not offered is a 400, and every refusal is
the one message and the one failure count of a wrong password (S1, S5)."""

from __future__ import annotations

from typing import Any

import pytest

from idp_core import accounts, sessions
from idp_core.clock import FakeClock
from idp_core.models import AuditEvent, Session, User
from tests.helpers.ldap_directory import add_service_account, save_directory, sign_in_options
from tests.helpers.mfa import alert
from tests.helpers.sso import PASSWORD, Sso
from tests.support.slapd import Slapd, Subtree

DIRECTORY_PASSWORD = "alice-Directory-1"
REFUSED = "The username or password is incorrect."
LOCAL_OPTION = ("local", "This sign-in service's accounts")


pytestmark = pytest.mark.sso_setup("two_apps", "password_only")


@pytest.fixture
def corp(sso: Sso, slapd: Slapd, ldap_tree: Subtree) -> Any:
    """alice in the directory; returns a saver that stores "corp" (Corp LDAP) with the switches."""
    add_service_account(ldap_tree)
    ldap_tree.add_user("alice", DIRECTORY_PASSWORD, cn="Alice Example", sn="Example")

    def save(**switches: bool) -> None:
        save_directory(sso, slapd, ldap_tree, "corp", "Corp LDAP", **switches)

    return save


def login_page_options(sso: Sso) -> list[tuple[str, str, bool]]:
    page = sso.get(sso.browser(), "/login")
    assert page.status_code == 200, page.text[:500]
    return sign_in_options(page.text)


def failures(username: str) -> int:
    return int(User.get(username).fail_password or 0)


def signed_in_via(username: str) -> list[str]:
    """Who accepted each of ``username``'s sign-ins, sorted (the events share the FakeClock's time)."""
    return sorted(
        str(event.details.as_dict().get("via"))
        for event in AuditEvent.scan()
        if event.type == "auth.signin" and event.subject == username and event.details
    )


def test_the_form_offers_a_choice_only_when_an_activated_directory_is_shown(
    sso: Sso, corp: Any, slapd: Slapd, ldap_tree: Subtree
) -> None:
    corp(activate=True, sync_users=True)
    assert login_page_options(sso) == []  # the form as DESIGN.md fixes it
    corp(show_to_users=True)  # shown but not activated: nothing to sign in with
    assert login_page_options(sso) == []
    corp(activate=True, show_to_users=True)
    save_directory(sso, slapd, ldap_tree, "branch", "Branch <Office>", activate=True, show_to_users=True)
    assert login_page_options(sso) == [
        (*LOCAL_OPTION, True),
        ("branch", "Branch <Office>", False),  # escaped in the page, read back as text
        ("corp", "Corp LDAP", False),
    ]


def test_choosing_the_directory_signs_a_directory_user_in_and_the_session_records_it(
    sso: Sso, corp: Any
) -> None:
    corp(activate=True, sync_users=True, show_to_users=True)
    signed_in = sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD, directory="corp")
    assert signed_in.status_code == 303, signed_in.text[:500]
    assert User.get("alice").source == "ldap:corp"  # created by the chosen directory's Sync users
    again = sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD, directory="corp")
    assert again.status_code == 303
    assert signed_in_via("alice") == ["ldap:corp", "ldap:corp"]
    assert {sessions.password_directory(session) for session in Session.scan()} == {"corp"}


def test_without_a_choice_the_sign_in_works_as_before(sso: Sso, corp: Any) -> None:
    corp(activate=True, sync_users=True, show_to_users=True)
    # An old form (or a bookmark's) sends no "Sign in with": every directory rule applies as today.
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 303
    assert signed_in_via("alice") == ["ldap:corp"]


def test_choosing_local_fails_for_a_directory_user_without_a_local_password(sso: Sso, corp: Any) -> None:
    corp(activate=True, sync_users=True, show_to_users=True)
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD, directory="corp").status_code == 303
    refused = sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD, directory="local")
    assert (refused.status_code, alert(refused.text)) == (401, REFUSED)
    assert failures("alice") == 1  # counted like any wrong password (S1)
    accounts.reset_password("alice", PASSWORD, clock=sso.clock)
    assert sso.sign_in(sso.browser(), "alice", PASSWORD, directory="local").status_code == 303
    assert signed_in_via("alice") == ["ldap:corp", "password"]


def test_a_local_user_is_refused_when_a_directory_is_chosen_and_the_failure_counts(
    sso: Sso, corp: Any, clock: FakeClock
) -> None:
    corp(activate=True, sync_users=True, show_to_users=True)
    accounts.create_user(
        accounts.NewUser("alice", password=PASSWORD), clock=clock
    )  # a local alice, not the directory's
    for password in (DIRECTORY_PASSWORD, PASSWORD):
        refused = sso.sign_in(sso.browser(), "alice", password, directory="corp")
        assert (refused.status_code, alert(refused.text)) == (401, REFUSED)
    assert failures("alice") == 2
    assert sso.sign_in(sso.browser(), "alice", PASSWORD, directory="local").status_code == 303
    assert User.get("alice").source == "local"
    assert signed_in_via("alice") == ["password"]


def test_an_unknown_user_is_created_only_by_the_chosen_directory_when_it_syncs_users(
    sso: Sso, corp: Any, slapd: Slapd, ldap_tree: Subtree
) -> None:
    corp(activate=True, sync_users=True, show_to_users=True)
    # "branch" knows alice too (same people) but does not sync users.
    save_directory(sso, slapd, ldap_tree, "branch", "Branch", activate=True, show_to_users=True)
    refused = sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD, directory="branch")
    assert (refused.status_code, alert(refused.text)) == (401, REFUSED)
    assert User.count() == 0
    local = sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD, directory="local")
    assert (local.status_code, User.count()) == (401, 0)
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD, directory="corp").status_code == 303
    assert User.get("alice").source == "ldap:corp"


@pytest.mark.parametrize("value", ["nowhere", "branch", "ldap:corp"])
def test_a_directory_that_is_not_offered_is_a_400_with_a_sentence(
    sso: Sso, corp: Any, slapd: Slapd, ldap_tree: Subtree, value: str
) -> None:
    corp(activate=True, sync_users=True, show_to_users=True)
    save_directory(sso, slapd, ldap_tree, "branch", "Branch", activate=True, sync_users=True)  # not shown
    refused = sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD, directory=value)
    assert refused.status_code == 400
    assert alert(refused.text) == "There is no such directory to sign in with; choose one from the list."
    assert User.count() == 0 and not signed_in_via("alice")  # nothing was checked or written


def test_the_choice_and_the_username_survive_a_failed_attempt(sso: Sso, corp: Any) -> None:
    corp(activate=True, sync_users=True, show_to_users=True)
    refused = sso.sign_in(sso.browser(), "alice", "not-the-password-1", directory="corp")
    assert (refused.status_code, alert(refused.text)) == (401, REFUSED)
    assert sign_in_options(refused.text) == [(*LOCAL_OPTION, False), ("corp", "Corp LDAP", True)]
    assert 'value="alice"' in refused.text
