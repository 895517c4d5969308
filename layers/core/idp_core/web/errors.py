"""The one place where exceptions become HTTP responses.

An ``IdpError`` shows its safe message with its status, on the page the route asked to
show again (``req.error_page``, e.g. the sign-in form) or on the error page. Anything
else is logged with its stack trace, counted (``UnhandledError``, which an alarm
watches) and answered with a generic 500 page that reveals nothing (S26).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from idp_core import observability
from idp_core.errors import IdpError
from idp_core.web.auth import RedirectRequired
from idp_core.web.context import request_or_none
from idp_core.web.pages import render
from idp_core.web.responses import redirect

logger = observability.logger

GENERIC_ERROR = "Something went wrong on our side. Please try again in a moment."
NOT_FOUND = "There is no page at this address."


def error_response(exc: Exception) -> Response[str]:
    req = request_or_none()
    if req is None:
        return _plain(exc)
    if isinstance(exc, RedirectRequired):
        return redirect(req, exc.path, query=exc.query)
    where = {"method": req.method, "path": req.path}
    try:
        if isinstance(exc, IdpError):
            if req.error_page is not None:
                template, context = req.error_page() if callable(req.error_page) else req.error_page
                return render(req, template, status=exc.status, **{**context, "error": exc.message})
            return render(req, "error.html", status=exc.status, message=exc.message)
        observability.count("UnhandledError")
        logger.exception("unhandled error on %s %s", req.method, req.path, extra=where, exc_info=exc)
        return render(req, "error.html", status=500, message=GENERIC_ERROR)
    except Exception as render_exc:
        # The error page itself failed (a broken template): still answer without details.
        observability.count("UnhandledError")
        logger.exception("the error page failed", extra=where, exc_info=render_exc)
        return Response(status_code=500, content_type="text/plain; charset=utf-8", body=GENERIC_ERROR)


def _plain(exc: Exception) -> Response[str]:
    """The answer outside a web request (no page to render)."""
    if isinstance(exc, IdpError):
        return Response(status_code=exc.status, content_type="text/plain; charset=utf-8", body=exc.message)
    observability.count("UnhandledError")
    logger.exception("error outside a web request", exc_info=exc)
    return Response(status_code=500, content_type="text/plain; charset=utf-8", body=GENERIC_ERROR)


def not_found_response() -> Response[str]:
    req = request_or_none()
    if req is None:
        return Response(status_code=404, content_type="text/plain; charset=utf-8", body=NOT_FOUND)
    return render(req, "error.html", status=404, message=NOT_FOUND)
