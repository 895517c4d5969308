"""Security keys and passkeys (issue 15 point 1, S24, S28) over HTTP through the functions,
with a software ES256 key whose answers py_webauthn checks as it would a browser's: register
on /me/mfa, sign in with the key as the second factor, and the abuses an attacker tries."""

from __future__ import annotations

import json

import pytest
import requests

from idp_core import audit
from idp_core.clock import FakeClock
from idp_core.mfa import factors, policy
from idp_core.mfa.webauthn import CHALLENGE_SECONDS
from idp_core.models import Factor, Transaction, User, WebAuthnCredential
from tests.helpers.mfa import MFA_APP, add_user, give_totp, is_challenge, totp_code
from tests.helpers.security_keys import (
    answer_with_key,
    key_challenge,
    key_options,
    register_key,
    soft_key_for,
)
from tests.helpers.soft_key import SoftKey
from tests.helpers.sso import Sso, csrf_token

pytestmark = pytest.mark.sso_setup("two_apps")


def _keys(username: str) -> list[Factor]:
    return [f for f in factors.list_factors(username) if f.kind == "webauthn"]


def _with_key(sso: Sso, name: str = "alice") -> tuple[requests.Session, SoftKey]:
    """A user who signed in and registered a key as their first factor (enrolment)."""
    add_user(name, sso.clock)
    browser = sso.browser()
    assert sso.sign_in(browser, name).status_code == 303
    key = soft_key_for(sso)
    registered = register_key(sso, browser, key)
    assert registered.status_code == 303, registered.text[:800]
    return browser, key


def _signed_in_for_app(sso: Sso, name: str = "alice") -> requests.Session:
    browser = sso.browser()
    assert is_challenge(sso.sign_in(browser, name, app=MFA_APP))
    return browser


def test_a_registered_key_is_stored_with_its_model_counter_and_owner(sso: Sso) -> None:
    _with_key(sso)
    [key] = _keys("alice")
    assert (key.status, key.label, key.aaguid, key.sign_count) == (
        "active",
        "YubiKey",
        "00000000-0000-0000-0000-000000000000",
        0,
    )
    assert key.public_key and key.credential_id and key.transports == {"usb"}
    owner = WebAuthnCredential.get(str(key.credential_id))
    assert (owner.username, owner.factor_id) == ("alice", key.factor_id)
    # Its user handle is the factor's random id, never the username (WebAuthn forbids it).
    added = [e for e in audit.recent(clock=sso.clock) if e.type == audit.EventType.MFA_FACTOR_ACTIVATED]
    assert added and added[0].details is not None and added[0].details["factor"] == "webauthn"


def test_a_key_signs_in_as_the_second_factor_and_its_counter_moves(sso: Sso) -> None:
    _, key = _with_key(sso)
    browser = _signed_in_for_app(sso)
    answered = answer_with_key(sso, browser, key)
    assert answered.status_code == 200 and "SAMLResponse" in answered.text, answered.text[:800]
    [stored] = _keys("alice")
    assert int(stored.sign_count) == key.sign_count == 1 and stored.last_used_at is not None
    assert stored.user_verified is True


def test_the_challenge_is_32_random_bytes_kept_only_as_a_hash_for_5_minutes(sso: Sso) -> None:
    _with_key(sso)
    browser = _signed_in_for_app(sso)
    fields = key_challenge(sso, browser)
    options = json.loads(key_options(sso, browser, fields))
    challenge = options["challenge"]
    assert len(challenge) == 43  # 32 bytes in base64url
    stored = [t for t in Transaction.scan() if t.code_hash and t.purpose == "signin"]
    assert len(stored) == 1 and challenge not in str(stored[0].attribute_values)
    assert float(stored[0].code_expires_at) - sso.clock.now() == CHALLENGE_SECONDS


def test_attack_a_replayed_answer_is_refused(sso: Sso) -> None:
    _, key = _with_key(sso)
    browser = _signed_in_for_app(sso)
    fields = key_challenge(sso, browser)
    answer = key.get(key_options(sso, browser, fields))
    assert sso.post(browser, "/mfa/verify", {**fields, "code": answer}).status_code == 200
    again = _signed_in_for_app(sso)
    replayed = sso.post(again, "/mfa/verify", {**key_challenge(sso, again), "code": answer})
    assert replayed.status_code == 401 and "SAMLResponse" not in replayed.text


def test_attack_an_answer_from_another_origin_is_refused(sso: Sso) -> None:
    _, key = _with_key(sso)
    browser = _signed_in_for_app(sso)
    key.origin = "https://idp.example.evil"
    refused = answer_with_key(sso, browser, key)
    assert refused.status_code == 401 and "SAMLResponse" not in refused.text
    assert int(User.get("alice").fail_webauthn) == 1


def test_attack_an_answer_for_another_rp_id_is_refused(sso: Sso) -> None:
    _, key = _with_key(sso)
    refused = answer_with_key(sso, _signed_in_for_app(sso), key, rp_id="evil.example")
    assert refused.status_code == 401


def test_attack_a_counter_going_backwards_is_refused_and_audited_as_a_clone(sso: Sso) -> None:
    _, key = _with_key(sso)
    assert answer_with_key(sso, _signed_in_for_app(sso), key, count_up=5).status_code == 200
    clone = SoftKey(
        origin=key.origin, credential_id=key.credential_id, private_key=key.private_key, sign_count=2
    )
    refused = answer_with_key(sso, _signed_in_for_app(sso), clone)
    assert refused.status_code == 401
    [event] = [e for e in audit.recent(clock=sso.clock) if e.type == audit.EventType.WEBAUTHN_CLONE_SUSPECTED]
    assert event.details is not None and (event.details["stored_count"], event.details["answered_count"]) == (
        "5",
        "3",
    )
    assert int(_keys("alice")[0].sign_count) == 5


def test_attack_a_removed_key_no_longer_signs_in(sso: Sso) -> None:
    _, key = _with_key(sso)
    [stored] = _keys("alice")
    browser = _signed_in_for_app(sso)
    fields = key_challenge(sso, browser)
    options = key_options(sso, browser, fields)
    factors.remove_factor("alice", stored.factor_id, clock=sso.clock)
    refused = sso.post(browser, "/mfa/verify", {**fields, "code": key.get(options)})
    # Removing a factor ends the user's sessions (S15): the answer goes nowhere.
    assert refused.status_code == 303 and "/login" in refused.headers["Location"]
    with pytest.raises(WebAuthnCredential.DoesNotExist):
        WebAuthnCredential.get(str(stored.credential_id))


def test_attack_another_users_key_does_not_answer_for_alice(sso: Sso) -> None:
    _, alice_key = _with_key(sso, "alice")
    _, bob_key = _with_key(sso, "bob")
    browser = _signed_in_for_app(sso, "alice")
    fields = key_challenge(sso, browser)
    options = json.loads(key_options(sso, browser, fields))
    refused = sso.post(browser, "/mfa/verify", {**fields, "code": bob_key.get(json.dumps(options))})
    assert refused.status_code == 401 and "SAMLResponse" not in refused.text
    assert alice_key.sign_count == 0


def test_attack_a_challenge_of_another_session_is_refused(sso: Sso) -> None:
    _, key = _with_key(sso)
    first, second = _signed_in_for_app(sso), _signed_in_for_app(sso)
    options_of_first = key_options(sso, first, key_challenge(sso, first))
    refused = sso.post(
        second, "/mfa/verify", {**key_challenge(sso, second), "code": key.get(options_of_first)}
    )
    assert refused.status_code == 401


def test_attack_an_expired_challenge_is_refused(sso: Sso) -> None:
    _, key = _with_key(sso)
    browser = _signed_in_for_app(sso)
    fields = key_challenge(sso, browser)
    options = key_options(sso, browser, fields)
    sso.clock.advance(CHALLENGE_SECONDS + 1)
    assert sso.post(browser, "/mfa/verify", {**fields, "code": key.get(options)}).status_code == 401


@pytest.mark.parametrize(
    "answer",
    [
        "not json",
        '{"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}',
        "TRUNCATED",
    ],
)
def test_bad_answers_get_a_sentence_and_nothing_is_counted(sso: Sso, answer: str) -> None:
    _, key = _with_key(sso)
    browser = _signed_in_for_app(sso)
    fields = key_challenge(sso, browser)
    if answer == "TRUNCATED":
        good = json.loads(key.get(key_options(sso, browser, fields)))
        good["response"]["authenticatorData"] = good["response"]["authenticatorData"][:20]
        answer = json.dumps(good)
    refused = sso.post(browser, "/mfa/verify", {**fields, "code": answer})
    assert refused.status_code == 400 and "not an answer from a security key" in refused.text
    assert int(User.get("alice").fail_webauthn) == 0


def test_an_oversized_answer_is_refused_before_anything_is_read(sso: Sso) -> None:
    _with_key(sso)
    browser = _signed_in_for_app(sso)
    refused = sso.post(browser, "/mfa/verify", {**key_challenge(sso, browser), "code": "x" * 70_000})
    assert refused.status_code in (400, 413) and "too large" in refused.text


def test_attack_a_registration_answer_from_another_origin_writes_nothing(sso: Sso) -> None:
    add_user("alice", sso.clock)
    browser = sso.browser()
    sso.sign_in(browser, "alice")
    refused = register_key(sso, browser, SoftKey(origin="https://phish.example"))
    assert refused.status_code == 400 and "refused" in refused.text
    assert _keys("alice") == [] and list(WebAuthnCredential.scan()) == []


def test_attack_a_replayed_registration_adds_nothing(sso: Sso) -> None:
    add_user("alice", sso.clock)
    browser = sso.browser()
    sso.sign_in(browser, "alice")
    page = sso.get(browser, "/me/mfa/webauthn/new")
    token = csrf_token(page.text)
    options = sso.post(browser, "/me/mfa/webauthn/options", {"csrf_token": token}).text
    answer = soft_key_for(sso).create(options)
    first = sso.post(browser, "/me/mfa/webauthn", {"csrf_token": token, "label": "Key", "credential": answer})
    assert first.status_code == 303
    token = csrf_token(sso.get(browser, "/me/mfa/webauthn/new").text)
    again = sso.post(browser, "/me/mfa/webauthn", {"csrf_token": token, "label": "Key", "credential": answer})
    assert again.status_code == 400
    assert len(_keys("alice")) == 1


def test_attack_a_phishing_resistant_app_refuses_an_authenticator_app(sso: Sso, clock: FakeClock) -> None:
    add_user("alice", clock)
    secret = give_totp(sso, "alice")
    [app_factor] = factors.list_factors("alice")
    policy.set_app_policy(MFA_APP, phishing_resistant_only=True, clock=clock)
    browser = sso.browser()
    sso.sign_in(browser, "alice", app=MFA_APP)
    # The app accepts only security keys, which alice has none of: the launch says so.
    launch = sso.get(browser, f"/apps/{MFA_APP}/launch")
    assert launch.status_code == 403 and "It accepts: Security key or passkey." in launch.text
    page = sso.get(browser, f"/mfa?app={MFA_APP}")
    assert "You have no second factor that can be used here" in page.text
    # A right authenticator code posted for the app anyway is refused like a wrong one (S28).
    refused = sso.post(
        browser,
        "/mfa/verify",
        {"csrf_token": csrf_token(page.text), "factor": app_factor.factor_id, "app": MFA_APP,
         "code": totp_code(secret, clock)},
    )  # fmt: skip
    assert refused.status_code == 401 and "SAMLResponse" not in refused.text


def test_a_phishing_resistant_app_takes_a_security_key(sso: Sso, clock: FakeClock) -> None:
    _, key = _with_key(sso)
    policy.set_app_policy(MFA_APP, phishing_resistant_only=True, clock=clock)
    answered = answer_with_key(sso, _signed_in_for_app(sso), key)
    assert answered.status_code == 200 and "SAMLResponse" in answered.text


def test_test_2fa_checks_a_key_without_signing_in_again(sso: Sso) -> None:
    browser, key = _with_key(sso)
    [stored] = _keys("alice")
    page = sso.get(browser, f"/me/mfa/test?factor={stored.factor_id}")
    assert page.status_code == 200 and "Use security key" in page.text
    fields = {"csrf_token": csrf_token(page.text), "factor": stored.factor_id}
    options = sso.post(browser, "/me/mfa/test/webauthn/options", fields)
    assert options.status_code == 200, options.text[:300]
    tested = sso.post(browser, "/me/mfa/test/verify", {**fields, "code": key.get(options.text)})
    assert tested.status_code == 303 and "notice=tested" in tested.headers["Location"]
    assert int(_keys("alice")[0].sign_count) == 1


def test_attack_required_user_verification_refuses_a_key_that_did_not_verify(
    sso: Sso, clock: FakeClock
) -> None:
    _, key = _with_key(sso)
    policy.save_settings(policy.MfaSettings(webauthn_user_verification="required"), clock=clock)
    key.user_verifies = False
    refused = answer_with_key(sso, _signed_in_for_app(sso), key)
    assert refused.status_code == 401 and "SAMLResponse" not in refused.text
    key.user_verifies = True
    assert answer_with_key(sso, _signed_in_for_app(sso), key).status_code == 200


def test_attack_a_truncated_registration_answer_is_a_sentence_and_writes_nothing(sso: Sso) -> None:
    add_user("alice", sso.clock)
    browser = sso.browser()
    sso.sign_in(browser, "alice")
    page = sso.get(browser, "/me/mfa/webauthn/new")
    token = csrf_token(page.text)
    options = sso.post(browser, "/me/mfa/webauthn/options", {"csrf_token": token}).text
    answer = json.loads(soft_key_for(sso).create(options))
    answer["response"]["attestationObject"] = answer["response"]["attestationObject"][:40]
    refused = sso.post(
        browser, "/me/mfa/webauthn", {"csrf_token": token, "label": "Key", "credential": json.dumps(answer)}
    )
    assert refused.status_code == 400 and "not an answer from a security key" in refused.text
    assert _keys("alice") == [] and list(WebAuthnCredential.scan()) == []


def test_a_second_key_needs_a_fresh_proof_of_the_first(sso: Sso) -> None:
    browser, _ = _with_key(sso)
    sso.clock.advance(11 * 60)
    page = sso.get(browser, "/me/mfa/webauthn/new")
    refused = sso.post(browser, "/me/mfa/webauthn/options", {"csrf_token": csrf_token(page.text)})
    # S10, S28: adding a factor needs a fresh proof of the strongest tier, here a key.
    assert refused.status_code == 303 and "/mfa" in refused.headers["Location"]
    assert len(_keys("alice")) == 1
