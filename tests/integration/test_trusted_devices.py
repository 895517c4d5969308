"""Trusted devices (issue 4): "Trust this device" after a second factor lets that browser
skip the app's second factor where the app's policy allows it, and nowhere else; removing
the device, disabling the user or changing a factor ends the trust; a trusted device
never skips enrolment (S11) or the admin console's second factor."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from idp_core import accounts
from idp_core.adaptive import devices
from idp_core.clock import FakeClock
from idp_core.mfa import backup_codes
from idp_core.models import Device, User
from idp_core.scope import Browser
from tests.helpers.adaptive import browser_at, give_policy, is_saml_post
from tests.helpers.mfa import (
    ACCOUNT,
    MFA_APP,
    add_user,
    give_totp,
    is_challenge,
    submit_code,
    totp_code,
)
from tests.helpers.scope import scope_at
from tests.helpers.sso import Sso, csrf_token

TRUST_BOX = "Trust this device for 30 days"
OTHER_APP = "aws-other"


pytestmark = pytest.mark.sso_setup("two_apps")


@pytest.fixture
def secret(sso: Sso, clock: FakeClock) -> str:
    """ann, with an authenticator, and the MFA app under a policy that lets devices be trusted."""
    add_user("ann", clock, admin=True)
    give_policy(MFA_APP, clock, name="trusting", register_devices=True, trust_days=30)
    return give_totp(sso, "ann")


def _sign_in(sso: Sso, browser: requests.Session, app: str = MFA_APP) -> requests.Response:
    browser.cookies.pop("idp_session", None)  # a new sign-in, as after signing out
    return sso.sign_in(browser, "ann", app=app)


def _trusting_sign_in(sso: Sso, secret: str) -> requests.Session:
    """Sign in with a code and tick "Trust this device"; returns the browser."""
    browser = browser_at("127.0.0.2")
    challenge = _sign_in(sso, browser)
    assert is_challenge(challenge) and TRUST_BOX in challenge.text
    verified = sso.post(
        browser,
        "/mfa/verify",
        {
            "csrf_token": csrf_token(challenge.text),
            "factor": challenge.text.split('name="factor" value="')[1].split('"')[0],
            "code": totp_code(secret, sso.clock),
            "app": MFA_APP,
            "trust": "1",
        },
    )
    assert is_saml_post(verified), verified.text[:800]
    assert "idp_device" in browser.cookies
    return browser


def _skips_the_code(sso: Sso, browser: requests.Session, app: str = MFA_APP) -> bool:
    signed_in = _sign_in(sso, browser, app)
    if is_challenge(signed_in):
        return False
    return is_saml_post(signed_in)


def test_a_trusted_device_skips_the_code_and_an_untrusted_one_does_not(sso: Sso, secret: str) -> None:
    browser = _trusting_sign_in(sso, secret)
    [device] = Device.query("ann")
    assert device.trusted_until is not None
    assert float(device.trusted_until) == pytest.approx(sso.clock.now() + 30 * 86400)
    assert _skips_the_code(sso, browser)

    stranger = browser_at("127.0.0.2")  # another browser of the same user: not trusted
    assert is_challenge(_sign_in(sso, stranger))

    sso.clock.advance(31 * 86400)  # the trust ends after its days
    assert not _skips_the_code(sso, browser)


def test_trust_is_not_offered_or_honoured_where_the_policy_does_not_allow_it(
    sso: Sso, secret: str, clock: FakeClock
) -> None:
    from idp_core import apps

    apps.create_aws_app(
        OTHER_APP, apps.AwsAppChoices(account_id=ACCOUNT, roles=[("Engineer", "engineers")]), clock=clock
    )
    give_policy(OTHER_APP, clock, name="strict", register_devices=True)  # trust_days 0: off
    browser = _trusting_sign_in(sso, secret)
    other = _sign_in(sso, browser, OTHER_APP)
    assert is_challenge(other) and "Trust this device" not in other.text
    # A plain step-up (no app) never offers it either.
    assert "Trust this device" not in sso.get(browser, "/mfa").text


def test_removing_the_device_ends_the_trust(sso: Sso, secret: str) -> None:
    browser = _trusting_sign_in(sso, secret)
    [device] = Device.query("ann")
    devices.remove("ann", device.device_id, clock=sso.clock)
    assert not _skips_the_code(sso, browser)


def test_disabling_the_user_ends_the_trust_for_good(sso: Sso, secret: str) -> None:
    browser = _trusting_sign_in(sso, secret)
    accounts.set_user_disabled("ann", True, clock=sso.clock)
    accounts.set_user_disabled("ann", False, clock=sso.clock)
    assert not _skips_the_code(sso, browser)


def test_a_factor_change_ends_the_trust(sso: Sso, secret: str) -> None:
    browser = _trusting_sign_in(sso, secret)
    backup_codes.generate("ann", clock=sso.clock)
    assert not _skips_the_code(sso, browser)


def test_the_admin_console_still_asks_for_the_second_factor(sso: Sso, secret: str) -> None:
    browser = _trusting_sign_in(sso, secret)
    assert _skips_the_code(sso, browser)
    sso.clock.advance(16 * 60)  # past the console's window for the code proven at the start
    console = sso.get(browser, "/admin")
    assert console.status_code == 303 and urlsplit(console.headers["Location"]).path == "/mfa"


def test_a_trusted_device_never_skips_enrolment(sso: Sso, clock: FakeClock) -> None:
    add_user("bob", clock)
    give_policy(MFA_APP, clock, name="trusting", register_devices=True, trust_days=30)
    # A device trusted under the current epoch, for a user with no factor at all.
    bob = User.get("bob")
    registration = devices.register(
        bob, scope_at(clock, browser=Browser("127.0.0.2")), max_devices=5, trust_days=30
    )
    assert devices.is_trusted(registration.device, User.get("bob"), clock.now())
    browser = browser_at("127.0.0.2")
    browser.cookies.set("idp_device", registration.new_cookie)
    signed_in = sso.sign_in(browser, "bob", app=MFA_APP)
    assert signed_in.status_code == 303 and urlsplit(signed_in.headers["Location"]).path == "/me/mfa"
    assert sso.get(browser, f"/apps/{MFA_APP}/launch").headers["Location"].split("?")[0].endswith("/me/mfa")


def test_a_forged_or_foreign_device_cookie_is_not_trusted(sso: Sso, secret: str, clock: FakeClock) -> None:
    _trusting_sign_in(sso, secret)
    add_user("eve", clock)
    eves = devices.register(
        User.get("eve"), scope_at(clock, browser=Browser("127.0.0.2")), max_devices=5, trust_days=30
    )
    for cookie in (eves.new_cookie, "x" * 43, "not a cookie", "a" * 500):
        browser = browser_at("127.0.0.2")
        browser.cookies.set("idp_device", cookie)
        assert is_challenge(sso.sign_in(browser, "ann", app=MFA_APP))


def test_the_trust_box_needs_a_right_code(sso: Sso, secret: str) -> None:
    browser = browser_at("127.0.0.2")
    challenge = _sign_in(sso, browser)
    wrong = submit_code(sso, browser, f"/mfa?app={MFA_APP}", "000000")
    assert wrong.status_code == 401
    assert list(Device.query("ann")) == [] and is_challenge(challenge)
