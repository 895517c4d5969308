"""Signing in with a passkey instead of a password (issue 15 point 1): a passkey that verifies
its user stands for the password and, for an app that accepts security keys, for the second
factor; the guards of the password hold (S1-S3, S24, S28, S29)."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from idp_core import account_deletion, audit, sessions
from idp_core.mfa import factors, policy
from idp_core.models import Session, User, WebAuthnCredential
from tests.helpers.mfa import MFA_APP, OPEN_APP, add_user, give_totp, is_challenge
from tests.helpers.security_keys import (
    answer_with_key,
    passkey_options,
    register_key,
    sign_in_with_passkey,
    soft_key_for,
)
from tests.helpers.soft_key import SoftKey
from tests.helpers.sso import Sso

pytestmark = pytest.mark.sso_setup("two_apps")


def _passkey(sso: Sso, name: str = "alice", **knobs: object) -> SoftKey:
    """A user who registered a passkey as their first factor, then signed out."""
    add_user(name, sso.clock)
    browser = sso.browser()
    assert sso.sign_in(browser, name).status_code == 303
    key = soft_key_for(sso, **knobs)
    assert register_key(sso, browser, key, label="Laptop").status_code == 303
    return key


def _session_of(browser: requests.Session) -> Session:
    token = browser.cookies.get(sessions.LOCAL_COOKIE_NAME)
    assert token
    return Session.get(sessions.hash_token(token))


def test_a_passkey_signs_in_to_an_app_without_password_or_code(sso: Sso) -> None:
    key = _passkey(sso)
    browser = sso.browser()
    answer = sign_in_with_passkey(sso, browser, key, app=MFA_APP)
    assert answer.status_code == 200 and "SAMLResponse" in answer.text, answer.text[:800]
    session = _session_of(browser)
    assert session.factors == {"passkey", "mfa:webauthn"} and session.second_factor_at is not None
    [event] = [e for e in audit.recent(clock=sso.clock) if e.type == audit.EventType.WEBAUTHN_PASSKEY_SIGN_IN]
    assert event.subject == "alice" and event.outcome == "success"


def test_a_passkey_signs_in_to_the_users_page(sso: Sso) -> None:
    key = _passkey(sso)
    browser = sso.browser()
    answer = sign_in_with_passkey(sso, browser, key)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/me")
    assert sso.get(browser, "/me").status_code == 200


def test_an_app_that_does_not_accept_security_keys_still_asks_for_its_own_factor(sso: Sso) -> None:
    key = _passkey(sso)
    give_totp(sso, "alice")
    policy.set_app_policy(MFA_APP, methods=["totp"], clock=sso.clock)
    browser = sso.browser()
    answer = sign_in_with_passkey(sso, browser, key, app=MFA_APP)
    assert is_challenge(answer) and "Authenticator app" in answer.text
    assert "pending:mfa" in (_session_of(browser).factors or set())


def test_attack_a_passkey_that_did_not_verify_its_user_is_only_a_second_factor(sso: Sso) -> None:
    key = _passkey(sso, user_verifies=False)
    refused = sign_in_with_passkey(sso, sso.browser(), key, app=OPEN_APP)
    assert refused.status_code == 401 and "cannot replace your password" in refused.text
    # After the password it is a second factor like any key.
    browser = sso.browser()
    assert is_challenge(sso.sign_in(browser, "alice", app=MFA_APP))
    assert answer_with_key(sso, browser, key).status_code == 200


def test_attack_an_unknown_passkey_is_refused_without_a_record(sso: Sso) -> None:
    add_user("alice", sso.clock)
    stranger = soft_key_for(sso)
    stranger.user_handle = b"whoever"
    refused = sign_in_with_passkey(sso, sso.browser(), stranger)
    assert refused.status_code == 401 and "did not sign you in" in refused.text


@pytest.mark.parametrize("removal", ["reset-mfa", "delete"])
def test_attack_a_passkey_outlives_neither_a_factor_reset_nor_a_deletion(sso: Sso, removal: str) -> None:
    # alice's laptop with her passkey was stolen; an admin resets her factors (or deletes her,
    # and someone later gets the name alice).
    key = _passkey(sso)
    if removal == "reset-mfa":
        account_deletion.reset_second_factors("alice", clock=sso.clock)
    else:
        account_deletion.delete_user("alice", clock=sso.clock)
        add_user("alice", sso.clock)
    assert list(WebAuthnCredential.scan()) == []
    refused = sign_in_with_passkey(sso, sso.browser(), key)
    assert refused.status_code == 401 and "did not sign you in" in refused.text


def test_attack_a_replayed_passkey_answer_is_refused(sso: Sso) -> None:
    key = _passkey(sso)
    browser = sso.browser()
    token, options = passkey_options(sso, browser)
    answer = key.get(options)
    assert sso.post(browser, "/login/passkey", {"csrf_token": token, "credential": answer}).status_code == 303
    again = sso.browser()
    token, _ = passkey_options(sso, again)
    replayed = sso.post(again, "/login/passkey", {"csrf_token": token, "credential": answer})
    assert replayed.status_code == 401


def test_attack_one_passkey_answer_sent_twice_at_once_signs_in_once(sso: Sso) -> None:
    # The same answer from two connections of one browser at the same moment: the challenge is
    # used up in the transaction that starts the session, so only one of them gets one.
    key = _passkey(sso)
    browser = sso.browser()
    token, options = passkey_options(sso, browser)
    answer = key.get(options)
    twins = [sso.browser() for _ in range(2)]
    for twin in twins:
        twin.cookies.update(browser.cookies)
    sessions_before = len(list(Session.scan()))
    start = threading.Barrier(2, timeout=10)
    statuses: list[int] = []

    def send(twin: requests.Session) -> None:
        start.wait()
        statuses.append(
            sso.post(twin, "/login/passkey", {"csrf_token": token, "credential": answer}).status_code
        )

    threads = [threading.Thread(target=send, args=(twin,)) for twin in twins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [303, 401]
    assert len(list(Session.scan())) == sessions_before + 1


def test_attack_a_challenge_fetched_by_another_browser_is_refused(sso: Sso) -> None:
    key = _passkey(sso)
    victim, attacker = sso.browser(), sso.browser()
    _, victims_options = passkey_options(sso, victim)
    token, _ = passkey_options(sso, attacker)
    relayed = sso.post(
        attacker, "/login/passkey", {"csrf_token": token, "credential": key.get(victims_options)}
    )
    assert relayed.status_code == 401


def test_attack_a_passkey_answer_naming_another_factor_is_refused(sso: Sso) -> None:
    key = _passkey(sso)
    key.user_handle = b"another-factor-id"
    refused = sign_in_with_passkey(sso, sso.browser(), key)
    assert refused.status_code == 401


def test_attack_a_passkey_answer_from_another_origin_is_refused(sso: Sso) -> None:
    key = _passkey(sso)
    key.origin = "https://login.example.evil"
    assert sign_in_with_passkey(sso, sso.browser(), key).status_code == 401


def test_attack_a_locked_account_is_refused_before_the_passkey_is_judged(sso: Sso) -> None:
    key = _passkey(sso)
    User("alice").update(actions=[User.locked.set(True)])
    before = key.sign_count
    refused = sign_in_with_passkey(sso, sso.browser(), key)
    assert refused.status_code in (401, 403) and "SAMLResponse" not in refused.text
    # The key's counter on the server did not move: the answer was never judged (S1, S29).
    assert key.sign_count == before + 1
    assert int(factors.list_factors("alice")[0].sign_count) == 0


def test_bad_passkey_answers_get_a_sentence(sso: Sso) -> None:
    _passkey(sso)
    browser = sso.browser()
    token, options = passkey_options(sso, browser)
    refused = sso.post(browser, "/login/passkey", {"csrf_token": token, "credential": json.dumps({"id": 1})})
    assert refused.status_code == 400 and "not an answer from a security key" in refused.text
    assert "challenge" in json.loads(options)
