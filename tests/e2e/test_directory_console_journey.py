"""An admin adds an OpenLDAP user store in the console in Chromium and tests it; a person
from that directory picks it under "Sign in with", changes their password on /me/password,
which writes it to the directory, and signs in with the new one (issue 5)."""

from __future__ import annotations

import re
import time

import ldap3
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import (
    enrol_authenticator,
    expect_signed_in_to_aws,
    fresh_browser_page,
    sign_in,
    submit_password_with,
)
from tests.support.slapd import Slapd

DIRECTORY = "corp"
DISPLAY_NAME = "Corp directory"
SERVICE_PASSWORD = "console-service-secret"
# Names no other browser test uses: the stack, and so its users, is shared by the session.
ADMIN = "store-admin"
ADMIN_PASSWORD = "store-admin-Passphrase-1"
USER = "carol.console"
OLD_PASSWORD = "carol-Directory-Passphrase-1"
NEW_PASSWORD = "carol-Changed-Passphrase-2"


def binds(slapd: Slapd, dn: str, password: str) -> bool:
    """Whether the directory itself accepts ``password`` for ``dn`` (a simple bind)."""
    connection = ldap3.Connection(ldap3.Server(slapd.url, connect_timeout=2), user=dn, password=password)
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


def add_user_store_in_console(page: Page, base: str, slapd: Slapd, service_dn: str, people: str) -> None:
    page.goto(f"{base}/admin")
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="User stores").click()
    page.get_by_role("link", name="Add a user store").click()
    expect(page.get_by_role("heading", name="New user store")).to_be_visible()
    page.get_by_label("Identifier").fill(DIRECTORY)
    page.get_by_label("Display name", exact=True).fill(DISPLAY_NAME)
    page.get_by_label("Directory type").select_option(label="OpenLDAP")
    page.get_by_label("Server URLs").fill(slapd.url)
    # slapd speaks plain LDAP on 127.0.0.1: the admin allows it, past the warning (S30).
    page.get_by_label("Allow unencrypted connection").check()
    page.get_by_label("Bind DN").fill(service_dn)
    page.get_by_label("Bind password").fill(SERVICE_PASSWORD)
    page.get_by_label("Search bases").fill(people)
    for switch in ("Activate LDAP", "Sync users", "Allow users to change password", "Show IdP to users"):
        page.get_by_label(switch).check()
    page.get_by_role("button", name="Create user store").click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/admin/directories/{DIRECTORY}\?"))
    notice = page.get_by_role("status")
    expect(notice).to_have_text("The directory was saved. Test its settings with the buttons below.")
    page.get_by_role("button", name="Test connection").click()
    expect(notice).to_have_text(f"Connected to {slapd.url}.")
    page.get_by_role("button", name="Test bind account credentials").click()
    expect(notice).to_have_text(f"Bound to {slapd.url} as {service_dn}.")


def test_an_admin_adds_a_user_store_whose_user_changes_the_directory_password_and_signs_in_with_it(
    page: Page, browser: Browser, local_idp: LocalIdp
) -> None:
    state = local_idp.process.state
    assert state is not None
    base = local_idp.base_url
    added = local_idp.idp("user", "add", ADMIN, "--admin", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    with Slapd() as slapd, slapd.subtree() as tree:
        service_dn = tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)
        carol = tree.add_user(USER, OLD_PASSWORD, cn="Carol Console", sn="Console", mail="carol@corp.example")
        tree.add_group(state.demo_group, [carol])  # the group the demo app maps to its role
        try:
            # The admin console asks every admin for a second factor: a new admin enrols first.
            sign_in(page, base, ADMIN, ADMIN_PASSWORD)
            expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/me/mfa"))
            enrol_authenticator(page, base)
            add_user_store_in_console(page, base, slapd, service_dn, tree.people)
            # The sso worker that served the admin's sign-in read the (then empty) list of
            # stores; in AWS the new one shows within its 30-second cache.
            local_idp.restart_functions()

            with fresh_browser_page(browser) as person:
                person.goto(f"{base}/login")
                submit_password_with(person, DISPLAY_NAME, USER, OLD_PASSWORD)
                # Sync users created the account; it enrols a second factor like any new user.
                expect(person).to_have_url(re.compile(rf"^{re.escape(base)}/me/mfa"))
                authenticator = enrol_authenticator(person, base)
                person.goto(f"{base}/me/password")
                expect(person.get_by_text(f"Your new password is saved in {DISPLAY_NAME}")).to_be_visible()
                person.get_by_label("Current password").fill(OLD_PASSWORD)
                person.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
                person.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
                person.get_by_role("button", name="Change password").click()
                expect(person.get_by_role("status")).to_have_text(
                    "Your password was changed. Your other sessions were signed out."
                )

            assert binds(slapd, carol, NEW_PASSWORD)
            assert not binds(slapd, carol, OLD_PASSWORD)

            with fresh_browser_page(browser) as person:
                person.goto(f"{base}/apps/{state.demo_app}/launch")
                expect(person).to_have_url(re.compile(rf"^{re.escape(base)}/login"))
                submit_password_with(person, DISPLAY_NAME, USER, NEW_PASSWORD)
                expect(person).to_have_url(re.compile(rf"^{re.escape(base)}/mfa"))
                # The enrolment spent the current time step (S6); the server accepts one step ahead.
                person.get_by_label("Verification code").fill(authenticator.at(time.time() + 30))
                person.get_by_role("button", name="Verify").click()
                expect_signed_in_to_aws(person, base, USER)

            page.goto(f"{base}/admin/directories/{DIRECTORY}")
            page.get_by_role("button", name="Delete user store").click()
            expect(page.get_by_role("status")).to_have_text(
                "The directory was deleted. The users and groups it imported were kept."
            )
        finally:
            # A no-op when the console deleted it; the clean-up when the test failed before.
            local_idp.idp("directory", "delete", DIRECTORY)
            # No warm worker keeps the deleted store (with its stopped server) for the next test.
            local_idp.restart_functions()
            local_idp.idp("user", "delete", USER)
            local_idp.idp("user", "delete", ADMIN)
