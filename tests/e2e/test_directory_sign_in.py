"""A person from the company's LDAP directory signs in in Chromium with the directory
password and lands in the AWS console emulator with the role their directory group maps to
(issue 5)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import enrol_authenticator, expect_signed_in_to_aws, submit_password
from tests.support.slapd import Slapd

SERVICE_PASSWORD = "service-secret"
PASSWORD = "directory-Passphrase-1"
USER = "dora.directory"


def test_a_directory_user_signs_in_with_the_directory_password_to_the_demo_aws_app(
    page: Page, local_idp: LocalIdp
) -> None:
    state = local_idp.process.state
    assert state is not None
    base = local_idp.base_url
    with Slapd() as slapd, slapd.subtree() as tree:
        tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)
        dora = tree.add_user(USER, PASSWORD, cn="Dora Directory", sn="Directory", mail="dora@corp.example")
        tree.add_group(state.demo_group, [dora])  # the group the demo app maps to its role
        added = local_idp.idp(
            "directory",
            "add-ldap",
            "corp",
            "--type",
            "openldap",
            "--url",
            slapd.url,
            "--allow-cleartext",  # slapd speaks plain LDAP on 127.0.0.1 (S30)
            "--bind-dn",
            f"uid=svc,{tree.dn}",
            "--bind-password-stdin",
            "--base",
            tree.people,
            "--activate",
            "--sync-users",
            stdin=SERVICE_PASSWORD + "\n",
        )
        assert added.returncode == 0, added.stderr
        # A warm sso worker may have read the list of directories less than 30 s ago.
        local_idp.restart_functions()
        try:
            page.goto(f"{base}/apps/{state.demo_app}/launch")
            expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/login"))
            submit_password(page, USER, PASSWORD)
            # The demo app requires a second factor: the new user enrols first (S11).
            expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/me/mfa"))
            enrol_authenticator(page, base)
            page.goto(f"{base}/apps/{state.demo_app}/launch")
            expect_signed_in_to_aws(page, base, USER)
        finally:
            local_idp.idp("directory", "delete", "corp")
            local_idp.restart_functions()
    shown = local_idp.idp("user", "show", USER, "--json")
    assert shown.returncode == 0 and '"ldap:corp"' in shown.stdout, shown.stdout + shown.stderr
