"""A person trusts their browser in Chromium, signs in again without a code, removes the
device on /me/devices and is asked for a code again (issue 4)."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import (
    add_demo_user,
    enrol_authenticator,
    expect_signed_in_to_aws,
    make_backup_codes,
    sign_in,
    sign_out,
    submit_password,
)

PASSWORD = "browser-trust-passphrase"
USER = "trusting-person"


def test_trust_this_device_then_sign_in_without_a_code_until_the_device_is_removed(
    page: Page, local_idp: LocalIdp
) -> None:
    state = local_idp.process.state
    assert state is not None
    base = local_idp.base_url
    created = local_idp.idp(
        "adaptive", "create", "trust-browsers", "--register-devices", "--trust-days", "30"
    )
    assert created.returncode == 0, created.stderr
    assigned = local_idp.idp("policy", "set", state.demo_app, "--adaptive", "trust-browsers")
    assert assigned.returncode == 0, assigned.stderr
    try:
        add_demo_user(local_idp, USER, PASSWORD)
        sign_in(page, base, USER, PASSWORD)
        authenticator = enrol_authenticator(page, base)
        backup_code = make_backup_codes(page, base)[0]
        sign_out(page, base)

        def open_demo_app() -> None:
            page.goto(f"{base}/apps/{state.demo_app}/launch")
            expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/login"))
            submit_password(page, USER, PASSWORD)

        open_demo_app()
        expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/mfa"))
        # The enrolment spent the current time step (S6); the server accepts one step ahead.
        page.get_by_label("Verification code").fill(authenticator.at(time.time() + 30))
        page.get_by_label("Trust this device for 30 days").check()
        page.get_by_role("button", name="Verify").click()
        expect_signed_in_to_aws(page, base, USER)

        sign_out(page, base)
        open_demo_app()  # the trusted browser: no code
        expect_signed_in_to_aws(page, base, USER)

        page.goto(f"{base}/me/devices")
        # Managing devices needs a fresh second factor of the strongest tier (S28), which the
        # trusted sign-in skipped: a backup code is of that tier (the next TOTP step is 30 s away).
        expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/mfa"))
        page.get_by_role("link", name=re.compile("Backup codes")).click()
        page.get_by_label("Verification code").fill(backup_code)
        page.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(f"{base}/me/devices")
        row = page.get_by_role("row").filter(has_text="This device")
        expect(row).to_contain_text("Trusted until")
        row.get_by_role("button", name="Remove").click()
        expect(page.get_by_text("No devices are registered for your account")).to_be_visible()

        sign_out(page, base)
        open_demo_app()
        expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/mfa"))
        expect(page.get_by_label("Verification code")).to_be_visible()
    finally:
        local_idp.idp("policy", "set", state.demo_app, "--adaptive", "none")
