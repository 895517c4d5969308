"""The admin console for security keys (issue 15 point 1): a user's keys on their page (name,
model, created, last used) with a button to remove one, the app policy's "phishing-resistant
only" switch, and the 2FA options for user verification and allowed models."""

from __future__ import annotations

import re

import pytest
import requests

from idp_core import apps
from idp_core.mfa import factors, policy
from idp_core.models import WebAuthnCredential
from tests.helpers.mfa import MFA_APP, add_user, make_factor, settings_form
from tests.helpers.sso import Sso, csrf_token

pytestmark = pytest.mark.sso_setup("two_apps")

YUBIKEY_5 = "cb69481e-8ff7-4039-93ec-0a2729a154a8"


def test_an_admin_sees_a_users_keys_and_removes_one(sso: Sso, admin: requests.Session) -> None:
    add_user("alice", sso.clock)
    key = make_factor(
        "alice", "webauthn", sso.clock, aaguid=YUBIKEY_5, credential_id="a2V5", public_key="cGs"
    )
    WebAuthnCredential("a2V5", username="alice", factor_id=key.factor_id, created_at=1.0).save()
    page = sso.get(admin, "/admin/users/alice")
    assert page.status_code == 200 and "Security keys and passkeys" in page.text
    assert YUBIKEY_5 in page.text and "Never" in page.text
    removed = sso.post(
        admin, f"/admin/users/alice/keys/{key.factor_id}/remove", {"csrf_token": csrf_token(page.text)}
    )
    assert removed.status_code == 303 and "key-removed" in removed.headers["Location"]
    assert factors.list_factors("alice") == []
    assert list(WebAuthnCredential.scan()) == []


def test_attack_the_key_button_removes_no_other_kind_of_factor(sso: Sso, admin: requests.Session) -> None:
    add_user("alice", sso.clock)
    totp = make_factor("alice", "totp", sso.clock)
    page = sso.get(admin, "/admin/users/alice")
    refused = sso.post(
        admin, f"/admin/users/alice/keys/{totp.factor_id}/remove", {"csrf_token": csrf_token(page.text)}
    )
    assert refused.status_code == 404
    assert [f.kind for f in factors.list_factors("alice")] == ["totp"]


def test_the_app_policy_page_switches_phishing_resistant_only(sso: Sso, admin: requests.Session) -> None:
    page = sso.get(admin, f"/admin/mfa/apps/{MFA_APP}")
    assert "Phishing-resistant only" in page.text
    saved = sso.post(
        admin,
        f"/admin/mfa/apps/{MFA_APP}",
        {"csrf_token": csrf_token(page.text), "mfa_required": "on", "phishing_resistant_only": "on"},
    )
    assert saved.status_code == 303
    assert apps.get_app(MFA_APP).phishing_resistant_only is True
    assert re.search(
        r"accepts now: Security key or passkey\.", sso.get(admin, f"/admin/mfa/apps/{MFA_APP}").text
    )


def test_the_2fa_options_set_user_verification_and_allowed_models(sso: Sso, admin: requests.Session) -> None:
    page = sso.get(admin, "/admin/mfa")
    assert "Allowed key models (AAGUIDs)" in page.text
    refused = sso.post(admin, "/admin/mfa", settings_form(page.text, webauthn_models="not-a-model"))
    assert refused.status_code == 400 and "is not an AAGUID" in refused.text
    saved = sso.post(
        admin,
        "/admin/mfa",
        settings_form(page.text, webauthn_user_verification="on", webauthn_models=f"{YUBIKEY_5.upper()}"),
    )
    assert saved.status_code == 303
    settings = policy.load_settings()
    assert (settings.webauthn_user_verification, settings.webauthn_models) == ("required", (YUBIKEY_5,))
