"""Who is signed in: the session cookie, checked on every request that needs it (S3, S14, S15)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from idp_core import sessions
from idp_core.errors import AuthenticationRequired, Forbidden
from idp_core.models import Session, User
from idp_core.web.request import WebRequest
from idp_core.web.responses import clear_cookie, cookie_name, set_cookie

SESSION_COOKIE = "idp_session"


class LoginRequired(AuthenticationRequired):
    """Not signed in: the error mapping sends the browser to /login with these parameters."""

    def __init__(self, login_query: Mapping[str, str | None]) -> None:
        super().__init__("Sign in to continue.")
        self.login_query = dict(login_query)


@dataclass(frozen=True)
class SignedIn:
    token: str
    session: Session
    user: User

    @property
    def csrf_token(self) -> str:
        return str(self.session.csrf_token)


def session_token(req: WebRequest) -> str | None:
    return req.cookies.get(cookie_name(req, SESSION_COOKIE)) or None


def session_cookie(req: WebRequest, token: str) -> str:
    # No Max-Age: a browser-session cookie; the server enforces the idle and absolute limits.
    return set_cookie(req, SESSION_COOKIE, token)


def clear_session_cookie(req: WebRequest) -> str:
    return clear_cookie(req, SESSION_COOKIE)


def current_session(req: WebRequest) -> SignedIn | None:
    """The complete, live session of an enabled user, or None; looked up once per request.

    A session whose user was disabled or deleted is ended on the spot, so the check does
    not depend on the by_user index having caught up with the disabling.
    """
    if req.session_loaded:
        return req.signed_in_cache
    req.session_loaded = True
    token = session_token(req)
    session = sessions.find_session(token, policy=req.settings.sessions, clock=req.clock)
    if token is None or session is None or not sessions.is_complete(session):
        return None
    try:
        user = User.get(session.username)
    except User.DoesNotExist:
        user = None
    if user is None or user.disabled:
        sessions.end_session(token)
        return None
    req.signed_in_cache = SignedIn(token=token, session=session, user=user)
    return req.signed_in_cache


def require_session(req: WebRequest, *, login_query: Mapping[str, str | None] | None = None) -> SignedIn:
    """The signed-in user, or LoginRequired (-> /login?next=<this page>) for a GET page.

    ``login_query`` replaces the default ``next`` parameter (the launch page passes the
    app and RelayState instead).
    """
    signed_in = current_session(req)
    if signed_in is None:
        if login_query is None:
            query_string = urlencode(dict(req.query))
            next_page = req.path + (f"?{query_string}" if query_string else "")
            login_query = {"next": next_page} if req.method == "GET" else {}
        raise LoginRequired(login_query)
    return signed_in


def require_admin(req: WebRequest) -> SignedIn:
    signed_in = require_session(req)
    if not signed_in.user.is_admin:
        raise Forbidden("This page is for administrators.")
    return signed_in
