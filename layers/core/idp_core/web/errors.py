"""The one place where exceptions become HTTP responses.

An ``IdpError`` shows its safe message with its status, on the page the route asked to
show again (``req.error_page``, e.g. the sign-in form) or on the error page. An AWS call
that was throttled, failed on AWS's side, did not answer in time or lost a race to a
concurrent write becomes a ``ServiceUnavailable``: a 503 page that says to try again, and
a log line that says what failed. Anything else is logged with its stack trace, counted
(``UnhandledError``, which an alarm watches) and answered with a generic 500 page that
reveals nothing (S26).
"""

from __future__ import annotations

import json
from http import HTTPStatus

from idp_core import observability
from idp_core.aws import transient_failure
from idp_core.errors import IdpError, ServiceUnavailable
from idp_core.resolver import Response
from idp_core.web.auth import RedirectRequired
from idp_core.web.context import request_or_none
from idp_core.web.pages import render
from idp_core.web.responses import json_response, redirect

logger = observability.logger

GENERIC_ERROR = "Something went wrong on our side. Please try again in a moment."
NOT_FOUND = "There is no page at this address."
# What a 503 suggests to wait: about the time a throttled service needs to recover.
RETRY_AFTER_SECONDS = 5


def error_response(exc: Exception) -> Response[str]:
    known = known_error(exc)
    req = request_or_none()
    if req is None:
        return _plain(known or exc)
    if isinstance(known, RedirectRequired):
        return redirect(req, known.path, query=known.query)
    where = {"method": req.method, "path": req.path}
    try:
        if isinstance(known, ServiceUnavailable):
            logger.warning(
                "%s: %s",
                ServiceUnavailable.__name__,
                known.failed,
                extra={**where, "failed": known.failed},
                exc_info=exc,
            )
        if known is not None and req.json_errors:
            return _with_retry_after(_json_error(known), known)
        if known is not None:
            if req.error_page is not None:
                template, context = req.error_page() if callable(req.error_page) else req.error_page
                page = render(req, template, status=known.status, **{**context, "error": known.message})
            else:
                page = render(req, "error.html", status=known.status, message=known.message)
            return _with_retry_after(page, known)
        observability.count("UnhandledError")
        logger.exception("unhandled error on %s %s", req.method, req.path, extra=where, exc_info=exc)
        return render(req, "error.html", status=500, message=GENERIC_ERROR)
    except Exception as render_exc:
        # The error page itself failed (a broken template): still answer without details.
        observability.count("UnhandledError")
        logger.exception("the error page failed", extra=where, exc_info=render_exc)
        return Response(status_code=500, content_type="text/plain; charset=utf-8", body=GENERIC_ERROR)


def known_error(exc: Exception) -> IdpError | None:
    """``exc`` as the product's typed error: itself, a ``ServiceUnavailable`` for a transient
    AWS failure (``aws.transient_failure``), or None for a fault of ours (a 500)."""
    if isinstance(exc, IdpError):
        return exc
    failed = transient_failure(exc)
    return ServiceUnavailable(failed) if failed is not None else None


def _json_error(error: IdpError) -> Response[str]:
    """OAuth's error answer (RFC 6749 5.2): a code a program acts on, and the sentence."""
    server_side = error.status >= HTTPStatus.INTERNAL_SERVER_ERROR
    code = getattr(error, "code", None) or ("temporarily_unavailable" if server_side else "invalid_request")
    return json_response(json.dumps({"error": code, "error_description": error.message}), status=error.status)


def _plain(exc: Exception) -> Response[str]:
    """The answer outside a web request (no page to render)."""
    if isinstance(exc, IdpError):
        return Response(status_code=exc.status, content_type="text/plain; charset=utf-8", body=exc.message)
    observability.count("UnhandledError")
    logger.exception("error outside a web request", exc_info=exc)
    return Response(status_code=500, content_type="text/plain; charset=utf-8", body=GENERIC_ERROR)


def _with_retry_after(page: Response[str], error: IdpError) -> Response[str]:
    if error.status == HTTPStatus.SERVICE_UNAVAILABLE:
        page.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return page


def not_found_response() -> Response[str]:
    req = request_or_none()
    if req is None:
        return Response(status_code=404, content_type="text/plain; charset=utf-8", body=NOT_FOUND)
    return render(req, "error.html", status=404, message=NOT_FOUND)
