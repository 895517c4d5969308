"""Sessions (S13-S15): opaque hashed ids, rotation, idle and absolute limits, logout, disable."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import pytest
import requests

from idp_core import accounts, sessions
from idp_core.clock import FakeClock
from idp_core.config import SessionPolicy, Tables
from idp_core.models import Session, User
from tests.helpers.mfa import password_only
from tests.helpers.scope import scope_at
from tests.helpers.sso import PASSWORD, Sso, csrf_token, event, running_sso

POLICY = SessionPolicy()


# The password step alone; second factors are tested in test_mfa_*.
pytestmark = pytest.mark.sso_setup("password_only")


def signed_in(sso: Sso) -> requests.Session:
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    return browser


def is_signed_in(sso: Sso, browser: requests.Session) -> bool:
    return sso.get(browser, "/me").status_code == 200


def test_session_cookie_is_opaque_and_only_its_hash_is_stored(sso: Sso, alice: User) -> None:
    browser = signed_in(sso)
    token = browser.cookies["idp_session"]
    assert len(token) >= 43  # 32 random bytes, base64url
    [stored] = list(Session.scan())
    assert stored.id_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(stored.attribute_values)
    assert stored.factors == {"password"}
    assert stored.expires_at == int(sso.clock.now() + POLICY.max_seconds)


def test_signing_in_again_issues_a_new_id_and_ends_the_old_session(sso: Sso, alice: User) -> None:
    browser = signed_in(sso)
    first = browser.cookies["idp_session"]
    token = browser.cookies["idp_csrf"]
    again = sso.post(browser, "/login", {"csrf_token": token, "username": "alice", "password": PASSWORD})
    assert again.status_code == 303
    second = browser.cookies["idp_session"]
    assert second != first
    assert [s.id_hash for s in Session.scan()] == [sessions.hash_token(second)]


def test_idle_sessions_end_after_the_idle_timeout(sso: Sso, alice: User) -> None:
    browser = signed_in(sso)
    sso.clock.advance(POLICY.idle_seconds - 120)
    assert is_signed_in(sso, browser)
    sso.clock.advance(POLICY.idle_seconds - 120)  # active a moment ago, so not idle
    assert is_signed_in(sso, browser)
    sso.clock.advance(POLICY.idle_seconds)
    response = sso.get(browser, "/me")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?")


def test_active_sessions_end_at_the_absolute_lifetime(sso: Sso, alice: User) -> None:
    browser = signed_in(sso)
    step = POLICY.idle_seconds // 2
    elapsed = 0
    while elapsed + step < POLICY.max_seconds:
        sso.clock.advance(step)
        elapsed += step
        assert is_signed_in(sso, browser), elapsed
    sso.clock.advance(POLICY.max_seconds - elapsed)
    assert not is_signed_in(sso, browser)


def test_last_seen_is_written_at_most_once_a_minute(sso: Sso, alice: User) -> None:
    browser = signed_in(sso)
    created = sso.clock.now()
    sso.clock.advance(30)
    assert is_signed_in(sso, browser)
    assert next(iter(Session.scan())).last_seen_at == created
    sso.clock.advance(31)
    assert is_signed_in(sso, browser)
    assert next(iter(Session.scan())).last_seen_at == sso.clock.now()


def test_logout_ends_the_session_and_clears_the_cookie(sso: Sso, alice: User) -> None:
    browser = signed_in(sso)
    page = sso.get(browser, "/me")
    token = csrf_token(page.text)
    response = sso.post(browser, "/logout", {"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert "idp_session=;" in response.headers["Set-Cookie"]
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert list(Session.scan()) == []
    assert not is_signed_in(sso, browser)


def test_logout_without_the_csrf_token_is_refused_and_keeps_the_session(sso: Sso, alice: User) -> None:
    browser = signed_in(sso)
    for form in ({}, {"csrf_token": "forged"}):
        response = sso.post(browser, "/logout", form)
        assert response.status_code == 403
    assert len(list(Session.scan())) == 1
    assert is_signed_in(sso, browser)


def test_disabling_a_user_ends_their_sessions(sso: Sso, alice: User) -> None:
    first, second = signed_in(sso), signed_in(sso)
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    bob = sso.browser()
    sso.sign_in(bob, "bob")
    accounts.set_user_disabled("alice", True)
    assert [s.username for s in Session.scan()] == ["bob"]
    assert not is_signed_in(sso, first) and not is_signed_in(sso, second)
    assert is_signed_in(sso, bob)


def test_end_user_sessions_counts_what_it_ended(alice: User, clock: FakeClock) -> None:
    for _ in range(3):
        sessions.start_session(
            sessions.NewSession("alice", factors={"password"}), scope_at(clock, sessions=POLICY)
        )
    sessions.start_session(sessions.NewSession("bob", factors={"password"}), scope_at(clock, sessions=POLICY))
    assert sessions.end_user_sessions("alice") == 3
    assert sessions.end_user_sessions("alice") == 0
    assert [s.username for s in Session.scan()] == ["bob"]


def test_half_way_session_is_not_a_signed_in_session(alice: User, clock: FakeClock) -> None:
    issued = sessions.start_session(
        sessions.NewSession("alice", factors={"password", sessions.PENDING_PREFIX + "totp"}),
        scope_at(clock, sessions=POLICY),
    )
    assert not sessions.is_complete(issued.session)


def test_deployed_cookies_are_host_prefixed_secure_and_links_carry_the_stage(
    tables: Tables, clock: FakeClock, alice: User
) -> None:
    # No PUBLIC_BASE_URL: URLs come from the execute-api domain and the stage.
    with running_sso(tables, clock, public_base_url=False, cookie_secure=True) as sso:
        password_only(clock)
        page = sso.invoke(event("GET", "/login"))
        [csrf_cookie] = page["multiValueHeaders"]["Set-Cookie"]
        assert csrf_cookie.startswith("__Host-idp_csrf=")
        assert csrf_cookie.endswith("; Path=/; HttpOnly; SameSite=Lax; Secure")
        assert 'action="/prod/login"' in page["body"]
        assert 'href="/prod/static/idp.css"' in page["body"]

        token = csrf_token(page["body"])
        body = urlencode({"csrf_token": token, "username": "alice", "password": PASSWORD}).encode()
        headers = {"Cookie": f"__Host-idp_csrf={token}", "Content-Type": "application/x-www-form-urlencoded"}
        response = sso.invoke(event("POST", "/login", headers=headers, body=body))
        assert response["statusCode"] == 303
        assert response["multiValueHeaders"]["Location"] == ["/prod/me"]
        [session_cookie] = response["multiValueHeaders"]["Set-Cookie"]
        assert session_cookie.startswith("__Host-idp_session=")
        assert session_cookie.endswith("; Path=/; HttpOnly; SameSite=Lax; Secure")

        metadata = sso.invoke(event("GET", "/saml/metadata"))
        entity = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/saml/metadata"
        assert f'entityID="{entity}"' in metadata["body"]
