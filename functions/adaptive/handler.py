"""The adaptive function: the end-user devices page (/me/devices), the admin's view of a
user's devices (/admin/devices/<user>) and the console for adaptive policies (/admin/adaptive).

A thin route table like the sso and otp functions: each route reads its input through
``idp_core.web``, calls one ``idp_core.adaptive`` (or ``idp_core.accounts``) function and
maps the result to a page or a redirect; exceptions become responses in one place
(``web.error_response``) and ``web.finalize`` adds the security headers. Settings are
validated at import (the Lambda cold start). No secret is sealed or opened here, so the
data key is not needed.
"""

from __future__ import annotations

from typing import Any

from functions.adaptive import device_admin_routes, device_routes, policy_admin_routes
from functions.adaptive.settings import AdaptiveSettings
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import FunctionSettings
from idp_core.web.function import PageFunction

function = PageFunction("adaptive", AdaptiveSettings)
app = function.app


def configure(settings: FunctionSettings | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
    """Bind the settings (and a clock: tests move a FakeClock) for the following requests:
    the function's own (AdaptiveSettings), from the environment unless given."""
    function.configure(settings, clock)


configure()
function.include_routers(device_routes, device_admin_routes, policy_admin_routes)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return function.handle(event, context)
