"""What a person does in the browser, shared by the browser tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyotp
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, expect

from tests.e2e.conftest import LocalIdp

PASSKEY = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
}


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    submit_password(page, username, password)


def submit_password(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def submit_password_with(page: Page, choice: str, username: str, password: str) -> None:
    """Sign in on the form's "Sign in with" choice (a user store's display name)."""
    page.get_by_label("Sign in with").select_option(label=choice)
    submit_password(page, username, password)


@contextmanager
def fresh_browser_page(browser: Browser) -> Iterator[Page]:
    """A page in a new browser profile: none of the cookies of whoever signed in before."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def add_demo_user(local_idp: LocalIdp, username: str, password: str) -> None:
    """A user in the demo app's group, added with the CLI as an admin would."""
    state = local_idp.process.state
    assert state is not None
    added = local_idp.idp(
        "user", "add", username, "--group", state.demo_group, "--password-stdin", stdin=password + "\n"
    )
    assert added.returncode == 0, added.stderr


def enrol_authenticator(page: Page, base_url: str) -> pyotp.TOTP:
    """Add an authenticator app on the 2FA page, typing the secret shown for manual entry."""
    page.goto(f"{base_url}/me/mfa")
    page.get_by_role("button", name="Authenticator app").click()
    expect(page.locator(".qr svg")).to_be_visible()
    authenticator = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    page.get_by_label("Verification code").fill(authenticator.now())
    page.get_by_role("button", name="Verify").click()
    expect(page).not_to_have_url(re.compile(r"/confirm"))
    return authenticator


def make_backup_codes(page: Page, base_url: str) -> list[str]:
    """Make a set of backup codes on the 2FA page and read them off the page that shows them once."""
    page.goto(f"{base_url}/me/mfa")
    page.get_by_role("button", name="Backup codes").click()
    shown = page.get_by_role("list", name="Backup codes")
    expect(shown).to_be_visible()  # all_inner_texts does not wait for the page that shows them.
    codes = shown.locator("code").all_inner_texts()
    assert len(codes) >= 10, codes
    return codes


def latest_message_to(context: BrowserContext, base_url: str, recipient: str) -> str:
    """The newest SMS or e-mail body for ``recipient`` on the local outbox page, read in another tab."""
    outbox = context.new_page()
    try:
        outbox.goto(f"{base_url}/_local/outbox")
        newest = outbox.locator("li").filter(has_text=recipient).first
        return newest.locator("pre").inner_text()
    finally:
        outbox.close()


def code_in(message: str) -> str:
    match = re.search(r"\b(\d{6})\b", message)
    assert match, f"no code in {message!r}"
    return match.group(1)


def sign_out(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/me")
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(base_url)}/login"))


def expect_signed_in_to_aws(page: Page, base_url: str, username: str) -> None:
    expect(page).to_have_url(f"{base_url}/_local/aws/saml")
    expect(page.get_by_role("heading", name="Signed in to AWS")).to_be_visible()
    expect(page.locator("#assumed-role")).to_have_text(
        re.compile(rf"^arn:aws:sts::123456789012:assumed-role/IdpDemoEngineer/{re.escape(username)}$")
    )


# ---------------------------------------------------------------- security keys (virtual authenticators)


def virtual_authenticator(page: Page, options: dict[str, Any]) -> tuple[CDPSession, str]:
    """A virtual authenticator in this page's browser, answering as a real key would."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator", {"options": {"automaticPresenceSimulation": True, **options}}
    )
    return cdp, str(added["authenticatorId"])


def without_passkey_autofill(page: Page) -> None:
    """A browser without the autofill of passkeys (conditional mediation). Chromium's virtual
    authenticator completes such a pending request at once, standing for a person who picks
    the passkey from the list; tests of the buttons take that away so nothing races them."""
    page.add_init_script("delete window.PublicKeyCredential.isConditionalMediationAvailable;")


def localhost(local_idp: LocalIdp) -> str:
    return local_idp.base_url.replace("127.0.0.1", "localhost")


def register_key(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/me/mfa")
    page.get_by_role("link", name="Security key or passkey").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Register").click()
    # The script asks the key, then posts its answer; a refusal would show this page again.
    expect(page).not_to_have_url(re.compile(r"/me/mfa/webauthn"))
    page.goto(f"{base}/me/mfa")
    expect(
        page.get_by_role("row").filter(has_text=name).get_by_role("cell", name="Active", exact=True)
    ).to_be_visible()
