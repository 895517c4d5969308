"""``idp aws login --browser``: the sign-in happens in the browser, as ``aws sso login``'s does
(OAuth's device authorization grant, RFC 8628), for users and apps whose second factor only a
browser can give (security keys and passkeys).

The command line asks the IdP for a hand-off with a public key made for it, shows the code and
the page to type it at (and opens that page), then polls with its device code, which never
leaves the POST bodies, until the user approved or denied in the browser, or the code expired.
The SAMLResponse it picks up is sealed to that key (``idp_core.handoff_seal``: the IdP's table
never holds it in a usable form); opened with the private key, which lives only in this
process's memory, it goes the way of a terminal sign-in's (roles, STS, the credentials file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idp_cli.aws_credentials import AssertionUnusable, read_assertion
from idp_cli.aws_signin import Browser, Posted, SignInImpossible, SignInRefused, origin_of
from idp_core import handoff_seal

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628 3.5: after "slow_down", every later poll waits this much longer.
SLOW_DOWN_SECONDS = 5
# Polls beyond the code's life (its expiry is the IdP's to say) before giving up anyway.
EXTRA_POLLS = 3
_HTTP_OK = 200


@dataclass(frozen=True)
class Started:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


def hand_off(
    browser: Browser,
    app: str,
    *,
    tell: Callable[[str], None],
    open_page: Callable[[str], object] | None,
    wait: Callable[[float], None],
) -> Posted:
    """The SAMLResponse of the user's approval in the browser for ``app``. ``tell`` shows the
    user what to do, ``open_page`` (if given) opens the page with the code filled in, and
    ``wait`` waits between two polls."""
    client_key, client_public_key = handoff_seal.new_client_key()
    started = _start(browser, app, client_public_key)
    tell(
        f"To sign in, open {started.verification_uri} in your browser and enter the code "
        f"{started.user_code}\n(or open {started.verification_uri_complete}).\n"
        "Waiting for you to approve it there...\n"
    )
    if open_page is not None:
        open_page(started.verification_uri_complete)
    sealed = _poll(browser, started, wait)
    try:
        opened = handoff_seal.open_sealed(
            handoff_seal.Sealed.from_fields(sealed), client_key, handoff_seal.handoff_key(started.device_code)
        )
    except handoff_seal.SealUnopenable as exc:
        raise SignInImpossible(str(exc)) from exc
    saml_response = opened.decode("ascii", errors="replace")
    try:
        recipient = read_assertion(saml_response).recipient
    except AssertionUnusable as exc:
        raise SignInImpossible(str(exc)) from exc
    # Where the assertion says it is for (signed): the CLI then checks that it is AWS's.
    return Posted(recipient, saml_response)


def _start(browser: Browser, app: str, client_public_key: str) -> Started:
    status, answer = browser.post_json(
        "/device/authorize", {"app": app, handoff_seal.CLIENT_KEY_FIELD: client_public_key}
    )
    if status != _HTTP_OK:
        raise SignInRefused(_description(answer, status))
    try:
        started = Started(
            device_code=str(answer["device_code"]),
            user_code=str(answer["user_code"]),
            verification_uri=str(answer["verification_uri"]),
            verification_uri_complete=str(answer["verification_uri_complete"]),
            expires_in=int(answer["expires_in"]),
            interval=max(1, int(answer["interval"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SignInImpossible(f"The IdP's answer to a browser sign-in lacks {exc}.") from exc
    for page in (started.verification_uri, started.verification_uri_complete):
        # The user is sent to these pages: only ever the IdP's own.
        if origin_of(page) != browser.origin:
            raise SignInImpossible(f"The IdP names {page} for the sign-in, which is not the IdP; not used.")
    return started


def _poll(browser: Browser, started: Started, wait: Callable[[float], None]) -> object:
    """The sealed SAMLResponse's fields, once the user approved."""
    interval = started.interval
    for _ in range(started.expires_in // started.interval + EXTRA_POLLS):
        wait(interval)
        status, answer = browser.post_json(
            "/device/token", {"grant_type": GRANT_TYPE, "device_code": started.device_code}
        )
        if status == _HTTP_OK and "sealed_saml_response" in answer:
            return answer["sealed_saml_response"]
        error = answer.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_SECONDS
            continue
        raise SignInRefused(_description(answer, status))
    raise SignInRefused("The code expired before it was approved; run the command again.")


def _description(answer: dict[str, Any], status: int) -> str:
    return str(answer.get("error_description") or answer.get("error") or f"the IdP answered {status}")
