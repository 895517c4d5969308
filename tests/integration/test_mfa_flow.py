"""The second factor in the sign-in flow, over HTTP through the local gateway (sso + otp)."""

from __future__ import annotations

import dataclasses

import pytest

from idp_core.clock import FakeClock
from idp_core.config import LockoutPolicy, Tables
from idp_core.mfa import policy
from idp_core.models import Factor, Session, User
from idp_core.sessions import hash_token
from tests.helpers.mfa import (
    MFA_APP,
    OPEN_APP,
    add_user,
    alert,
    code_in,
    directory,
    enrol_totp,
    is_challenge,
    location_path,
    location_query,
    path_of,
    secret_on,
    sign_in_with_totp,
    sms_to,
    submit_code,
    totp_code,
)
from tests.helpers.sso import Sso, csrf_token, running_sso

WRONG_CODE = "The verification code is not correct."


pytestmark = pytest.mark.sso_setup("two_apps")


def _enrolled(sso: Sso, username: str) -> str:
    """A user with an active authenticator app; returns its secret (the clock moves past its code)."""
    add_user(username, sso.clock, email=f"{username}@example.com")
    browser = sso.browser()
    sso.sign_in(browser, username)
    secret, answer = enrol_totp(sso, browser)
    assert answer.status_code == 303, answer.text[:500]
    sso.clock.advance(30)  # the enrolment code's time step is used up (S6)
    return secret


def test_password_and_authenticator_code_sign_in_to_an_app_that_requires_mfa(sso: Sso) -> None:
    secret = _enrolled(sso, "alice")
    browser = sso.browser()

    signed_in = sso.sign_in(browser, "alice", app=MFA_APP)
    # The answer to the password is the challenge itself, addressed as /mfa?app=... for reloads.
    assert is_challenge(signed_in)
    assert f'history.replaceState(null, "", "/mfa?app={MFA_APP}")' in signed_in.text
    assert "Verification code" in signed_in.text and ">Verify</button>" in signed_in.text
    # Half-way: the session reaches neither the dashboard nor the app (S14).
    assert location_path(sso.get(browser, "/me")) == "/mfa"
    assert location_path(sso.get(browser, f"/apps/{MFA_APP}/launch")) == "/mfa"
    half_way_cookie = browser.cookies.get("idp_session")

    reloaded = sso.get(browser, f"/mfa?app={MFA_APP}")
    assert "Verification code" in reloaded.text and ">Verify</button>" in reloaded.text
    verified = submit_code(sso, browser, f"/mfa?app={MFA_APP}", totp_code(secret, sso.clock))
    # The answer to the challenge is the signed SAMLResponse for the app (no extra round trip).
    assert verified.status_code == 200 and "SAMLResponse" in verified.text
    # A new session id after the second factor (S14), recording the method and the time.
    new_cookie = browser.cookies.get("idp_session")
    assert new_cookie and new_cookie != half_way_cookie
    with pytest.raises(Session.DoesNotExist):
        Session.get(hash_token(half_way_cookie or ""))
    session = Session.get(hash_token(new_cookie))
    assert "mfa:totp" in session.factors and not any(f.startswith("pending:") for f in session.factors)
    assert session.second_factor_at == sso.clock.now()
    # The launch link works with the new session too.
    launched = sso.get(browser, f"/apps/{MFA_APP}/launch")
    assert launched.status_code == 200 and "SAMLResponse" in launched.text


def test_a_replayed_authenticator_code_gets_the_wrong_code_message(sso: Sso) -> None:
    secret = _enrolled(sso, "bob")
    code = totp_code(secret, sso.clock)
    first = sso.browser()
    sso.sign_in(first, "bob", app=MFA_APP)
    assert "SAMLResponse" in submit_code(sso, first, f"/mfa?app={MFA_APP}", code).text

    second = sso.browser()
    sso.sign_in(second, "bob", app=MFA_APP)
    replayed = submit_code(sso, second, f"/mfa?app={MFA_APP}", code)
    assert replayed.status_code == 401
    assert alert(replayed.text) == WRONG_CODE


def test_a_password_only_session_steps_up_before_launching_an_app_that_requires_mfa(sso: Sso) -> None:
    secret = _enrolled(sso, "carol")
    browser = sso.browser()
    signed_in = sso.sign_in(browser, "carol", app=OPEN_APP)
    assert "SAMLResponse" in signed_in.text  # the app asks for no second factor

    step_up = sso.get(browser, f"/apps/{MFA_APP}/launch")
    assert step_up.status_code == 303
    assert location_path(step_up) == "/mfa" and location_query(step_up)["app"] == [MFA_APP]
    verified = submit_code(sso, browser, path_of(step_up), totp_code(secret, sso.clock))
    assert verified.status_code == 200 and "SAMLResponse" in verified.text


def test_the_step_up_offers_only_the_methods_the_app_accepts(sso: Sso) -> None:
    _enrolled(sso, "dave")
    policy.set_app_policy(MFA_APP, methods=["sms"], context=None, clock=sso.clock)
    browser = sso.browser()
    sso.sign_in(browser, "dave")  # at /login: password only
    refused = sso.get(browser, f"/apps/{MFA_APP}/launch")
    assert refused.status_code == 403
    assert "Text message (SMS)" in refused.text
    assert "SAMLResponse" not in refused.text


def test_a_user_who_must_enrol_reaches_no_other_page_before_enrolling(sso: Sso) -> None:
    settings = policy.load_settings()
    policy.save_settings(dataclasses.replace(settings, enrol_at_sign_in=True), context=None, clock=sso.clock)
    add_user("erin", sso.clock, admin=True)
    browser = sso.browser()
    signed_in = sso.sign_in(browser, "erin")
    assert location_path(signed_in) == "/me/mfa"

    for path in [
        "/me",
        f"/apps/{MFA_APP}/launch",
        f"/apps/{OPEN_APP}/launch",
        "/admin",
        "/admin/users",
        "/admin/apps",
        "/admin/audit",
        "/admin/mfa",
        f"/admin/mfa/apps/{MFA_APP}",
        "/mfa",
        "/me/mfa/test",
        "/",
    ]:
        answer = sso.get(browser, path)
        assert answer.status_code in (303, 403), (path, answer.status_code)
        if answer.status_code == 303:
            assert location_path(answer) in ("/me/mfa", "/login"), (path, answer.headers["Location"])
        assert "SAMLResponse" not in answer.text
    token = csrf_token(sso.get(browser, "/me/mfa").text)
    for path in ["/admin/users", "/admin/mfa", f"/admin/mfa/apps/{MFA_APP}", "/mfa/verify", "/mfa/send"]:
        answer = sso.post(browser, path, {"csrf_token": token, "username": "x", "code": "123456"})
        assert answer.status_code in (303, 403), (path, answer.status_code)
        if answer.status_code == 303:
            assert location_path(answer) in ("/me/mfa", "/login"), (path, answer.headers["Location"])
    assert policy.load_settings().enrol_at_sign_in is True  # nothing changed by the posts

    _, enrolled = enrol_totp(sso, browser)
    assert enrolled.status_code == 303
    assert sso.get(browser, "/me").status_code == 200


def test_a_code_sent_by_sms_signs_in_and_a_code_from_another_transaction_fails(sso: Sso) -> None:
    secret = _enrolled(sso, "frank")
    phone = "+447400123456"
    # Add the phone: the change needs the current factor first (S10), then the phone's own code.
    browser = sign_in_with_totp(sso, "frank", secret)
    page = sso.get(browser, "/me/mfa/sms/new")
    added = sso.post(
        browser, "/me/mfa/sms", {"csrf_token": csrf_token(page.text), "phone": "+44 7400 123456"}
    )
    assert added.status_code == 303, alert(added.text)
    confirm = sso.get(browser, path_of(added))
    confirmed = sso.post(
        browser,
        location_path(added),
        {"csrf_token": csrf_token(confirm.text), "code": code_in(sms_to(phone)[-1])},
    )
    assert confirmed.status_code == 303 and location_query(confirmed)["notice"] == ["added"]
    sms_factor = next(f for f in Factor.query("frank") if f.kind == "sms")
    assert sms_factor.status == "active"

    def start(browser_: object) -> str:
        sso.sign_in(browser_, "frank", app=MFA_APP)  # type: ignore[arg-type]
        page_ = sso.get(browser_, f"/mfa?app={MFA_APP}&factor={sms_factor.factor_id}")  # type: ignore[arg-type]
        assert ">Send code</button>" in page_.text
        sent = sso.post(
            browser_,  # type: ignore[arg-type]
            "/mfa/send",
            {"csrf_token": csrf_token(page_.text), "factor": sms_factor.factor_id, "app": MFA_APP},
        )
        assert sent.status_code == 303, sent.text[:500]
        return path_of(sent)

    browser_a, browser_b = sso.browser(), sso.browser()
    path_a = start(browser_a)
    code_a = code_in(sms_to(phone)[-1])
    path_b = start(browser_b)
    code_b = code_in(sms_to(phone)[-1])
    assert code_a != code_b  # two random 6-digit codes: equal once in a million runs

    cross = submit_code(sso, browser_b, path_b, code_a)
    assert cross.status_code == 401 and alert(cross.text) == WRONG_CODE
    verified = submit_code(sso, browser_a, path_a, code_a)
    assert verified.status_code == 200 and "SAMLResponse" in verified.text


def test_wrong_codes_across_factors_lock_the_account_and_then_even_a_right_code_fails(
    tables: Tables, clock: FakeClock
) -> None:
    directory(clock)
    with running_sso(tables, clock, lockout=LockoutPolicy(max_failures=100, failure_factor=10)) as sso:
        secret = _enrolled(sso, "gina")
        browser = sign_in_with_totp(sso, "gina", secret)
        backup_page = sso.get(browser, "/me/mfa")
        generated = sso.post(browser, "/me/mfa/backup", {"csrf_token": csrf_token(backup_page.text)})
        assert generated.status_code == 200
        backup = next(f for f in Factor.query("gina") if f.kind == "backup")
        totp = next(f for f in Factor.query("gina") if f.kind == "totp")

        attacker = sso.browser()
        sso.sign_in(attacker, "gina", app=MFA_APP)
        token = csrf_token(sso.get(attacker, f"/mfa?app={MFA_APP}").text)
        attempt = 0
        while attempt < 100:
            factor = totp if attempt % 2 else backup
            wrong = "000000" if factor is totp else "wrong-backup-code"
            answer = sso.post(
                attacker,
                "/mfa/verify",
                {"csrf_token": token, "factor": factor.factor_id, "code": wrong, "app": MFA_APP},
            )
            if answer.status_code == 403:  # A temporary lock: nothing was checked or counted.
                clock.advance(16 * 60)  # past the temporary lockout (at most 15 minutes)
                continue
            assert answer.status_code == 401, answer.text[:300]
            attempt += 1
        user = User.get("gina")
        assert user.locked is True
        assert user.fail_totp + user.fail_backup == 100

        clock.advance(31)
        right = sso.post(
            attacker,
            "/mfa/verify",
            {"csrf_token": token, "factor": totp.factor_id, "code": totp_code(secret, clock), "app": MFA_APP},
        )
        assert right.status_code == 403
        assert "locked" in alert(right.text)
        assert location_path(sso.get(attacker, "/me")) == "/mfa"  # still half-way


def test_changing_the_phone_needs_the_current_second_factor(sso: Sso) -> None:
    _enrolled(sso, "hank")
    sso.clock.advance(11 * 60)  # the enrolment's proof is no longer fresh (S10)
    browser = sso.browser()
    sso.sign_in(browser, "hank")  # password only
    page = sso.get(browser, "/me/mfa/sms/new")
    assert page.status_code == 200
    refused = sso.post(
        browser, "/me/mfa/sms", {"csrf_token": csrf_token(page.text), "phone": "+447400123457"}
    )
    assert refused.status_code == 303
    assert location_path(refused) == "/mfa" and location_query(refused)["next"] == ["/me/mfa"]
    assert [f.kind for f in Factor.query("hank")] == ["totp"]
    assert sms_to("+447400123457") == []


def test_removing_a_factor_ends_the_users_other_sessions(sso: Sso) -> None:
    secret = _enrolled(sso, "ivy")
    other = sign_in_with_totp(sso, "ivy", secret, app=MFA_APP)
    sso.clock.advance(30)
    browser = sign_in_with_totp(sso, "ivy", secret, app=MFA_APP)
    assert sso.get(other, "/me").status_code == 200

    page = sso.get(browser, "/me/mfa")
    totp = next(f for f in Factor.query("ivy") if f.kind == "totp")
    removed = sso.post(
        browser, f"/me/mfa/factors/{totp.factor_id}/remove", {"csrf_token": csrf_token(page.text)}
    )
    assert removed.status_code == 303 and location_query(removed)["notice"] == ["removed"]
    assert list(Factor.query("ivy")) == []
    assert location_path(sso.get(other, "/me")) == "/login"
    assert sso.get(browser, "/me").status_code == 200


def test_an_unconfirmed_authenticator_app_cannot_be_used_at_the_challenge(sso: Sso) -> None:
    secret = _enrolled(sso, "jack")
    browser = sign_in_with_totp(sso, "jack", secret)
    page = sso.get(browser, "/me/mfa")
    started = sso.post(browser, "/me/mfa/totp", {"csrf_token": csrf_token(page.text)})
    assert started.status_code == 303
    pending = next(f for f in Factor.query("jack") if f.status == "pending")
    pending_secret = secret_on(sso.get(browser, path_of(started)).text)

    attacker = sso.browser()
    sso.sign_in(attacker, "jack", app=MFA_APP)
    challenge = sso.get(attacker, f"/mfa?app={MFA_APP}")
    assert pending.factor_id not in challenge.text
    answer = sso.post(
        attacker,
        "/mfa/verify",
        {
            "csrf_token": csrf_token(challenge.text),
            "factor": pending.factor_id,
            "code": totp_code(pending_secret, sso.clock),
            "app": MFA_APP,
        },
    )
    assert answer.status_code == 400
    assert User.get("jack").fail_totp == 0  # refused before anything was written
    assert location_path(sso.get(attacker, "/me")) == "/mfa"  # still half-way
    assert Factor.get("jack", pending.factor_id).status == "pending"
