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
