"""Steps with a security key over HTTP (the software key of ``soft_key``): register one on
/me/mfa, and answer a challenge page with it, as the pages' script does in a browser."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import requests

from idp_core.mfa.webauthn import RelyingParty
from tests.helpers.mfa import MFA_APP
from tests.helpers.soft_key import SoftKey
from tests.helpers.sso import Sso, csrf_token

_FACTOR_FIELD = re.compile(r'name="factor" value="([^"]+)"')


def soft_key_for(sso: Sso, **knobs: object) -> SoftKey:
    """A key that answers from the origin the site's pages have (locally http://localhost:PORT)."""
    return SoftKey(origin=RelyingParty.of(sso.url).origin, **knobs)  # type: ignore[arg-type]


def register_key(
    sso: Sso, browser: requests.Session, key: SoftKey, label: str = "YubiKey"
) -> requests.Response:
    """Add ``key`` on /me/mfa: the options, then the key's answer with its name."""
    page = sso.get(browser, "/me/mfa/webauthn/new")
    assert page.status_code == 200, page.text[:500]
    token = csrf_token(page.text)
    options = sso.post(browser, "/me/mfa/webauthn/options", {"csrf_token": token})
    assert options.status_code == 200, options.text[:500]
    return sso.post(
        browser,
        "/me/mfa/webauthn",
        {"csrf_token": token, "label": label, "credential": key.create(options.text)},
    )


def key_challenge(sso: Sso, browser: requests.Session, app: str = MFA_APP) -> dict[str, str]:
    """The fields the challenge page for ``app`` posts with a security key's answer."""
    page = sso.get(browser, f"/mfa?app={app}")
    assert page.status_code == 200 and "Use security key" in page.text, page.text[:800]
    factor = _FACTOR_FIELD.search(page.text)
    assert factor is not None
    return {"csrf_token": csrf_token(page.text), "factor": factor.group(1), "method": "webauthn", "app": app}


def key_options(sso: Sso, browser: requests.Session, fields: dict[str, str]) -> str:
    options = sso.post(browser, "/mfa/webauthn/options", fields)
    assert options.status_code == 200, options.text[:500]
    return options.text


def answer_with_key(
    sso: Sso, browser: requests.Session, key: SoftKey, app: str = MFA_APP, **get_knobs: object
) -> requests.Response:
    """Fetch the options as the page's script does, let ``key`` answer, post the answer."""
    fields = key_challenge(sso, browser, app)
    answer = key.get(key_options(sso, browser, fields), **get_knobs)  # type: ignore[arg-type]
    return sso.post(browser, "/mfa/verify", {**fields, "code": answer})


def passkey_options(
    sso: Sso, browser: requests.Session, app: str | None = None, *, next_page: str | None = None
) -> tuple[str, str]:
    """The sign-in form's token and the options its script fetches for "Sign in with a passkey"."""
    query = urlencode(_target(app, next_page))
    page = sso.get(browser, "/login" + (f"?{query}" if query else ""))
    assert page.status_code == 200 and "Sign in with a passkey" in page.text, page.text[:500]
    token = csrf_token(page.text)
    options = sso.post(browser, "/login/passkey/options", {"csrf_token": token})
    assert options.status_code == 200, options.text[:500]
    return token, options.text


def sign_in_with_passkey(
    sso: Sso, browser: requests.Session, key: SoftKey, app: str | None = None, *, next_page: str | None = None
) -> requests.Response:
    """Sign in on /login with ``key``'s passkey, as the page's script does; for ``app``, or to
    continue to ``next_page``."""
    token, options = passkey_options(sso, browser, app, next_page=next_page)
    return sso.post(
        browser,
        "/login/passkey",
        {"csrf_token": token, "credential": key.get(options), **_target(app, next_page)},
    )


def _target(app: str | None, next_page: str | None) -> dict[str, str]:
    return {name: value for name, value in (("app", app), ("next", next_page)) if value}
