"""A second factor counts only where its method is allowed, and changes need the strongest
tier the user has (S28), through the pages over HTTP against moto.

The attack these tests replay: with the user's password and access to their mailbox (or
phone), an attacker proved an e-mailed code, added an authenticator app of their own with
it and launched an app that accepts only authenticator apps.
"""

from __future__ import annotations

import pytest
import requests

from idp_core import apps
from idp_core.clock import FakeClock
from idp_core.mfa import factors, flow, policy
from idp_core.models import Factor, User
from tests.helpers.mfa import (
    ACCOUNT,
    MFA_APP,
    add_user,
    alert,
    code_in,
    emails_to,
    give_totp,
    location_path,
    location_query,
    sms_to,
    totp_code,
)
from tests.helpers.sso import Sso, csrf_token

TOTP_ONLY = "aws-totp-only"
ADDRESS = "alice@corp.example"
NUMBER = "+12015550123"


pytestmark = pytest.mark.sso_setup("two_apps")


@pytest.fixture
def sso(sso: Sso) -> Sso:
    """With an app besides the two that accepts only an authenticator app."""
    apps.create_aws_app(
        TOTP_ONLY, apps.AwsAppChoices(account_id=ACCOUNT, roles=[("Admin", "engineers")]), clock=sso.clock
    )
    policy.set_app_policy(TOTP_ONLY, methods=["totp"], clock=sso.clock)
    return sso


def give_contact(sso: Sso, username: str, kind: str) -> Factor:
    """An active SMS or e-mail factor, as if confirmed earlier."""
    factor = flow.start_contact_factor(username, kind, NUMBER if kind == "sms" else ADDRESS, clock=sso.clock)
    factors.activate_factor(factor, sso.clock)
    return factor


def messages(kind: str) -> list[str]:
    if kind == "sms":
        return sms_to(NUMBER)
    return [str(message.body) for message in emails_to(ADDRESS)]


def prove_sent_code(sso: Sso, browser: requests.Session, factor: Factor, app: str) -> requests.Response:
    """Ask for a code for ``factor`` on the challenge of ``app`` and answer it."""
    page = sso.get(browser, f"/mfa?app={app}&factor={factor.factor_id}")
    assert page.status_code == 200, page.text[:300]
    before = len(messages(factor.kind))
    sent = sso.post(
        browser, "/mfa/send", {"csrf_token": csrf_token(page.text), "factor": factor.factor_id, "app": app}
    )
    assert sent.status_code == 303, sent.text[:300]
    code = code_in(messages(factor.kind)[before])
    page = sso.get(browser, f"/mfa?app={app}&factor={factor.factor_id}&sent=1")
    return sso.post(
        browser,
        "/mfa/verify",
        {"csrf_token": csrf_token(page.text), "factor": factor.factor_id, "code": code, "app": app},
    )


def offered(page: str, factor: Factor) -> bool:
    return f'value="{factor.factor_id}"' in page


@pytest.mark.parametrize("kind", ["email", "sms"])
def test_attack_a_restricted_code_neither_adds_an_authenticator_nor_opens_a_totp_only_app(
    sso: Sso, clock: FakeClock, kind: str
) -> None:
    add_user("alice", clock, email=ADDRESS)
    give_totp(sso, "alice")
    restricted = give_contact(sso, "alice", kind)
    attacker = sso.browser()
    assert location_path(sso.sign_in(attacker, "alice")) == "/me"  # a password-only session

    # Without an app, the challenge offers only the strongest tier the user has...
    page = sso.get(attacker, "/mfa?next=/me")
    assert page.status_code == 200 and not offered(page.text, restricted)
    # ...and a restricted factor posted there anyway is refused like a wrong code (and counted).
    refused = sso.post(
        attacker,
        "/mfa/verify",
        {
            "csrf_token": csrf_token(page.text),
            "factor": restricted.factor_id,
            "code": "123456",
            "next": "/me",
        },
    )
    assert refused.status_code == 401, alert(refused.text)
    assert alert(refused.text) == "The verification code is not correct."
    assert int(getattr(User.get("alice"), f"fail_{kind}")) == 1

    # An app that accepts the restricted method lets the code through, for that app only.
    launched = prove_sent_code(sso, attacker, restricted, MFA_APP)
    assert launched.status_code == 200 and "SAMLResponse" in launched.text

    # That proof does not authorise adding an authenticator app: step up with the strongest tier.
    page = sso.get(attacker, "/me/mfa")
    added = sso.post(attacker, "/me/mfa/totp", {"csrf_token": csrf_token(page.text)})
    assert (location_path(added), location_query(added)) == ("/mfa", {"next": ["/me/mfa"]})
    assert [f.kind for f in Factor.query("alice") if f.status == "pending"] == []

    # Nor does it open the app that accepts only authenticator apps.
    launch = sso.get(attacker, f"/apps/{TOTP_ONLY}/launch")
    assert location_path(launch) == "/mfa"
    challenge = sso.get(attacker, f"/mfa?app={TOTP_ONLY}")
    assert not offered(challenge.text, restricted)
    forced = sso.post(
        attacker,
        "/mfa/verify",
        {
            "csrf_token": csrf_token(challenge.text),
            "factor": restricted.factor_id,
            "code": "123456",
            "app": TOTP_ONLY,
        },
    )
    assert forced.status_code == 401 and "SAMLResponse" not in forced.text


def test_attack_a_method_the_admin_no_longer_allows_completes_no_sign_in(sso: Sso, clock: FakeClock) -> None:
    add_user("alice", clock, email=ADDRESS)
    give_totp(sso, "alice")
    mail = give_contact(sso, "alice", "email")
    browser = sso.browser()
    sso.sign_in(browser, "alice", app=MFA_APP)
    page = sso.get(browser, f"/mfa?app={MFA_APP}&factor={mail.factor_id}")
    sent = sso.post(
        browser, "/mfa/send", {"csrf_token": csrf_token(page.text), "factor": mail.factor_id, "app": MFA_APP}
    )
    assert sent.status_code == 303
    code = code_in(messages("email")[-1])

    # The admin removes e-mail from the allowed methods while the code is on its way.
    policy.save_settings(policy.MfaSettings(allowed_methods=("totp", "backup")), clock=clock)
    answer = sso.post(
        browser,
        "/mfa/verify",
        {"csrf_token": csrf_token(page.text), "factor": mail.factor_id, "code": code, "app": MFA_APP},
    )
    assert answer.status_code == 401 and "SAMLResponse" not in answer.text
    assert location_path(sso.get(browser, "/me")) == "/mfa"  # still half-way


def test_a_backup_code_recovers_a_user_who_lost_their_authenticator(sso: Sso, clock: FakeClock) -> None:
    """Backup codes are in the authenticator tier: they prove enough to enrol a new app."""
    from idp_core.mfa import backup_codes

    add_user("alice", clock, email=ADDRESS)
    give_totp(sso, "alice", label="Lost phone")
    give_contact(sso, "alice", "email")
    codes = backup_codes.generate("alice", clock=clock)
    browser = sso.browser()
    sso.sign_in(browser, "alice")
    page = sso.get(browser, "/me/mfa")
    assert location_path(sso.post(browser, "/me/mfa/totp", {"csrf_token": csrf_token(page.text)})) == "/mfa"

    challenge = sso.get(browser, "/mfa?next=/me/mfa&factor=backup")
    assert challenge.status_code == 200
    proven = sso.post(
        browser,
        "/mfa/verify",
        {"csrf_token": csrf_token(challenge.text), "factor": "backup", "code": codes[0], "next": "/me/mfa"},
    )
    assert (proven.status_code, location_path(proven)) == (303, "/me/mfa")
    page = sso.get(browser, "/me/mfa")
    started = sso.post(browser, "/me/mfa/totp", {"csrf_token": csrf_token(page.text)})
    assert started.status_code == 303 and "/confirm" in started.headers["Location"]


@pytest.mark.parametrize("page", ["/me/password", "/me/devices", "/admin"])
def test_attack_sensitive_pages_need_a_fresh_factor_of_the_strongest_tier(
    sso: Sso, clock: FakeClock, page: str
) -> None:
    add_user("alice", clock, email=ADDRESS, admin=True)
    secret = give_totp(sso, "alice")
    mail = give_contact(sso, "alice", "email")
    browser = sso.browser()
    sso.sign_in(browser, "alice")
    # A fresh e-mailed code (for an app that accepts it) is not enough...
    assert prove_sent_code(sso, browser, mail, MFA_APP).status_code == 200
    asked = sso.get(browser, page)
    assert (location_path(asked), location_query(asked)) == ("/mfa", {"next": [page]})
    # ...an authenticator code is.
    challenge = sso.get(browser, f"/mfa?next={page}")
    totp = next(f for f in Factor.query("alice") if f.kind == "totp")
    proven = sso.post(
        browser,
        "/mfa/verify",
        {
            "csrf_token": csrf_token(challenge.text),
            "factor": totp.factor_id,
            "code": totp_code(secret, clock),
            "next": page,
        },
    )
    assert location_path(proven) == page
    assert sso.get(browser, page).status_code == 200
    # And it goes stale: ten minutes later the change pages ask again.
    clock.advance(16 * 60)
    assert location_path(sso.get(browser, page)) == "/mfa"


def test_a_user_whose_strongest_factor_is_restricted_steps_up_with_it(sso: Sso, clock: FakeClock) -> None:
    add_user("alice", clock, email=ADDRESS)
    mail = give_contact(sso, "alice", "email")
    browser = sso.browser()
    sso.sign_in(browser, "alice")
    challenge = sso.get(browser, "/mfa?next=/me/password")
    assert offered(challenge.text, mail)
    assert prove_sent_code(sso, browser, mail, MFA_APP).status_code == 200
    assert sso.get(browser, "/me/password").status_code == 200
