"""Admin pages for hardware OATH tokens (/admin/mfa/tokens): the list, importing a CSV (the same
parser as ``idp token import``), assigning a token to a user and taking it back.

They live in the otp function because importing seals each token's secret with the data key
under the token store's {user, factor} context, which only this function's key grant allows.
Like the rest of the console, every route starts with ``guard.require_admin`` (a second factor
of the admin's strongest tier proven in the last 15 minutes), reads its form through
``web.read_form`` (CSRF), lets ``idp_core.mfa.tokens`` check and write, and answers a POST
with a 303 and a fixed notice; a refused POST shows the page again with the message.
"""

from __future__ import annotations

from typing import Any

from functions.otp.settings import OtpSettings
from idp_core import aws, guard, web
from idp_core.names import MAX_USERNAME_CHARS
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

PAGE = "/admin/mfa/tokens"
MAX_SERIAL_CHARS = 64
NOTICES = {
    "imported": "The tokens were imported.",
    "assigned": "The token was assigned; it works for the user at once.",
    "unassigned": "The token was taken back and is free to assign again.",
}
IMPORT_FIELDS = {"csv": web.Field("Token file (CSV)", web.MAX_BODY_BYTES)}
ASSIGN_FIELDS = {
    "serial": web.Field("Token serial", MAX_SERIAL_CHARS),
    "username": web.Field("Username", MAX_USERNAME_CHARS),
}


def _admin() -> tuple[web.WebRequest, web.SignedIn]:
    req = web.request()
    return req, guard.require_admin(req)


def _context(notice: str | None = None) -> dict[str, Any]:
    # The token store (with the TOTP and HOTP checks and the sealing) loads with the first
    # token page, not with this function's cold start, which most often serves a challenge.
    from idp_core.mfa import tokens

    return {"tokens": tokens.list_tokens(), "notice": notice}


def _start(fields: dict[str, web.Field]) -> tuple[web.WebRequest, web.SignedIn, dict[str, str]]:
    """A token form's common start: an admin, the page to show again on a refusal, the form."""
    req, signed_in = _admin()
    req.error_page = ("admin/tokens.html", _context())
    return req, signed_in, web.read_form(req, signed_in.session, fields)


def _done(req: web.WebRequest, notice: str) -> Response[str]:
    return web.redirect(req, PAGE, query={"notice": notice})


@router.get(PAGE)
def tokens_page() -> Response[str]:
    req, _ = _admin()
    return web.render(req, "admin/tokens.html", **_context(NOTICES.get(req.query.get("notice", ""))))


def _changes(req: web.WebRequest, signed_in: web.SignedIn, *, sealing: bool = True) -> dict[str, Any]:
    """When and by whom a change is made, and (to seal a secret) the data key."""
    key = {"kms": aws.client("kms"), "key_id": OtpSettings.of(req.settings).data_key_id} if sealing else {}
    return {"clock": req.clock, "context": req.audit_context(signed_in.user.username), **key}


@router.post(PAGE + "/import")
def import_tokens() -> Response[str]:
    from idp_core.mfa import tokens

    req, signed_in, form = _start(IMPORT_FIELDS)
    tokens.import_csv(form["csv"], **_changes(req, signed_in))
    return _done(req, "imported")


@router.post(PAGE + "/assign")
def assign_token() -> Response[str]:
    from idp_core.mfa import tokens

    req, signed_in, form = _start(ASSIGN_FIELDS)
    tokens.assign(form["serial"].strip(), form["username"], **_changes(req, signed_in))
    return _done(req, "assigned")


@router.post(PAGE + "/unassign")
def unassign_token() -> Response[str]:
    from idp_core.mfa import tokens

    req, signed_in, form = _start(ASSIGN_FIELDS)
    tokens.unassign(form["serial"].strip(), form["username"], **_changes(req, signed_in, sealing=False))
    return _done(req, "unassigned")
