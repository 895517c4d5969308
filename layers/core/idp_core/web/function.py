"""What every page-serving Lambda function shares: its resolver with the one error mapping,
its routers, the settings it was configured with, and the entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from idp_core import observability
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import FunctionSettings
from idp_core.models import bind_tables
from idp_core.resolver import APIGatewayRestResolver, Response
from idp_core.web.context import bound
from idp_core.web.errors import error_response, not_found_response
from idp_core.web.request import WebRequest
from idp_core.web.responses import finalize

# What an invocation does with its event and context: the route table, or the scheduled tick.
Work = Callable[[dict[str, Any], Any], dict[str, Any]]


class PageFunction:
    """A function's route table; ``handle`` is its Lambda entry point. ``name`` is the
    function's short name (sso, otp, adaptive, provisioning): its service in logs and
    metrics when POWERTOOLS_SERVICE_NAME does not say otherwise. ``settings_type`` is the
    function's own settings (``idp_core.config``), read from the environment at cold start."""

    def __init__(self, name: str, settings_type: type[FunctionSettings]) -> None:
        self.name = name
        self.settings_type = settings_type
        self.app = APIGatewayRestResolver()
        # Made at the cold start, as the Tracer must patch botocore before any client exists.
        self._entry = observability.traced(self._invoke, function_name=name)
        self._settings: FunctionSettings | None = None
        self._clock: Clock = SYSTEM_CLOCK

        @self.app.not_found
        def not_found(exc: Exception) -> Response[str]:
            return not_found_response()

        @self.app.exception_handler(Exception)
        def any_error(exc: Exception) -> Response[str]:
            return error_response(exc)

    def configure(self, settings: FunctionSettings | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        """Bind the settings (and a clock: tests move a FakeClock) for the following requests:
        the function's own, read from the environment when none are given, or taken from the
        deployment's ``Settings`` (the local stack's and the tests')."""
        own = self.settings_type.from_env() if settings is None else self.settings_type.narrow(settings)
        bind_tables(own.tables)
        self._settings, self._clock = own, clock

    @property
    def settings(self) -> FunctionSettings:
        if self._settings is None:
            raise RuntimeError("configure() the function before it handles requests")
        return self._settings

    @property
    def clock(self) -> Clock:
        return self._clock

    def include_routers(self, *modules: Any) -> None:
        """Add the routes of each module's ``router`` to the function's table."""
        for module in modules:
            self.app.include_router(module.router)

    def handle(self, event: dict[str, Any], context: Any, work: Work | None = None) -> dict[str, Any]:
        """The Lambda entry point: an API Gateway request through the route table, or with
        ``work`` another kind of event (the provisioning function's scheduled tick). Either
        way the invocation's logs carry its ids and its metrics are flushed at the end."""
        return cast(dict[str, Any], self._entry(event, context, work=work or self._serve))

    def _invoke(self, event: dict[str, Any], context: Any, *, work: Work) -> dict[str, Any]:
        with observability.invocation(event, context, function_name=self.name):
            return work(event, context)

    def _serve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        # HEAD is GET without the body (RFC 9110 9.3.2); the resolver routes GET only, and a
        # GET changes nothing (S16), so answering it costs no more than the GET would.
        head = event.get("httpMethod") == "HEAD"
        if head:
            event = {**event, "httpMethod": "GET"}
        req = WebRequest.from_event(event, settings=self.settings, clock=self._clock)
        with bound(req):
            result = self.app.resolve(event, context)
        response = finalize(result, req)
        if head:
            response.update(body="", isBase64Encoded=False)
        observability.logger.debug(
            "answered", extra={"method": req.method, "path": req.path, "status": response.get("statusCode")}
        )
        return response
