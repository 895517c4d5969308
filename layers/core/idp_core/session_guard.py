"""Who is signed in: the session cookie checked on every page that needs it (S3, S14, S15)
and the device cookie the adaptive policies judge.

The checks that need more (a recent second factor, S10 and S28; the directory's "Enable
administrator login") are ``idp_core.guard``'s, above this module: a page for any signed-in
user (the sign-in, the launch, the challenge) imports this module alone, so its function's
cold start loads neither the second-factor rules nor the directory store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from idp_core import sessions
from idp_core.adaptive.devices import DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE_SECONDS
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
            login_query = {"next": this_page(req)} if req.method == "GET" else {}
        half_way = session_in_progress(req)
        if half_way is not None:
            # Password done, second factor or enrolment still owed: only the MFA pages (S14).
            owed = sessions.pending_factors(half_way.session)
            page = ENROL_PAGE if sessions.OWES_ENROLMENT in owed else MFA_PAGE
            if owed == {sessions.OWES_NEW_PASSWORD}:
                page = NEW_PASSWORD_PAGE
            raise RedirectRequired("Finish signing in first.", page, login_query)
        raise LoginRequired(login_query)
    return signed_in


def this_page(req: WebRequest) -> str:
    """This page's path and query, to come back to after signing in or a second factor."""
    query_string = urlencode(dict(req.query))
    return req.path + (f"?{query_string}" if query_string else "")
