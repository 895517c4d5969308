"""Forgot password: /login/forgot (ask for a link), /login/reset (follow it) and
/login/reset/password (choose the new password), over ``idp_core.password_reset``.

The first two take the sign-in form's double-submit CSRF token, as nobody is signed in yet.
Following the link shows a "Continue" button rather than spending the link on a GET, which
mail scanners and link previews send. The password page takes only the half-way session a
link gave, once its second factor is proven at /mfa (the sign-in's own challenge).

The reset logic loads with these pages, not with the sso function's cold start (the sign-in).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from idp_core import session_guard, web
from idp_core.names import MAX_USERNAME_CHARS
from idp_core.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

FORGOT_PAGE = "/login/forgot"
RESET_PAGE = "/login/reset"
NEW_PASSWORD_PAGE = session_guard.NEW_PASSWORD_PAGE
FORGOT_TEMPLATE = "password_forgot.html"
RESET_TEMPLATE = "password_reset.html"
# Longer than any valid username or address, so a too-long one gets the same answer as an
# unknown one (S5).
FORGOT_FIELDS = {"username": web.Field("Username or e-mail", max(256, MAX_USERNAME_CHARS))}
NEW_PASSWORD_FIELDS = {
    "new_password": web.Field("New password", MAX_PASSWORD_CHARS),
    "repeat_password": web.Field("Repeat the new password", MAX_PASSWORD_CHARS),
}


def _forgot_context(req: web.WebRequest, *, sent: bool) -> dict[str, Any]:
    return {"login_csrf": web.login_csrf_token(req)[0], "sent": sent}


@router.get(FORGOT_PAGE)
def forgot_page() -> Response[str]:
    req = web.request()
    token, cookies = web.login_csrf_token(req)
    return web.render(req, FORGOT_TEMPLATE, cookies=cookies, login_csrf=token, sent=False)


@router.post(FORGOT_PAGE)
def ask_for_link() -> Response[str]:
    from idp_core import password_reset

    req = web.request()
    req.error_page = lambda: (FORGOT_TEMPLATE, _forgot_context(req, sent=False))
    form = web.read_login_form(req, FORGOT_FIELDS)
    password_reset.request_reset(
        form["username"],
        req.scope(),
        link_for=lambda token: req.absolute_url(RESET_PAGE) + "?" + urlencode({"token": token}),
    )
    # The same page whether or not the account exists (S5).
    return web.render(req, FORGOT_TEMPLATE, **_forgot_context(req, sent=True))


@router.get(RESET_PAGE)
def link_page() -> Response[str]:
    from idp_core import password_reset

    req = web.request()
    link = req.query_param("token", max_chars=password_reset.MAX_TOKEN_CHARS, label="The link") or ""
    token, cookies = web.login_csrf_token(req)
    return web.render(req, RESET_TEMPLATE, cookies=cookies, step="link", login_csrf=token, link_token=link)


@router.post(RESET_PAGE)
def follow_link() -> Response[str]:
    from idp_core import password_reset

    req = web.request()
    req.error_page = lambda: (RESET_TEMPLATE, {"step": "invalid"})
    form = web.read_login_form(req, {"token": web.Field("Reset link", password_reset.MAX_TOKEN_CHARS)})
    redeemed = password_reset.redeem_link(form["token"], req.scope(), previous_session=web.session_token(req))
    cookies = [web.session_cookie(req, redeemed.issued.token)]
    if redeemed.owes_second_factor:
        return web.redirect(req, session_guard.MFA_PAGE, cookies=cookies, query={"next": NEW_PASSWORD_PAGE})
    return web.redirect(req, NEW_PASSWORD_PAGE, cookies=cookies)


def _reset_session(req: web.WebRequest) -> web.SignedIn:
    from idp_core import password_reset
    from idp_core.mfa import flow

    signed_in = session_guard.session_in_progress(req)
    if signed_in is None:
        raise password_reset.NotAResetSession()
    try:
        password_reset.ensure_reset_session(signed_in.session, req.clock)
    except flow.SecondFactorRequired as exc:
        raise web.RedirectRequired(exc.message, session_guard.MFA_PAGE, {"next": NEW_PASSWORD_PAGE}) from exc
    return signed_in


def _password_context(signed_in: web.SignedIn) -> dict[str, Any]:
    from idp_core import password_change

    home = password_change.password_home(signed_in.user)
    return {
        "step": "password",
        "csrf_token": signed_in.csrf_token,
        "managed_by": home.managed_by,
        "directory_name": home.settings.display_name if home.settings is not None else None,
        "min_chars": MIN_PASSWORD_CHARS,
        "max_chars": MAX_PASSWORD_CHARS,
    }


@router.get(NEW_PASSWORD_PAGE)
def new_password_page() -> Response[str]:
    req = web.request()
    return web.render(req, RESET_TEMPLATE, **_password_context(_reset_session(req)))


@router.post(NEW_PASSWORD_PAGE)
def set_new_password() -> Response[str]:
    from idp_core import password_reset

    req = web.request()
    signed_in = _reset_session(req)
    req.error_page = lambda: (RESET_TEMPLATE, _password_context(signed_in))
    form = web.read_form(req, signed_in.session, NEW_PASSWORD_FIELDS)
    password_reset.set_new_password(
        signed_in.user,
        signed_in.session,
        req.scope(signed_in.user.username),
        new_password=form["new_password"],
        repeated_password=form["repeat_password"],
    )
    return web.render(req, RESET_TEMPLATE, cookies=[web.clear_session_cookie(req)], step="done")
