"""A person who forgot their password asks for a link on the sign-in page, reads the e-mail in
the local outbox, follows the link, proves their authenticator app and sets a new password
(issue 15 point 2), in Chromium against `idp local`."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import enrol_authenticator, latest_message_to, sign_in, sign_out

OLD_PASSWORD = "a passphrase soon forgotten"
NEW_PASSWORD = "a passphrase written down this time"
ADDRESS = "forgetful@example.com"


def test_forgot_password_link_second_factor_and_new_password(page: Page, local_idp: LocalIdp) -> None:
    base = local_idp.base_url
    added = local_idp.idp(
        "user", "add", "forgetful", "--email", ADDRESS, "--password-stdin", stdin=OLD_PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    sign_in(page, base, "forgetful", OLD_PASSWORD)
    authenticator = enrol_authenticator(page, base)
    sign_out(page, base)

    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Username or e-mail").fill(ADDRESS)
    page.get_by_role("button", name="Send link").click()
    expect(page.get_by_role("status")).to_contain_text("we sent an e-mail")

    message = latest_message_to(page.context, base, ADDRESS)
    link = re.search(r"(http\S+/login/reset\?token=\S+)", message)
    assert link, message
    page.goto(link.group(1))
    page.get_by_role("button", name="Continue").click()
    # The link does not skip the second factor: the sign-in's challenge comes first.
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/mfa"))
    # The enrolment spent the current step (S6); the server accepts one step ahead.
    page.get_by_label("Verification code").fill(authenticator.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{base}/login/reset/password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password was changed")

    # The link worked once.
    page.goto(link.group(1))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("it was used already")
    # The old password is gone; the new one signs in (no app asks for a second factor here).
    sign_in(page, base, "forgetful", OLD_PASSWORD)
    expect(page.get_by_role("alert")).to_be_visible()
    sign_in(page, base, "forgetful", NEW_PASSWORD)
    expect(page).to_have_url(f"{base}/me")
