"""The session cookie and what a request knows of its session: the signed-in user it carries
(``SignedIn``, kept on the request once looked up) and the redirects that send a browser to
sign in first. Checking a session (S3, S14, S15) is ``idp_core.guard``'s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idp_core.errors import AuthenticationRequired
from idp_core.models import Session, User
from idp_core.web.request import WebRequest
from idp_core.web.responses import clear_cookie, cookie_name, set_cookie

SESSION_COOKIE = "idp_session"


class RedirectRequired(AuthenticationRequired):
    """The browser must first visit another page (sign in, a second factor, enrolment)."""

    def __init__(self, message: str, path: str, query: Mapping[str, str | None]) -> None:
        super().__init__(message)
        self.path = path
        self.query = dict(query)


class LoginRequired(RedirectRequired):
    """Not signed in: the error mapping sends the browser to /login with these parameters."""

    def __init__(self, login_query: Mapping[str, str | None]) -> None:
        super().__init__("Sign in to continue.", "/login", login_query)


@dataclass(frozen=True)
class SignedIn:
    token: str
    session: Session
    user: User
    # Items read together with the user (``guard.session_in_progress(also=...)``), None if missing.
    items: tuple[Any, ...] = ()

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
