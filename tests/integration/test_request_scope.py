"""One request scope (who, from where, when) carries the browser's address, user agent and
device from the sign-in page to the session, the audit events and the launch: what the sso
function used to pass as a clock, a context, an address, a user agent and a device token
apart (issue 14 point 3)."""

from __future__ import annotations

import pytest

from idp_core.audit import recent
from idp_core.clock import FakeClock
from idp_core.models import AuditEvent, Session
from tests.helpers.mfa import OPEN_APP, add_user
from tests.helpers.sso import PASSWORD, Sso

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) ScopeTest/1.0"
# The local gateway's client address, as API Gateway's requestContext.identity.sourceIp.
GATEWAY_ADDRESS = "127.0.0.1"

pytestmark = pytest.mark.sso_setup("two_apps", "password_only")


def _events(clock: FakeClock) -> dict[str, AuditEvent]:
    return {event.type: event for event in recent(clock=clock)}


def _signed_in_for_the_open_app(sso: Sso, **headers: str) -> None:
    add_user("alice", sso.clock)
    browser = sso.browser()
    browser.headers.update({"User-Agent": USER_AGENT, **headers})
    token = sso.login_form_token(browser, f"?app={OPEN_APP}")
    form = {"csrf_token": token, "username": "alice", "password": PASSWORD, "app": OPEN_APP}
    answer = sso.post(browser, "/login", form)
    # A password-only app: the answer to the password is the page that posts the assertion.
    assert answer.status_code == 200 and 'name="SAMLResponse"' in answer.text, answer.text[:500]


def test_the_sign_in_and_the_launch_record_who_from_where_and_when(sso: Sso) -> None:
    sso.clock.advance(42)
    _signed_in_for_the_open_app(sso)
    events = _events(sso.clock)
    signed_in, issued = events["auth.signin"], events["saml.assertion_issued"]
    # The sign-in knows no actor yet; the launch is the signed-in user's.
    assert (signed_in.actor, signed_in.source_ip, signed_in.subject) == (None, GATEWAY_ADDRESS, "alice")
    assert (issued.actor, issued.source_ip, issued.subject) == ("alice", GATEWAY_ADDRESS, "alice")
    (session,) = [item for item in Session.scan() if item.username == "alice"]
    assert (session.source_ip, session.user_agent) == (GATEWAY_ADDRESS, USER_AGENT)
    assert session.created_at == sso.clock.now()


def test_attack_a_forwarded_for_header_does_not_change_the_address_the_scope_records(sso: Sso) -> None:
    """The address comes from API Gateway's request context, never from a header the client
    writes: a forged X-Forwarded-For neither hides the sign-in's origin nor frames another."""
    _signed_in_for_the_open_app(sso, **{"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"})
    events = _events(sso.clock)
    assert {events[kind].source_ip for kind in ("auth.signin", "saml.assertion_issued")} == {GATEWAY_ADDRESS}
    (session,) = [item for item in Session.scan() if item.username == "alice"]
    assert session.source_ip == GATEWAY_ADDRESS
