"""A person sets up each kind of second factor in Chromium and signs in with it to the demo AWS app."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import (
    add_demo_user,
    code_in,
    enrol_authenticator,
    expect_signed_in_to_aws,
    latest_message_to,
    sign_in,
    sign_out,
    submit_password,
)

PASSWORD = "browser-mfa-passphrase"


def launch_demo_app(page: Page, local_idp: LocalIdp, username: str) -> None:
    """Open the demo app's launch link signed out, then give the password."""
    state = local_idp.process.state
    assert state is not None
    base = local_idp.base_url
    page.goto(f"{base}/apps/{state.demo_app}/launch")
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/login"))
    submit_password(page, username, PASSWORD)
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/mfa"))


def test_enrol_an_authenticator_app_then_sign_in_with_it_to_the_demo_aws_app(
    page: Page, local_idp: LocalIdp
) -> None:
    base = local_idp.base_url
    add_demo_user(local_idp, "totp-person", PASSWORD)
    sign_in(page, base, "totp-person", PASSWORD)
    authenticator = enrol_authenticator(page, base)
    page.goto(f"{base}/me/mfa")
    expect(page.get_by_role("cell", name="Active", exact=True)).to_be_visible()
    sign_out(page, base)

    launch_demo_app(page, local_idp, "totp-person")
    # The current step was spent on the enrolment (S6); the server accepts one step ahead.
    page.get_by_label("Verification code").fill(authenticator.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect_signed_in_to_aws(page, base, "totp-person")


def test_enrol_a_phone_then_sign_in_with_a_text_message_read_from_the_outbox(
    page: Page, local_idp: LocalIdp
) -> None:
    base, phone = local_idp.base_url, "+447400123456"
    add_demo_user(local_idp, "sms-person", PASSWORD)
    sign_in(page, base, "sms-person", PASSWORD)
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/me/mfa"))  # made to enrol (S11)
    page.get_by_role("link", name="Text message (SMS)").click()
    page.get_by_label("Phone number").fill("+44 7400 123456")
    page.get_by_role("button", name="Send code").click()
    page.get_by_label("Verification code").fill(code_in(latest_message_to(page.context, base, phone)))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{base}/me")  # enrolled: the sign-in is complete
    page.goto(f"{base}/me/mfa")
    expect(page.get_by_role("cell", name="Active", exact=True)).to_be_visible()
    sign_out(page, base)

    launch_demo_app(page, local_idp, "sms-person")
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_role("status")).to_contain_text("We sent a code")
    page.get_by_label("Verification code").fill(code_in(latest_message_to(page.context, base, phone)))
    page.get_by_role("button", name="Verify").click()
    expect_signed_in_to_aws(page, base, "sms-person")


def test_sign_in_with_a_backup_code_which_then_fails_a_second_time(page: Page, local_idp: LocalIdp) -> None:
    base = local_idp.base_url
    add_demo_user(local_idp, "backup-person", PASSWORD)
    sign_in(page, base, "backup-person", PASSWORD)
    page.get_by_role("button", name="Backup codes").click()
    codes = page.get_by_role("list", name="Backup codes").locator("code").all_inner_texts()
    assert len(codes) >= 10
    page.get_by_role("link", name=re.compile("^(Continue|Done)$")).click()
    sign_out(page, base)

    launch_demo_app(page, local_idp, "backup-person")
    page.get_by_label("Verification code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect_signed_in_to_aws(page, base, "backup-person")

    page.context.clear_cookies()
    launch_demo_app(page, local_idp, "backup-person")
    page.get_by_label("Verification code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_have_text("The verification code is not correct.")
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/mfa"))
