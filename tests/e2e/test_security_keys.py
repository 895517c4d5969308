"""Security keys and passkeys in real Chromium with its virtual authenticators (the DevTools
protocol's WebAuthn domain): a passkey (CTAP2, resident key, user verification) and a
U2F-style USB key (no resident key, no user verification). WebAuthn needs a host name as
relying party, so these pages are opened at http://localhost:PORT (DESIGN.md)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import (
    PASSKEY,
    add_demo_user,
    expect_signed_in_to_aws,
    localhost,
    register_key,
    sign_in,
    sign_out,
    submit_password,
    virtual_authenticator,
    without_passkey_autofill,
)

PASSWORD = "browser-key-passphrase"
U2F_KEY = {"protocol": "u2f", "transport": "usb"}


def launch_with_key(page: Page, local_idp: LocalIdp, base: str, username: str) -> None:
    state = local_idp.process.state
    assert state is not None
    page.goto(f"{base}/apps/{state.demo_app}/launch")
    submit_password(page, username, PASSWORD)
    expect(page.get_by_text("Security key or passkey").first).to_be_visible()
    page.get_by_role("button", name="Use security key").click()
    expect_signed_in_to_aws(page, local_idp.base_url, username)


def test_register_a_passkey_then_sign_in_with_it_as_the_second_factor(
    page: Page, local_idp: LocalIdp
) -> None:
    base = localhost(local_idp)
    add_demo_user(local_idp, "passkey-person", PASSWORD)
    without_passkey_autofill(page)
    cdp, authenticator = virtual_authenticator(page, PASSKEY)
    sign_in(page, base, "passkey-person", PASSWORD)
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/me/mfa"))  # made to enrol (S11)
    register_key(page, base, "Laptop passkey")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"] is True
    sign_out(page, base)
    launch_with_key(page, local_idp, base, "passkey-person")
    counted = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert counted[0]["signCount"] >= 1


def test_a_u2f_security_key_without_user_verification_is_a_second_factor(
    page: Page, local_idp: LocalIdp
) -> None:
    base = localhost(local_idp)
    add_demo_user(local_idp, "u2f-person", PASSWORD)
    virtual_authenticator(page, U2F_KEY)
    sign_in(page, base, "u2f-person", PASSWORD)
    register_key(page, base, "USB key")
    sign_out(page, base)
    launch_with_key(page, local_idp, base, "u2f-person")


def test_a_key_from_another_profile_cannot_answer(page: Page, local_idp: LocalIdp) -> None:
    """A browser whose authenticator never registered here gets a sentence, not a sign-in."""
    base = localhost(local_idp)
    add_demo_user(local_idp, "key-owner", PASSWORD)
    without_passkey_autofill(page)
    cdp, owners = virtual_authenticator(page, PASSKEY)
    sign_in(page, base, "key-owner", PASSWORD)
    register_key(page, base, "Owner's key")
    sign_out(page, base)
    # The owner's key is gone; a fresh one with no credential for this site answers instead.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": owners})
    cdp.send(
        "WebAuthn.addVirtualAuthenticator", {"options": {"automaticPresenceSimulation": True, **PASSKEY}}
    )
    state = local_idp.process.state
    assert state is not None
    page.goto(f"{base}/apps/{state.demo_app}/launch")
    submit_password(page, "key-owner", PASSWORD)
    page.get_by_role("button", name="Use security key").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("did not answer|cancelled|could not"))
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/mfa"))


def test_sign_in_with_a_passkey_alone_to_the_demo_aws_app(page: Page, local_idp: LocalIdp) -> None:
    """No username, no password, no code: the passkey verified the person (resident key, UV)."""
    base = localhost(local_idp)
    add_demo_user(local_idp, "passwordless-person", PASSWORD)
    without_passkey_autofill(page)
    virtual_authenticator(page, PASSKEY)
    sign_in(page, base, "passwordless-person", PASSWORD)
    register_key(page, base, "Phone passkey")
    sign_out(page, base)
    state = local_idp.process.state
    assert state is not None
    page.goto(f"{base}/apps/{state.demo_app}/launch")
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/login"))
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect_signed_in_to_aws(page, local_idp.base_url, "passwordless-person")


def test_the_browsers_passkey_autofill_signs_in_from_the_sign_in_page(
    page: Page, local_idp: LocalIdp
) -> None:
    """Where the browser offers passkeys in the username field's autofill, choosing one signs
    in (the virtual authenticator chooses at once)."""
    base = localhost(local_idp)
    add_demo_user(local_idp, "autofill-person", PASSWORD)
    virtual_authenticator(page, PASSKEY)
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill("autofill-person")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    register_key(page, base, "Autofill passkey")
    state = local_idp.process.state
    assert state is not None
    page.goto(f"{base}/me")
    page.get_by_role("button", name="Sign out", exact=True).click()
    # Back on the sign-in page, the pending autofill request is answered: no button pressed.
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/me$"))
    expect(page.get_by_role("heading", name="My apps")).to_be_visible()
