"""Steps for tests of the admin console over HTTP: post a form as the browser does, with the
session's CSRF token read from a console page."""

from __future__ import annotations

import requests

from tests.helpers.sso import Sso, csrf_token


def page_token(sso: Sso, browser: requests.Session, path: str = "/admin") -> str:
    page = sso.get(browser, path)
    assert page.status_code == 200, page.text
    return csrf_token(page.text)


def submit(
    sso: Sso, browser: requests.Session, path: str, data: dict[str, str] | None = None
) -> requests.Response:
    """Post a console form the way the browser does: with the session's CSRF token."""
    return sso.post(browser, path, {"csrf_token": page_token(sso, browser), **(data or {})})
