"""Shared steps for the MFA integration tests: a directory with apps, enrolment through the
pages, codes from the authenticator's secret or from moto's SNS/SES, and reading pages."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pyotp
import requests

from idp_core import accounts, apps
from idp_core.clock import FakeClock
from idp_core.mfa import factors, policy, totp
from idp_core.models import Factor
from tests.helpers.sso import PASSWORD, Sso, csrf_token

ACCOUNT = "123456789012"
MFA_APP = "aws-secure"
OPEN_APP = "aws-open"
_SECRET = re.compile(r'id="totp-secret"[^>]*>([A-Z2-7=]+)<')
_FACTOR_FIELD = re.compile(r'name="factor" value="([^"]+)"')
_ALERT = re.compile(r'role="alert">([^<]+)<')


def directory(clock: FakeClock) -> None:
    """A group, an app that requires MFA (the default) and one that does not."""
    accounts.create_group("engineers", clock=clock)
    apps.create_aws_app(
        MFA_APP, apps.AwsAppChoices(account_id=ACCOUNT, roles=[("Engineer", "engineers")]), clock=clock
    )
    apps.create_aws_app(
        OPEN_APP, apps.AwsAppChoices(account_id=ACCOUNT, roles=[("Reader", "engineers")]), clock=clock
    )
    policy.set_app_policy(OPEN_APP, mfa_required=False, context=None, clock=clock)


def password_only(clock: FakeClock) -> None:
    """MFA settings for tests of the password step alone: a user without a factor is not made
    to enrol (apps those tests create pass ``mfa_required=False``)."""
    policy.save_settings(policy.MfaSettings(enrol_at_sign_in=False), clock=clock)


def give_totp(sso: Sso, username: str, label: str = "Phone") -> str:
    """An active authenticator app for ``username``, as if enrolled earlier; returns its secret."""
    kms = boto3.client("kms")
    enrolment = totp.start_enrolment(
        username, label, kms=kms, key_id=sso.settings.require_data_key(), issuer="Tests", clock=sso.clock
    )
    factors.activate_factor(enrolment.factor, sso.clock)
    return enrolment.secret_base32


def prove_second_factor(sso: Sso, browser: requests.Session, secret: str, next_page: str = "/admin") -> None:
    """Step up a signed-in session with the authenticator's current code (S10)."""
    mfa_path = "/mfa?" + urlencode({"next": next_page})
    verified = submit_code(sso, browser, mfa_path, totp_code(secret, sso.clock))
    assert verified.status_code == 303, verified.text[:500]


def add_user(name: str, clock: FakeClock, *, email: str | None = None, admin: bool = False) -> None:
    accounts.create_user(
        accounts.NewUser(name, password=PASSWORD, email=email, groups=["engineers"], is_admin=admin),
        clock=clock,
    )


def path_of(response: requests.Response) -> str:
    """The Location of a redirect, as a path of the site (the gateway's URL is the base)."""
    location = response.headers["Location"]
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def location_path(response: requests.Response) -> str:
    return urlsplit(response.headers["Location"]).path


def location_query(response: requests.Response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response.headers["Location"]).query)


def alert(page: str) -> str:
    match = _ALERT.search(page)
    assert match, "the page shows no alert"
    return match.group(1).strip()


def secret_on(page: str) -> str:
    """The authenticator secret shown as text on a set-up page."""
    match = _SECRET.search(page)
    assert match, "the set-up page shows no secret"
    return match.group(1)


def totp_code(secret: str, clock: FakeClock) -> str:
    return str(pyotp.TOTP(secret).at(clock.now()))


def enrol_totp(sso: Sso, browser: requests.Session, query: str = "") -> tuple[str, requests.Response]:
    """Add an authenticator app on /me/mfa with its first code; returns the secret and the answer."""
    page = sso.get(browser, "/me/mfa" + query)
    assert page.status_code == 200, page.text[:500]
    started = sso.post(browser, "/me/mfa/totp", {"csrf_token": csrf_token(page.text), **_target(query)})
    assert started.status_code == 303, started.text[:500]
    confirm_path = path_of(started)
    setup = sso.get(browser, confirm_path)
    assert setup.status_code == 200, setup.text[:500]
    secret = secret_on(setup.text)
    answer = sso.post(
        browser,
        urlsplit(confirm_path).path,
        {"csrf_token": csrf_token(setup.text), "code": totp_code(secret, sso.clock), **_target(query)},
    )
    return secret, answer


def _target(query: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(query.lstrip("?")).items()}


def submit_code(sso: Sso, browser: requests.Session, mfa_path: str, code: str) -> requests.Response:
    """Answer the challenge page at ``mfa_path`` (e.g. '/mfa?app=x') with ``code``."""
    page = sso.get(browser, mfa_path)
    assert page.status_code == 200, page.text[:500]
    factor = _FACTOR_FIELD.search(page.text)
    assert factor, "the challenge page offers no method"
    return sso.post(
        browser,
        "/mfa/verify",
        {
            "csrf_token": csrf_token(page.text),
            "factor": factor.group(1),
            "code": code,
            **_target(urlsplit(mfa_path).query),
        },
    )


def sign_in_with_totp(sso: Sso, username: str, secret: str, app: str = MFA_APP) -> requests.Session:
    """Password then authenticator code for ``app``; returns the browser, signed in."""
    browser = sso.browser()
    signed_in = sso.sign_in(browser, username, app=app)
    assert is_challenge(signed_in), (signed_in.status_code, signed_in.text[:500])
    verified = submit_code(sso, browser, f"/mfa?app={app}", totp_code(secret, sso.clock))
    # For an app the answer to the code is the SAMLResponse itself.
    assert verified.status_code == 200 and "SAMLResponse" in verified.text, verified.text[:500]
    assert sso.get(browser, "/me").status_code == 200
    return browser


def is_challenge(response: requests.Response) -> bool:
    """The answer to the password is the second-factor challenge page, addressed as /mfa."""
    return (
        response.status_code == 200
        and ">Confirm it is you</h1>" in response.text
        and 'history.replaceState(null, "", "/mfa?' in response.text
    )


def sms_to(number: str) -> list[str]:
    """The texts moto's SNS accepted for ``number``, oldest first (moto's backends are process-wide)."""
    from moto.sns.models import sns_backends

    return [
        text
        for regions in list(sns_backends.values())
        for backend in list(regions.values())
        for phone, text in list(backend.sms_messages.values())
        if phone == number
    ]


def emails_to(address: str) -> list[Any]:
    """The e-mails moto's SES accepted for ``address``, oldest first."""
    from moto.ses.models import ses_backends

    return [
        message
        for regions in list(ses_backends.values())
        for backend in list(regions.values())
        for message in list(backend.sent_messages)
        if address in (getattr(message, "destinations", None) or {}).get("ToAddresses", [])
    ]


def code_in(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, f"no code in {text!r}"
    return match.group(1)


def make_factor(username: str, kind: str, clock: FakeClock, **fields: object) -> Factor:
    """An active factor of ``kind`` stored as it is, without any enrolment."""
    factor = Factor(
        username=username,
        factor_id=secrets.token_hex(8),
        kind=kind,
        label=kind,
        status="active",
        created_at=clock.now(),
        **fields,
    )
    factor.save()
    return factor


def signed_in_admin(sso: Sso, username: str = "root") -> requests.Session:
    """An administrator already stored, signed in and stepped up with an authenticator app:
    the console wants both."""
    secret = give_totp(sso, username)
    browser = sso.browser()
    assert sso.sign_in(browser, username).status_code == 303
    prove_second_factor(sso, browser, secret)
    return browser


def settings_form(page: str, **overrides: str) -> dict[str, str]:
    """The console's 2FA options form as an admin fills it in, with ``overrides`` ("": left out)."""
    form = {
        "csrf_token": csrf_token(page),
        "default_method": "totp",
        "allowed_totp": "on",
        "allowed_sms": "on",
        "allowed_email": "on",
        "allowed_backup": "on",
        "enrol_at_sign_in": "on",
        "per_user_per_hour": "5",
        "per_number_per_day": "10",
        "per_ip_per_hour": "20",
        "account_per_day": "1000",
        "first_resend_wait_seconds": "30",
        "allowed_countries": "US, GB, DE",
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value != ""}
