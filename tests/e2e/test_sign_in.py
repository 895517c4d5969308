"""A person signs in with Chromium and reaches the AWS console stand-in through the demo app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import enrol_authenticator, expect_signed_in_to_aws, sign_in

SCREENSHOT_DIR_NAME = "screenshots"


def sign_in_error(page: Page) -> str:
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    return alert.inner_text().strip()


def test_demo_user_launches_the_aws_app_and_sees_the_assumed_role(
    page: Page, local_idp: LocalIdp, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = local_idp.base_url
    sign_in(page, base, local_idp.user.username, local_idp.user.password)

    # The demo user has no second factor yet: every page leads to setting one up (S11).
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/me/mfa"))
    page.goto(f"{base}/me")
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/me/mfa"))
    enrol_authenticator(page, base)

    page.goto(f"{base}/me")
    page.get_by_role("link", name="AWS console (demo account)").click()
    expect_signed_in_to_aws(page, base, local_idp.user.username)
    screenshot: Path = tmp_path_factory.mktemp(SCREENSHOT_DIR_NAME) / "aws-emulator.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"emulator screenshot: {screenshot}")


def test_wrong_password_and_unknown_user_get_exactly_the_same_message(
    browser: Browser, local_idp: LocalIdp
) -> None:
    messages = []
    for username, password in [
        (local_idp.user.username, local_idp.user.password + "-wrong"),
        ("no-such-user-anywhere", "whatever-password-1"),
    ]:
        context = browser.new_context()
        try:
            page = context.new_page()
            sign_in(page, local_idp.base_url, username, password)
            messages.append((sign_in_error(page), page.url))
        finally:
            context.close()

    (wrong_password, wrong_url), (unknown_user, unknown_url) = messages
    assert wrong_password == unknown_user
    assert wrong_password == "The username or password is incorrect."
    assert wrong_url == unknown_url == f"{local_idp.base_url}/login"


def test_a_user_disabled_with_the_cli_cannot_sign_in_and_loses_their_session(
    browser: Browser, local_idp: LocalIdp
) -> None:
    password = "disable-me-passphrase"
    added = local_idp.idp("user", "add", "erin", "--password-stdin", stdin=password + "\n")
    assert added.returncode == 0, added.stderr
    signed_in = browser.new_context()
    try:
        earlier = signed_in.new_page()
        sign_in(earlier, local_idp.base_url, "erin", password)
        # Signed in half-way: the password is done, a second factor is still to be set up.
        expect(earlier).to_have_url(re.compile(rf"^{re.escape(local_idp.base_url)}/me/mfa"))

        disabled = local_idp.idp("user", "disable", "erin")
        assert disabled.returncode == 0, disabled.stderr

        earlier.goto(f"{local_idp.base_url}/me/mfa")
        expect(earlier).to_have_url(re.compile(rf"^{re.escape(local_idp.base_url)}/login"))
    finally:
        signed_in.close()

    fresh = browser.new_context()
    try:
        page = fresh.new_page()
        sign_in(page, local_idp.base_url, "erin", password)
        assert sign_in_error(page) == "The username or password is incorrect."
        expect(page).to_have_url(f"{local_idp.base_url}/login")
    finally:
        fresh.close()
