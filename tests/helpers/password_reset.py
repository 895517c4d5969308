"""Steps for the forgot-password tests: ask for a link on /login/forgot, read it from the
e-mail moto's SES accepted, follow it and set the new password."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import requests

from tests.helpers.mfa import emails_to
from tests.helpers.sso import Sso, csrf_token

FORGOT = "/login/forgot"
RESET = "/login/reset"
NEW_PASSWORD = "/login/reset/password"
_LINK = re.compile(r"(https?://\S+/login/reset\?token=\S+)")


def ask_for_link(sso: Sso, browser: requests.Session, username: str) -> requests.Response:
    """Ask for a link for ``username`` (or an e-mail address) on the form."""
    page = sso.get(browser, FORGOT)
    assert page.status_code == 200, page.text[:300]
    return sso.post(browser, FORGOT, {"csrf_token": csrf_token(page.text), "username": username})


def last_link(address: str) -> str:
    """The token of the newest reset link e-mailed to ``address``."""
    links = [match.group(1) for mail in emails_to(address) for match in [_LINK.search(mail.body)] if match]
    assert links, f"no reset link was e-mailed to {address}"
    return parse_qs(urlsplit(links[-1]).query)["token"][0]


def follow_link(sso: Sso, browser: requests.Session, token: str) -> requests.Response:
    """Open the link and press "Continue"."""
    page = sso.get(browser, RESET + "?token=" + token)
    assert page.status_code == 200 and "Continue" in page.text, page.text[:300]
    return sso.post(browser, RESET, {"csrf_token": csrf_token(page.text), "token": token})


def set_password(
    sso: Sso, browser: requests.Session, password: str, repeat: str | None = None
) -> requests.Response:
    page = sso.get(browser, NEW_PASSWORD)
    assert page.status_code == 200, page.text[:300]
    return sso.post(
        browser,
        NEW_PASSWORD,
        {
            "csrf_token": csrf_token(page.text),
            "new_password": password,
            "repeat_password": repeat or password,
        },
    )
