"""The request scope's audit context: who asks (once known) and from which address."""

from __future__ import annotations

from idp_core.config import Settings, Tables
from idp_core.scope import Browser, RequestScope


def test_the_scope_names_the_actor_and_the_browsers_address_in_its_audit_context() -> None:
    settings = Settings(tables=Tables.with_prefix("unread-"), signing_key_id="unread")
    scope = RequestScope(settings, browser=Browser("192.0.2.7", "agent", "device"), actor="bob")
    assert (scope.context.source_ip, scope.context.actor) == ("192.0.2.7", "bob")
    anonymous = RequestScope(settings)
    assert (anonymous.context.source_ip, anonymous.context.actor) == (None, None)


def test_a_page_request_gives_its_scope_the_api_address_agent_clock_and_settings() -> None:
    from idp_core.clock import FakeClock
    from idp_core.web.request import WebRequest

    settings = Settings(tables=Tables.with_prefix("unread-"), signing_key_id="unread")
    clock = FakeClock()
    event = {
        "httpMethod": "GET",
        "path": "/me",
        # A header the client writes never stands for its address.
        "headers": {"User-Agent": "agent/1.0", "X-Forwarded-For": "203.0.113.9"},
        "requestContext": {"identity": {"sourceIp": "192.0.2.8"}},
    }
    req = WebRequest.from_event(event, settings=settings, clock=clock)
    scope = req.scope("carol")
    assert scope.browser == Browser(source_ip="192.0.2.8", user_agent="agent/1.0")
    assert (scope.actor, scope.clock, scope.settings) == ("carol", clock, settings)
    assert req.scope(browser=Browser("198.51.100.1")).browser.source_ip == "198.51.100.1"
