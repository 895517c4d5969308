"""The browser hand-off of ``idp aws login --browser`` (``idp_core.device_login``, after RFC 8628).

For the command line, two JSON endpoints without a session: ``/device/authorize`` starts a
hand-off (with the command line's X25519 public key, ``client_public_key``) and ``/device/token``
is polled for its SAMLResponse, sealed to that key (``sealed_saml_response``: ``idp_public_key``,
``nonce``, ``ciphertext``; ``idp_core.handoff_seal``). The device code travels in the POST body
only, never in a URL. For the signed-in user, ``/device`` asks for the code (filled
in from the command line's link, never approved by itself) and shows what asked for it, with
"Approve" (the handler's ``/device/approve``: the app's launch) and "Deny".
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from idp_core import session_guard, web
from idp_core.resolver import APIGatewayRouter, Response
from idp_core.web.target import MAX_APP_NAME_CHARS

if TYPE_CHECKING:
    from idp_core.device_login import Handoff

router = APIGatewayRouter()

PAGE = "/device"
CODE_FIELD = "user_code"
CODE_FIELDS = {CODE_FIELD: web.Field("Code", 32)}
# idp_core.handoff_seal.CLIENT_KEY_FIELD (not imported here: it loads cryptography), which
# checks the key and says what it must be.
CLIENT_KEY_FIELD = "client_public_key"
AUTHORIZE_FIELDS = {
    "app": web.Field("The app", MAX_APP_NAME_CHARS),
    CLIENT_KEY_FIELD: web.Field(CLIENT_KEY_FIELD, 64, required=False),
}
TOKEN_FIELDS = {"grant_type": web.Field("grant_type", 64), "device_code": web.Field("device_code", 64)}
CODE_TEMPLATE = "device.html"
CONFIRM_TEMPLATE = "device_confirm.html"


def _api_form(req: web.WebRequest, fields: dict[str, web.Field]) -> dict[str, str]:
    """The fields of a program's form post: no cookie, so no session and no CSRF token."""
    req.json_errors = True
    return web.read_api_form(req, fields)


@router.post("/device/authorize")
def authorize() -> Response[str]:
    from idp_core import device_login

    req = web.request()
    form = _api_form(req, AUTHORIZE_FIELDS)
    started = device_login.start(form["app"], req.scope(), client_public_key=form.get(CLIENT_KEY_FIELD, ""))
    page = req.absolute_url(device_login.VERIFICATION_PATH)
    return web.json_response(
        json.dumps(
            {
                "device_code": started.device_code,
                "user_code": started.user_code,
                "verification_uri": page,
                "verification_uri_complete": f"{page}?{CODE_FIELD}={started.user_code}",
                "expires_in": started.expires_in,
                "interval": started.interval,
            }
        )
    )


@router.post("/device/token")
def token() -> Response[str]:
    from idp_core import device_login

    req = web.request()
    form = _api_form(req, TOKEN_FIELDS)
    if form["grant_type"] != device_login.GRANT_TYPE:
        raise device_login.HandoffRefused(
            "unsupported_grant_type", f"This endpoint answers grant_type {device_login.GRANT_TYPE} only."
        )
    sealed = device_login.pick_up(form["device_code"], req.scope())
    return web.json_response(json.dumps({"sealed_saml_response": sealed}))


@router.get(PAGE)
def code_page() -> Response[str]:
    req = web.request()
    signed_in = session_guard.require_session(req)
    typed = req.query_param(CODE_FIELD, max_chars=CODE_FIELDS[CODE_FIELD].max_chars) or ""
    return web.render(req, CODE_TEMPLATE, user_code=typed, username=signed_in.user.display_username)


@router.post(PAGE)
def confirm_page() -> Response[str]:
    from idp_core import device_login

    req = web.request()
    signed_in = session_guard.require_session(req)
    form = web.read_form(req, signed_in.session, CODE_FIELDS)
    req.error_page = (CODE_TEMPLATE, {"user_code": form[CODE_FIELD]})
    handoff = device_login.find(form[CODE_FIELD], signed_in.user, req.scope(signed_in.user.username))
    return confirmation(req, handoff)


def confirmation(req: web.WebRequest, handoff: Handoff) -> Response[str]:
    """The page that names the app and what asked for it, with "Approve" and "Deny"."""
    from idp_core.apps import find_app
    from idp_core.device_login import shown_code

    app = find_app(handoff.app)
    context: dict[str, Any] = {
        "handoff": handoff,
        "shown_code": shown_code(handoff.user_code),
        "app_name": app.display_name if app is not None else handoff.app,
    }
    return web.render(req, CONFIRM_TEMPLATE, **context)


@router.post("/device/deny")
def deny() -> Response[str]:
    from idp_core import device_login

    req = web.request()
    signed_in = session_guard.require_session(req)
    form = web.read_form(req, signed_in.session, CODE_FIELDS)
    scope = req.scope(signed_in.user.username)
    device_login.deny(device_login.find(form[CODE_FIELD], signed_in.user, scope), signed_in.user, scope)
    return web.render(req, "device_done.html", approved=False)
