"""One request's scope: who asks, from where and when, and the settings of the function that
serves it. The logic takes it instead of a clock, an audit context, an address, a user agent
and a device token apart, so adding what a request knows does not grow every signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import FunctionSettings


@dataclass(frozen=True)
class Browser:
    """What the request tells about where it comes from."""

    source_ip: str | None
    user_agent: str | None = None
    device_token: str | None = None


@dataclass(frozen=True)
class RequestScope:
    settings: FunctionSettings
    # From where: the API's source address (never a client header), the user agent and the
    # device cookie, as the adaptive policies judge them.
    browser: Browser = field(default_factory=lambda: Browser(source_ip=None))
    # Who asks, once known: the signed-in user or admin that audit events name as the actor.
    actor: str | None = None
    clock: Clock = SYSTEM_CLOCK

    @property
    def context(self) -> AuditContext:
        """Who and from where, as audit events record it."""
        return AuditContext(source_ip=self.browser.source_ip, actor=self.actor)
