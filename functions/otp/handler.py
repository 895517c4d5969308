"""The otp function: the second-factor challenge (/mfa), the end-user 2FA set-up (/me/mfa)
and the admin pages for MFA settings and app policies (/admin/mfa).

A thin route table like the sso function: each route reads its input through
``idp_core.web``, calls ``idp_core.mfa`` logic and maps the result to a page or a
redirect; exceptions become responses in one place (``web.error_response``) and
``web.finalize`` adds the security headers. Settings are validated at import (the
Lambda cold start); the MFA modules (pyotp, segno, phonenumbers) and the boto3 clients
load on the first route that needs them, so the cold start stays light.
"""

from __future__ import annotations

from typing import Any

from functions.otp import challenge_routes, mfa_admin_routes, setup_routes, token_admin_routes
from functions.otp.settings import OtpSettings
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import FunctionSettings
from idp_core.web.function import PageFunction

function = PageFunction("otp", OtpSettings)
app = function.app


def configure(settings: FunctionSettings | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
    """Bind the settings (and a clock: tests move a FakeClock) for the following requests:
    the function's own (OtpSettings), from the environment unless given."""
    function.configure(settings, clock)


configure()
function.include_routers(challenge_routes, setup_routes, mfa_admin_routes, token_admin_routes)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return function.handle(event, context)
