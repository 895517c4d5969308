"""The 2FA set-up page and the admin pages for MFA settings and app policies, over HTTP."""

from __future__ import annotations

import json

import pytest
import requests

from idp_core.mfa import policy
from idp_core.models import App, Factor, KeyValue
from tests.helpers.mfa import (
    MFA_APP,
    add_user,
    alert,
    enrol_totp,
    is_challenge,
    location_path,
    location_query,
    path_of,
    settings_form,
    submit_code,
    totp_code,
)
from tests.helpers.sso import Sso, csrf_token

pytestmark = pytest.mark.sso_setup("two_apps")


def _admin_with_totp(sso: Sso) -> tuple[requests.Session, str]:
    add_user("root", sso.clock, email="root@example.com", admin=True)
    browser = sso.browser()
    sso.sign_in(browser, "root")
    secret, answer = enrol_totp(sso, browser)
    assert answer.status_code == 303
    return browser, secret


def test_the_setup_page_offers_each_allowed_method_by_its_label(sso: Sso) -> None:
    add_user("amy", sso.clock)
    browser = sso.browser()
    sso.sign_in(browser, "amy")
    page = sso.get(browser, "/me/mfa")
    assert page.status_code == 200
    for label in ("Authenticator app", "Text message (SMS)", "E-mail", "Backup codes"):
        assert f">{label}</" in page.text, label
    assert "Hardware token" not in page.text  # tokens are assigned by an admin, not added here


def test_the_authenticator_set_up_shows_a_large_qr_code_and_the_secret_as_text(sso: Sso) -> None:
    add_user("ben", sso.clock)
    browser = sso.browser()
    sso.sign_in(browser, "ben")
    page = sso.get(browser, "/me/mfa")
    started = sso.post(browser, "/me/mfa/totp", {"csrf_token": csrf_token(page.text)})
    setup = sso.get(browser, path_of(started))
    assert "<svg" in setup.text
    width = int(setup.text.split("<svg", 1)[1].split('width="', 1)[1].split('"', 1)[0].rstrip("px"))
    assert width >= 200
    assert 'id="totp-secret"' in setup.text
    pending = list(Factor.query("ben"))
    assert [f.status for f in pending] == ["pending"]


def test_admin_pages_need_a_fresh_second_factor(sso: Sso) -> None:
    browser, secret = _admin_with_totp(sso)
    assert sso.get(browser, "/admin/mfa").status_code == 200  # the enrolment just proved a factor

    sso.clock.advance(16 * 60)
    for path in ("/admin/mfa", f"/admin/mfa/apps/{MFA_APP}", "/admin", "/admin/users"):
        stale = sso.get(browser, path)
        assert stale.status_code == 303, path
        assert location_path(stale) == "/mfa" and location_query(stale)["next"] == [path]

    verified = submit_code(sso, browser, "/mfa?next=/admin/mfa", totp_code(secret, sso.clock))
    assert verified.status_code == 303 and location_path(verified) == "/admin/mfa"
    assert sso.get(browser, "/admin/mfa").status_code == 200


def test_saving_the_2fa_options_validates_everything_before_writing(sso: Sso) -> None:
    browser, _ = _admin_with_totp(sso)
    page = sso.get(browser, "/admin/mfa")
    for bad in (
        {"per_user_per_hour": "five"},
        {"allowed_countries": "USA, Narnia"},
        {"default_method": "carrier-pigeon"},
        {"per_ip_per_hour": "9" * 20},
    ):
        refused = sso.post(browser, "/admin/mfa", settings_form(page.text, **bad))
        assert refused.status_code == 400, bad
        assert alert(refused.text)
        with pytest.raises(KeyValue.DoesNotExist):
            KeyValue.get("mfa-settings")  # nothing written

    saved = sso.post(browser, "/admin/mfa", settings_form(page.text, allowed_countries="us, gb"))
    assert saved.status_code == 303
    settings = policy.load_settings()
    assert settings.enrol_at_sign_in is True
    assert tuple(settings.sms.allowed_countries) == ("US", "GB")
    stored = json.loads(KeyValue.get("mfa-settings").value)
    assert stored


def test_the_app_policy_page_turns_mfa_off_and_limits_the_methods(sso: Sso) -> None:
    browser, _ = _admin_with_totp(sso)
    page = sso.get(browser, f"/admin/mfa/apps/{MFA_APP}")
    assert "Enable 2-Factor Authentication (MFA)" in page.text
    saved = sso.post(
        browser, f"/admin/mfa/apps/{MFA_APP}", {"csrf_token": csrf_token(page.text), "method_totp": "on"}
    )
    assert saved.status_code == 303
    app = App.get(MFA_APP)
    assert app.mfa_required is False
    assert set(app.mfa_methods or ()) == {"totp"}


def test_a_pending_session_cannot_use_the_admin_pages_even_with_a_factor(sso: Sso) -> None:
    _admin_with_totp(sso)
    sso.clock.advance(30)
    browser = sso.browser()
    signed_in = sso.sign_in(browser, "root", app=MFA_APP)
    assert is_challenge(signed_in)
    for path in ("/admin/mfa", "/admin", "/me/mfa"):
        answer = sso.get(browser, path)
        assert answer.status_code == 303 and location_path(answer) == "/mfa", path


def test_the_app_policy_page_chooses_the_apps_adaptive_policy(sso: Sso) -> None:
    from idp_core.adaptive import policies

    policies.save_policy(policies.AdaptivePolicy(name="office", allow_cidrs=("10.0.0.0/8",)), create=True)
    browser, _ = _admin_with_totp(sso)
    page = sso.get(browser, f"/admin/mfa/apps/{MFA_APP}")
    assert '<option value="office">office</option>' in page.text
    token = csrf_token(page.text)
    chosen = {"csrf_token": token, "mfa_required": "on", "adaptive_policy": "office"}
    assert sso.post(browser, f"/admin/mfa/apps/{MFA_APP}", chosen).status_code == 303
    assert App.get(MFA_APP).adaptive_policy == "office"
    assert '<option value="office" selected>' in sso.get(browser, f"/admin/mfa/apps/{MFA_APP}").text

    unknown = sso.post(browser, f"/admin/mfa/apps/{MFA_APP}", {**chosen, "adaptive_policy": "ghost"})
    assert unknown.status_code == 404 and "There is no adaptive policy" in unknown.text
    assert App.get(MFA_APP).adaptive_policy == "office"  # nothing changed

    cleared = {"csrf_token": token, "mfa_required": "on", "adaptive_policy": "none"}
    assert sso.post(browser, f"/admin/mfa/apps/{MFA_APP}", cleared).status_code == 303
    assert App.get(MFA_APP).adaptive_policy is None
