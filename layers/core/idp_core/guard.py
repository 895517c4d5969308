"""Who may see a page: the session cookie checked on every request that needs it (S3, S14,
S15), with the second factor (S10, S28), the directory's "Enable administrator login" and the
device cookie the adaptive policies judge.

It sits above the packages it asks (``sessions``, ``mfa``, ``directories``, ``adaptive``) and
above ``web``, which knows only requests, cookies and responses; the functions' routes and
the shared page code call it, and nothing below it imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from idp_core import sessions
from idp_core.adaptive.devices import DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE_SECONDS
from idp_core.directories.admin_login import ensure_admin_login_allowed
from idp_core.errors import Forbidden
from idp_core.mfa import flow, policy
from idp_core.models import Session, User, get_items
from idp_core.scope import Browser
from idp_core.web.auth import LoginRequired, RedirectRequired, SignedIn, session_token
from idp_core.web.request import WebRequest
from idp_core.web.responses import cookie_name, set_cookie

# A half-way session (S14) is sent to the page that finishes it, and nowhere else.
MFA_PAGE = "/mfa"
ENROL_PAGE = "/me/mfa"
# A session that followed a password reset link reaches only the page that sets the password.
NEW_PASSWORD_PAGE = "/login/reset/password"  # noqa: S105 - a page, not a secret
# The admin console needs a second factor proven this recently (when the admin has one), and
# a factor, password or device change one proven this recently (S10).
ADMIN_SECOND_FACTOR_MAX_AGE_SECONDS = 15 * 60
CHANGE_SECOND_FACTOR_MAX_AGE_SECONDS = 10 * 60


def device_token(req: WebRequest) -> str | None:
    """The device cookie's value (``idp_core.adaptive.devices``), if the browser sent one."""
    return req.cookies.get(cookie_name(req, DEVICE_COOKIE)) or None


def device_cookie(req: WebRequest, token: str) -> str:
    """The long-lived device cookie: it outlives sessions so that the browser is recognised."""
    return set_cookie(req, DEVICE_COOKIE, token, max_age=DEVICE_COOKIE_MAX_AGE_SECONDS)


def browser(req: WebRequest) -> Browser:
    """What the adaptive policies judge: the API's source address (never a client header),
    the user agent and the device cookie."""
    return Browser(source_ip=req.source_ip, user_agent=req.user_agent, device_token=device_token(req))


def session_in_progress(
    req: WebRequest, also: Callable[[Session], Sequence[tuple[Any, tuple[str, ...], bool]]] | None = None
) -> SignedIn | None:
    """The live session of an enabled user, complete or half-way; looked up once per request.

    Only the MFA pages accept a half-way session (S14); every other page goes through
    ``current_session``/``require_session``. A session whose user was disabled or deleted
    is ended on the spot, so the check does not depend on the by_user index having caught
    up with the disabling.

    ``also`` names more items to read in the same request as the user, once the session is
    known (``models.get_items``); they come back as ``SignedIn.items``.
    """
    if req.session_loaded:
        return req.any_session_cache
    req.session_loaded = True
    token = session_token(req)
    session = sessions.find_session(token, policy=req.settings.sessions, clock=req.clock)
    if token is None or session is None:
        return None
    # Strongly consistent, like the session: a user disabled a moment ago must not pass.
    user, *items = get_items((User, (session.username,), True), *(also(session) if also else ()))
    if user is None or user.disabled:
        sessions.end_session(token)
        return None
    signed_in = SignedIn(token=token, session=session, user=user, items=tuple(items))
    req.any_session_cache = signed_in
    if sessions.is_complete(session):
        req.signed_in_cache = signed_in
    return signed_in


def current_session(req: WebRequest) -> SignedIn | None:
    """The complete, live session of an enabled user, or None; looked up once per request."""
    session_in_progress(req)
    return req.signed_in_cache


def require_session(req: WebRequest, *, login_query: Mapping[str, str | None] | None = None) -> SignedIn:
    """The signed-in user, or LoginRequired (-> /login?next=<this page>) for a GET page.

    ``login_query`` replaces the default ``next`` parameter (the launch page passes the
    app and RelayState instead).
    """
    signed_in = current_session(req)
    if signed_in is None:
        if login_query is None:
            login_query = {"next": _this_page(req)} if req.method == "GET" else {}
        half_way = session_in_progress(req)
        if half_way is not None:
            # Password done, second factor or enrolment still owed: only the MFA pages (S14).
            owed = sessions.pending_factors(half_way.session)
            page = ENROL_PAGE if flow.OWES_ENROLMENT in owed else MFA_PAGE
            if owed == {sessions.OWES_NEW_PASSWORD}:
                page = NEW_PASSWORD_PAGE
            raise RedirectRequired("Finish signing in first.", page, login_query)
        raise LoginRequired(login_query)
    return signed_in


def require_admin(req: WebRequest) -> SignedIn:
    """An administrator who proved a second factor of their strongest tier recently (when they
    have one, S28), and whose
    password, if a directory checked it, came from a directory that allows administrator
    sign-in ("Enable administrator login")."""
    signed_in = require_session(req)
    if not signed_in.user.is_admin:
        raise Forbidden("This page is for administrators.")
    if sessions.password_directory(signed_in.session) is not None:
        ensure_admin_login_allowed(
            signed_in.session, context=req.audit_context(signed_in.user.username), clock=req.clock
        )
    next_page = _this_page(req) if req.method == "GET" else "/admin"
    require_fresh_strongest_factor(
        req,
        signed_in,
        next_page=next_page,
        max_age_seconds=ADMIN_SECOND_FACTOR_MAX_AGE_SECONDS,
        enrolment_required=True,
    )
    return signed_in


def require_fresh_strongest_factor(
    req: WebRequest,
    signed_in: SignedIn,
    *,
    next_page: str,
    max_age_seconds: int = CHANGE_SECOND_FACTOR_MAX_AGE_SECONDS,
    enrolment_required: bool = False,
) -> None:
    """S10, S28 before a sensitive change (factors, phone or e-mail, password, devices) or the
    admin console: a second factor of the user's strongest tier proven recently, else the
    browser goes to the challenge (or to enrolment) and comes back to ``next_page``."""
    try:
        flow.ensure_fresh_strongest_factor(
            signed_in.session,
            signed_in.user,
            policy.load_settings(),
            max_age_seconds=max_age_seconds,
            enrolment_required=enrolment_required,
            clock=req.clock,
        )
    except flow.EnrolmentRequired as exc:
        raise RedirectRequired(exc.message, ENROL_PAGE, {"next": next_page}) from exc
    except flow.SecondFactorRequired as exc:
        raise RedirectRequired(exc.message, MFA_PAGE, {"next": next_page}) from exc


def _this_page(req: WebRequest) -> str:
    query_string = urlencode(dict(req.query))
    return req.path + (f"?{query_string}" if query_string else "")
