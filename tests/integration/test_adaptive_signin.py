"""Adaptive policies at sign-in and at every launch, through the local gateway from real
loopback source addresses (issue 4): IP allow and deny lists (IPv4 and IPv6), the device
limit with its alerts, behaviour changes, and the reference page of a denial."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from idp_core.adaptive import devices
from idp_core.clock import FakeClock
from idp_core.models import Device, User
from idp_core.scope import Browser
from tests.helpers.adaptive import (
    browser_at,
    decisions,
    give_policy,
    ipv6_gateway,
    is_saml_post,
    launch_from_login,
    reference_on,
)
from tests.helpers.mfa import (
    MFA_APP,
    OPEN_APP,
    add_user,
    emails_to,
    give_totp,
    is_challenge,
    submit_code,
    totp_code,
)
from tests.helpers.scope import scope_at
from tests.helpers.sso import PASSWORD, Sso, csrf_token

ADMIN_ALERTS = "security@corp.example"


pytestmark = pytest.mark.sso_setup("two_apps")


def _sign_in(
    sso: Sso, source_ip: str, username: str = "ann", app: str = OPEN_APP, password: str = PASSWORD
) -> tuple[requests.Session, requests.Response]:
    browser = browser_at(source_ip)
    return browser, sso.sign_in(browser, username, password, app=app)


def _code(sso: Sso, browser: requests.Session, secret: str, app: str = OPEN_APP) -> requests.Response:
    return submit_code(sso, browser, f"/mfa?app={app}", totp_code(secret, sso.clock))


# ---------------------------------------------------------------- IP lists (IPv4)


@pytest.fixture
def office(sso: Sso, clock: FakeClock) -> str:
    """ann (with an authenticator) and a policy on the app without MFA: allow 127.0.0.0/29,
    deny 127.0.0.4/30 inside it, challenge everyone else."""
    add_user("ann", clock)
    give_policy(
        OPEN_APP,
        clock,
        allow_cidrs=("127.0.0.0/29",),
        deny_cidrs=("127.0.0.4/30",),
        outside_allow="challenge",
    )
    return give_totp(sso, "ann")


def test_an_address_on_the_allow_list_signs_in_with_the_password_alone(sso: Sso, office: str) -> None:
    browser, signed_in = _sign_in(sso, "127.0.0.2")
    assert is_saml_post(launch_from_login(sso, browser, signed_in))
    assert [event.details["ip_result"] for event in decisions()] == [
        "allow",
        "allow",
    ]  # password step, launch


def test_the_deny_list_wins_over_the_allow_list_and_is_checked_before_the_password(
    sso: Sso, office: str
) -> None:
    browser, refused = _sign_in(sso, "127.0.0.5")  # inside 127.0.0.0/29 and inside 127.0.0.4/30
    assert refused.status_code == 403
    reference = reference_on(refused.text)
    [event] = decisions("deny")
    assert event.details["reference"] == reference and event.source_ip == "127.0.0.5"
    assert (event.details["policy"], event.details["app"], event.details["reasons"]) == (
        "office",
        OPEN_APP,
        "deny-list",
    )

    # A wrong password from there gets the same refusal and counts no failure: the address
    # learns nothing about the password.
    _, wrong = _sign_in(sso, "127.0.0.6", password="not the password at all")
    assert wrong.status_code == 403 and "reference" in wrong.text
    assert int(User.get("ann").fail_password) == 0
    assert sso.get(browser, "/me").status_code == 303  # no session was issued


def test_challenge_outside_the_allow_list_forces_a_second_factor_on_an_app_without_mfa(
    sso: Sso, office: str
) -> None:
    browser, signed_in = _sign_in(sso, "127.0.0.9")
    assert is_challenge(signed_in)
    assert is_saml_post(_code(sso, browser, office))
    outcomes = [(event.outcome, event.details["reasons"]) for event in decisions()]
    assert outcomes == [("challenge", "outside-allow-list"), ("challenge", "outside-allow-list")]


def test_every_launch_applies_the_policy_from_the_address_in_use_now(sso: Sso, office: str) -> None:
    # Signed in at /login (no app, so no policy yet) from outside the allow list: the
    # launch asks for the second factor the policy wants.
    browser = browser_at("127.0.0.9")
    assert sso.sign_in(browser, "ann").status_code == 303
    step_up = sso.get(browser, f"/apps/{OPEN_APP}/launch")
    assert step_up.status_code == 303 and urlsplit(step_up.headers["Location"]).path == "/mfa"
    [asked] = decisions()  # the launch's decision is recorded although it sent the user away
    assert (asked.outcome, asked.details["reasons"], asked.source_ip) == (
        "challenge",
        "outside-allow-list",
        "127.0.0.9",
    )
    assert is_saml_post(_code(sso, browser, office))

    # The same session cookie, used from a denied address, launches nothing.
    moved = browser_at("127.0.0.5")
    moved.cookies.update(browser.cookies)
    refused = sso.get(moved, f"/apps/{OPEN_APP}/launch")
    assert refused.status_code == 403 and reference_on(refused.text)
    assert is_saml_post(sso.get(browser, f"/apps/{OPEN_APP}/launch"))  # and still from where it was


def test_deny_outside_the_allow_list(sso: Sso, clock: FakeClock) -> None:
    add_user("ann", clock)
    give_totp(sso, "ann")
    give_policy(OPEN_APP, clock, allow_cidrs=("127.0.0.0/29",), outside_allow="deny")
    assert _sign_in(sso, "127.0.0.20")[1].status_code == 403
    browser, signed_in = _sign_in(sso, "127.0.0.3")
    assert is_saml_post(launch_from_login(sso, browser, signed_in))


# ---------------------------------------------------------------- IP lists (IPv6)


def test_ipv6_allow_and_deny_lists(sso: Sso, clock: FakeClock) -> None:
    add_user("ann", clock)
    give_totp(sso, "ann")
    give_policy(OPEN_APP, clock, allow_cidrs=("::1/128",), outside_allow="deny")
    with ipv6_gateway(sso) as url:
        browser = browser_at("::1")
        assert is_saml_post(_sign_in_at(browser, url))  # the answer to the password is the launch
        # 127.0.0.1 is outside an allow list that holds only ::1.
        assert _sign_in(sso, "127.0.0.1")[1].status_code == 403

        give_policy(OPEN_APP, clock, name="no-v6", deny_cidrs=("::/0",))
        assert is_saml_post(launch_from_login(sso, *_sign_in(sso, "127.0.0.1")))
        refused = _sign_in_at(browser_at("::1"), url)
        assert refused.status_code == 403
    [event] = [
        event for event in decisions("deny") if event.details["reference"] == reference_on(refused.text)
    ]
    assert event.source_ip == "::1" and event.details["policy"] == "no-v6"


def _sign_in_at(browser: requests.Session, url: str) -> requests.Response:
    """Sign ann in to the open app through the gateway at ``url``."""
    page = browser.get(f"{url}/login", timeout=30)
    assert page.status_code == 200, page.text[:800]
    return browser.post(
        f"{url}/login",
        {"csrf_token": csrf_token(page.text), "username": "ann", "password": PASSWORD, "app": OPEN_APP},
        allow_redirects=False,
        timeout=30,
    )


# ---------------------------------------------------------------- device limit


@pytest.fixture
def capped(sso: Sso, clock: FakeClock) -> str:
    add_user("ann", clock, email="ann@corp.example")
    give_policy(
        OPEN_APP,
        clock,
        register_devices=True,
        max_devices=2,
        on_exceed="challenge",
        alert_user=True,
        alert_email=ADMIN_ALERTS,
    )
    return give_totp(sso, "ann")


def _new_device_signs_in(sso: Sso) -> None:
    browser, signed_in = _sign_in(sso, "127.0.0.2")
    launched = launch_from_login(sso, browser, signed_in)
    assert is_saml_post(launched)
    assert "idp_device=" in launched.headers.get("Set-Cookie", "")


def _limit_alerts() -> tuple[int, int]:
    """Device-limit alerts sent to ann and to the admin address (moto's outbox is process-wide:
    tests compare counts before and after)."""

    def count(address: str) -> int:
        return sum("Device limit" in message.subject for message in emails_to(address))

    return count("ann@corp.example"), count(ADMIN_ALERTS)


def _plus(before: tuple[int, int], user: int, admin: int) -> tuple[int, int]:
    return before[0] + user, before[1] + admin


def test_the_device_beyond_the_limit_is_challenged_and_alerts_once(sso: Sso, capped: str) -> None:
    before = _limit_alerts()
    _new_device_signs_in(sso)
    _new_device_signs_in(sso)
    assert int(User.get("ann").device_count) == 2 and _limit_alerts() == before

    third, signed_in = _sign_in(sso, "127.0.0.2")
    assert is_challenge(signed_in)
    assert _limit_alerts() == _plus(before, 1, 1)  # one event: the user and the admin address, once each
    assert is_saml_post(_code(sso, third, capped))
    assert _limit_alerts() == _plus(before, 1, 1)  # passing the challenge is not another event
    assert len(list(Device.query("ann"))) == 2  # the third device was not registered
    assert "idp_device" not in third.cookies


def test_the_device_beyond_the_limit_is_denied_when_the_policy_says_so(
    sso: Sso, capped: str, clock: FakeClock
) -> None:
    from idp_core.adaptive import policies

    current = policies.get_policy("office")
    policies.save_policy(policies.AdaptivePolicy(**{**current.__dict__, "on_exceed": "deny"}), create=False)
    _new_device_signs_in(sso)
    _new_device_signs_in(sso)
    before = _limit_alerts()
    _, refused = _sign_in(sso, "127.0.0.2")
    assert refused.status_code == 403
    assert _limit_alerts() == _plus(before, 1, 1)
    [event] = decisions("deny")
    assert event.details["reasons"] == "device-limit" and event.details["reference"] == reference_on(
        refused.text
    )


def test_ten_parallel_registrations_under_a_limit_of_three_leave_exactly_three(
    sso: Sso, clock: FakeClock
) -> None:
    from tests.support.parallel import outcomes_of_parallel

    add_user("ann", clock)
    user = User.get("ann")
    calls = [
        (lambda: devices.register(user, scope_at(clock, browser=Browser("127.0.0.2")), max_devices=3))
        for _ in range(10)
    ]
    outcomes = outcomes_of_parallel(calls, devices.DeviceLimitReached)
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 7
    assert len(list(Device.query("ann"))) == 3
    assert int(User.get("ann").device_count) == 3


def test_ten_parallel_launches_from_new_devices_under_a_limit_of_three_register_exactly_three(
    sso: Sso, clock: FakeClock
) -> None:
    """Every launch decides on the count it read; the losers of the race are refused by the
    transaction's condition and then get the policy's action for an exceeded limit."""
    import boto3

    from idp_core import sessions
    from idp_core.adaptive.enforce import AccessDenied
    from idp_core.launch import Issuer, LaunchTarget, launch_app
    from idp_core.saml.certificate import signing_identity
    from idp_core.scope import Browser, RequestScope
    from tests.support.parallel import outcomes_of_parallel

    add_user("ann", clock)
    give_policy(OPEN_APP, clock, register_devices=True, max_devices=3, on_exceed="deny")
    user = User.get("ann")
    session = sessions.start_session(
        sessions.NewSession("ann", factors={"password"}), RequestScope(sso.settings, clock=clock)
    ).session
    identity = signing_identity(boto3.client("kms"), sso.settings.signing_key_id, clock)

    def launch() -> object:
        return launch_app(
            user,
            session,
            LaunchTarget(OPEN_APP),
            RequestScope(
                sso.settings,
                browser=Browser(source_ip="127.0.0.2", user_agent="Mozilla/5.0 Firefox/128.0"),
                clock=clock,
            ),
            issuer=Issuer("https://idp.example/saml/metadata", lambda: identity),
        )

    outcomes = outcomes_of_parallel([launch] * 10, AccessDenied)
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 7
    assert len(list(Device.query("ann"))) == 3 and int(User.get("ann").device_count) == 3


# ---------------------------------------------------------------- behaviour change


def test_a_new_device_or_network_is_a_behaviour_change(sso: Sso, clock: FakeClock) -> None:
    add_user("ann", clock, email="ann@new.example")
    give_policy(OPEN_APP, clock, register_devices=True, on_new_device="challenge", notify_new_sign_in=True)
    secret = give_totp(sso, "ann")
    first, signed_in = _sign_in(sso, "127.0.0.2")  # the first device and network: nothing to compare
    assert is_saml_post(launch_from_login(sso, first, signed_in))
    assert not [m for m in emails_to("ann@new.example") if "New sign-in" in m.subject]

    second, signed_in = _sign_in(sso, "127.0.0.3")  # same /24, another browser
    assert is_challenge(signed_in)
    assert is_saml_post(_code(sso, second, secret))
    notices = [m for m in emails_to("ann@new.example") if "New sign-in" in m.subject]
    assert len(notices) == 1 and "new device" in notices[0].body and "127.0.0.3" in notices[0].body

    # The first browser, now from another /24: a new network, challenged as well.
    moved = browser_at("127.0.5.2")
    moved.cookies.update(first.cookies)
    moved.cookies.pop("idp_session", None)
    signed_in = sso.sign_in(moved, "ann", app=OPEN_APP)
    assert is_challenge(signed_in)
    [event] = [event for event in decisions() if event.source_ip == "127.0.5.2"]
    assert event.details["reasons"] == "new-network" and event.details["device"] == "known"


def test_an_unknown_app_policy_refuses_rather_than_letting_sign_ins_through(
    sso: Sso, clock: FakeClock
) -> None:
    from idp_core.models import App

    add_user("ann", clock)
    App.get(OPEN_APP).update(actions=[App.adaptive_policy.set("gone")])
    _, refused = _sign_in(sso, "127.0.0.2")
    assert refused.status_code == 403 and "does not exist" in refused.text


def test_an_app_without_a_policy_is_not_assessed(sso: Sso, clock: FakeClock) -> None:
    add_user("ann", clock)
    give_totp(sso, "ann")
    _, signed_in = _sign_in(sso, "127.0.0.2", app=MFA_APP)
    assert is_challenge(signed_in)
    assert decisions() == []
