"""The web layer shared by every function's pages: requests, forms, CSRF, cookies,
templates, security headers and the one error mapping. Who may see a page is
``idp_core.guard``'s (it knows sessions, second factors, directories and devices; this
package knows none of them).

A route typically does::

    req = web.request()
    signed_in = guard.require_session(req)        # or guard.require_admin(req)
    form = web.read_form(req, signed_in.session, {"name": web.Field("Name", 64)})
    ...call one logic function...
    return web.redirect(req, "/admin/users")      # or web.render(req, "page.html", **context)
"""

from idp_core.web.auth import (
    LoginRequired,
    RedirectRequired,
    SignedIn,
    clear_session_cookie,
    session_cookie,
    session_token,
)
from idp_core.web.context import bound, request, request_or_none
from idp_core.web.errors import error_response, not_found_response
from idp_core.web.forms import (
    MAX_BODY_BYTES,
    Field,
    UnsupportedMediaType,
    login_csrf_token,
    posted_values,
    read_api_form,
    read_form,
    read_login_form,
)
from idp_core.web.pages import (
    allow_webauthn,
    render,
    render_text,
    stylesheet_response,
    webauthn_script_response,
)
from idp_core.web.request import WebRequest
from idp_core.web.responses import clear_cookie, finalize, html_response, json_response, redirect, set_cookie
from idp_core.web.urls import safe_next_path

__all__ = [
    "MAX_BODY_BYTES",
    "Field",
    "LoginRequired",
    "RedirectRequired",
    "SignedIn",
    "UnsupportedMediaType",
    "WebRequest",
    "allow_webauthn",
    "bound",
    "clear_cookie",
    "clear_session_cookie",
    "error_response",
    "finalize",
    "html_response",
    "json_response",
    "login_csrf_token",
    "not_found_response",
    "posted_values",
    "read_api_form",
    "read_form",
    "read_login_form",
    "redirect",
    "render",
    "render_text",
    "request",
    "request_or_none",
    "safe_next_path",
    "session_cookie",
    "session_token",
    "set_cookie",
    "stylesheet_response",
    "webauthn_script_response",
]
