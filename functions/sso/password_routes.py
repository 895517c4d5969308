"""End-user password change: /me/password (the form, and its post).

Only a complete session reaches it (``guard.require_session``), with a second factor of the
user's strongest tier proven in the last minutes when they have one (S28), so that a stolen
session and a known password do not make a new password. The form is read through
``web.read_form`` (CSRF, S16) and ``idp_core.password_change`` decides where the new
password goes (the local hash or the user's directory), checks the current one and writes
the change with its audit event; a POST answers with a 303 back to the page with a fixed
notice (Post/Redirect/Get), a refused one shows the form again with the message.
"""

from __future__ import annotations

from typing import Any

from idp_core import web
from idp_core.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

PAGE = "/me/password"
# Notices are chosen by a fixed key, so a crafted link cannot make the page say anything else.
NOTICES = {"changed": "Your password was changed. Your other sessions were signed out."}
PASSWORD_FIELDS = {
    "current_password": web.Field("Current password", MAX_PASSWORD_CHARS),
    "new_password": web.Field("New password", MAX_PASSWORD_CHARS),
    "repeat_password": web.Field("Repeat the new password", MAX_PASSWORD_CHARS),
}


def _page_context(signed_in: web.SignedIn) -> dict[str, Any]:
    from idp_core import password_change

    home = password_change.password_home(signed_in.user)
    return {
        "managed_by": home.managed_by,
        "directory_name": home.settings.display_name if home.settings is not None else None,
        "min_chars": MIN_PASSWORD_CHARS,
        "max_chars": MAX_PASSWORD_CHARS,
        "notice": None,
    }


def _signed_in(req: web.WebRequest) -> web.SignedIn:
    # The second-factor rules and the password change load when this rarely used page is
    # asked for, not with the sso function's cold start.
    from idp_core import guard

    signed_in = guard.require_session(req)
    guard.require_fresh_strongest_factor(req, signed_in, next_page=PAGE)
    return signed_in


@router.get(PAGE)
def password_page() -> Response[str]:
    req = web.request()
    signed_in = _signed_in(req)
    return web.render(
        req,
        "me_password.html",
        **{**_page_context(signed_in), "notice": NOTICES.get(req.query.get("notice", ""))},
    )


@router.post(PAGE)
def change_password() -> Response[str]:
    from idp_core import password_change

    req = web.request()
    signed_in = _signed_in(req)
    req.error_page = lambda: ("me_password.html", _page_context(signed_in))
    form = web.read_form(req, signed_in.session, PASSWORD_FIELDS)
    password_change.change_password(
        signed_in.user,
        signed_in.session,
        req.scope(signed_in.user.username),
        current_password=form["current_password"],
        new_password=form["new_password"],
        repeated_password=form["repeat_password"],
    )
    return web.redirect(req, PAGE, query={"notice": "changed"})
