""" "Enable administrator login" through the sso function against a real slapd: an admin whose
password a directory checked reaches the admin console only when that directory allows it
(and still proves the console's second factor); their apps work either way, and an admin
who signed in with a local password is unaffected."""

from __future__ import annotations

import html
from typing import Any

import pytest
import requests

from idp_core import accounts
from idp_core.directories import store
from idp_core.models import AuditEvent
from tests.helpers.adaptive import is_saml_post
from tests.helpers.ldap_directory import add_service_account, save_directory
from tests.helpers.mfa import (
    OPEN_APP,
    alert,
    give_totp,
    location_path,
    prove_second_factor,
)
from tests.helpers.sso import PASSWORD, Sso
from tests.support.slapd import Slapd, Subtree

DIRECTORY_PASSWORD = "alice-Directory-1"
REFUSED = (
    "Your directory Corp LDAP does not allow administrator sign-in; sign in with your local password "
    'or ask another administrator to turn on "Enable administrator login" for that directory.'
)


# The open app maps the group "engineers" to a role.
pytestmark = pytest.mark.sso_setup("two_apps", "password_only")


@pytest.fixture
def corp(sso: Sso, slapd: Slapd, ldap_tree: Subtree) -> Any:
    """alice of the directory, in its group engineers; returns a saver that stores "corp"
    (Corp LDAP, activated, syncing users) with the given switches."""
    add_service_account(ldap_tree)
    alice = ldap_tree.add_user("alice", DIRECTORY_PASSWORD, cn="Alice Example", sn="Example")
    ldap_tree.add_group("engineers", [alice])

    def save(**switches: bool) -> None:
        save_directory(sso, slapd, ldap_tree, "corp", "Corp LDAP", activate=True, sync_users=True, **switches)

    return save


def directory_admin(sso: Sso) -> str:
    """alice, created by her first directory sign-in, made an admin with an authenticator app."""
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 303
    accounts.set_admin("alice", True, clock=sso.clock)
    return give_totp(sso, "alice")


def signed_in(sso: Sso, password: str, **form: str) -> requests.Session:
    browser = sso.browser()
    answer = sso.sign_in(browser, "alice", password, **form)
    assert answer.status_code == 303, answer.text[:500]
    return browser


def refusals() -> list[dict[str, str]]:
    return [event.details.as_dict() for event in AuditEvent.scan() if event.type == "admin.refused"]


def test_admin_login_off_refuses_the_console_after_a_directory_sign_in_while_apps_launch(
    sso: Sso, corp: Any
) -> None:
    corp()
    secret = directory_admin(sso)
    browser = signed_in(sso, DIRECTORY_PASSWORD)
    refused = sso.get(browser, "/admin")
    assert (refused.status_code, html.unescape(alert(refused.text))) == (403, REFUSED)
    # Not a matter of the second factor: proving it changes nothing.
    prove_second_factor(sso, browser, secret, next_page="/me")
    assert sso.get(browser, "/admin/users").status_code == 403
    assert refusals()[0] == {"reason": "directory does not allow administrator sign-in", "directory": "corp"}
    assert is_saml_post(sso.get(browser, f"/apps/{OPEN_APP}/launch"))  # her apps still work
    assert sso.get(browser, "/me").status_code == 200


def test_admin_login_on_lets_the_directory_admin_in_after_the_second_factor(sso: Sso, corp: Any) -> None:
    corp(admin_login=True)
    secret = directory_admin(sso)
    browser = signed_in(sso, DIRECTORY_PASSWORD)
    step_up = sso.get(browser, "/admin")
    assert (step_up.status_code, location_path(step_up)) == (303, "/mfa")
    prove_second_factor(sso, browser, secret)
    assert sso.get(browser, "/admin").status_code == 200
    # Turning the switch off takes effect on the very next console request.
    corp(admin_login=False)
    assert sso.get(browser, "/admin").status_code == 403


def test_attack_a_directory_deleted_after_the_sign_in_keeps_its_admin_out_of_the_console(
    sso: Sso, corp: Any
) -> None:
    """The guard reads the one switch afresh: a directory that is gone allows nobody in, and
    the refusal names it as the session knows it."""
    corp(admin_login=True)
    secret = directory_admin(sso)
    browser = signed_in(sso, DIRECTORY_PASSWORD)
    prove_second_factor(sso, browser, secret)
    assert sso.get(browser, "/admin").status_code == 200
    store.delete_directory("corp")
    refused = sso.get(browser, "/admin/users")
    assert (refused.status_code, html.unescape(alert(refused.text))) == (
        403,
        REFUSED.replace("Corp LDAP", "corp"),
    )
    assert refusals() == [{"reason": "directory does not allow administrator sign-in", "directory": "corp"}]


def test_an_admin_who_signed_in_with_the_local_password_is_unaffected(sso: Sso, corp: Any) -> None:
    corp(show_to_users=True)
    secret = directory_admin(sso)
    accounts.reset_password("alice", PASSWORD, clock=sso.clock)
    browser = signed_in(sso, PASSWORD, directory="local")
    prove_second_factor(sso, browser, secret)
    assert sso.get(browser, "/admin").status_code == 200
    assert not refusals()


def test_backup_authentication_with_the_local_password_reaches_the_console(
    sso: Sso, corp: Any, slapd: Slapd
) -> None:
    corp(backup_auth=True)
    secret = directory_admin(sso)
    accounts.reset_password("alice", PASSWORD, clock=sso.clock)
    slapd.stop()
    try:
        browser = signed_in(sso, PASSWORD)  # the directory did not answer: the local password decided
    finally:
        slapd.start()
    prove_second_factor(sso, browser, secret)
    assert sso.get(browser, "/admin").status_code == 200


def test_a_local_admin_is_unaffected(sso: Sso, corp: Any) -> None:
    corp()
    accounts.create_user(accounts.NewUser("root", password=PASSWORD, is_admin=True), clock=sso.clock)
    secret = give_totp(sso, "root")
    browser = sso.browser()
    assert sso.sign_in(browser, "root").status_code == 303
    prove_second_factor(sso, browser, secret)
    assert sso.get(browser, "/admin").status_code == 200
    assert not refusals()
