"""A request's scope for tests that call the core's logic directly, without a page request
(a page request makes its own: ``WebRequest.scope``)."""

from __future__ import annotations

from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import GrantedTables, LockoutPolicy, MessagingConfig, SessionPolicy, WithSignIn
from idp_core.scope import Browser, RequestScope

# The tests bind the models to their own tables (the ``tables`` fixture), so the scope's
# settings grant none: a use of them would fail at once.
NO_TABLES = GrantedTables({})


def scope_at(
    clock: Clock = SYSTEM_CLOCK,
    *,
    browser: Browser | None = None,
    actor: str | None = None,
    sessions: SessionPolicy | None = None,
    lockout: LockoutPolicy | None = None,
    messaging: MessagingConfig | None = None,
) -> RequestScope:
    """The scope of a request at ``clock`` from ``browser`` (no address by default), under the
    settings of a function that checks passwords and second factors and sends codes: the
    session, lockout and messaging policies given, the defaults for the others."""
    settings = WithSignIn(
        tables=NO_TABLES,
        sessions=sessions or SessionPolicy(),
        lockout=lockout or LockoutPolicy(),
        messaging=messaging or MessagingConfig(),
    )
    return RequestScope(settings, browser=browser or Browser(source_ip=None), actor=actor, clock=clock)
