"""The provisioning function: the console's user stores (/admin/directories: settings, the
admin's tests, "import now") and the scheduled imports.

Two kinds of event reach it. API Gateway requests go through the route table, a thin layer
like the other functions: each route reads its input through ``idp_core.web``, calls one
``idp_core.directories`` function and maps the result to a page or a redirect. The
EventBridge rule's "Scheduled Event" runs the imports that are due (``scheduled``).
Settings are validated at import (the Lambda cold start); the data key is required, since
every directory's bind password is sealed with it.
"""

from __future__ import annotations

from typing import Any

from functions.provisioning import directory_admin_routes, scheduled
from functions.provisioning.settings import ProvisioningSettings
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import FunctionSettings
from idp_core.web.function import PageFunction

function = PageFunction("provisioning", ProvisioningSettings)
app = function.app


def configure(settings: FunctionSettings | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
    """Bind the settings (and a clock: tests move a FakeClock) for the following requests:
    the function's own (ProvisioningSettings), from the environment unless given."""
    function.configure(settings, clock)


configure()
function.include_routers(directory_admin_routes)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if scheduled.is_scheduled_event(event):
        return function.handle(event, context, work=_tick)
    return function.handle(event, context)


def _tick(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return scheduled.handle(event, settings=ProvisioningSettings.of(function.settings), clock=function.clock)
