"""Steps for tests of the console and the user's pages over HTTP: post a form as the browser
does, with the session's CSRF token read from a page, and read a page's text."""

from __future__ import annotations

import html

import requests

from tests.helpers.sso import Sso, csrf_token


def page_token(sso: Sso, browser: requests.Session, path: str = "/admin") -> str:
    page = sso.get(browser, path)
    assert page.status_code == 200, page.text[:500]
    return csrf_token(page.text)


def submit(
    sso: Sso,
    browser: requests.Session,
    path: str,
    data: dict[str, str] | None = None,
    *,
    page: str = "/admin",
) -> requests.Response:
    """Post a form the way the browser does: with the CSRF token of the page it is on."""
    return sso.post(browser, path, {"csrf_token": page_token(sso, browser, page), **(data or {})})


def text_of(response: requests.Response) -> str:
    return html.unescape(response.text)
