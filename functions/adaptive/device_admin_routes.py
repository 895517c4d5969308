"""The admin's view of a user's devices: /admin/devices/<user> (list, rename, remove, untrust)
and the unlock of the account lockout from the same page.

Like the rest of the admin console, every route starts with ``guard.require_admin`` (a
signed-in non-admin gets 403), reads its form through ``web.read_form`` (CSRF, S16) and
calls one logic function of ``idp_core.adaptive.devices`` or ``idp_core.accounts``, which
validates the input and writes the audit event with the admin as its actor (S25). A POST
answers with a 303 to the user's devices page with a fixed notice; a refused one shows the
page again with the message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from functions.adaptive import pages
from idp_core import accounts, guard, lockout, web
from idp_core.adaptive import devices
from idp_core.audit import AuditContext
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

# Longer than a valid name, so that ``devices.clean_name`` says what a name may be.
MAX_NAME_FIELD_CHARS = 256
# Notices are chosen by a fixed key in the query string, so a crafted link cannot make the
# console show text of the attacker's choosing.
NOTICES = {
    "device-renamed": "The device was renamed.",
    "device-removed": "The device was removed; it no longer counts against the user's device limit.",
    "device-untrusted": "The device is no longer trusted: the user's next sign-in from it needs a second "
    "factor again.",
    "user-unlocked": "The user was unlocked; their failure counts are back to zero.",
}
NAME_FIELDS = {"name": web.Field("Name", MAX_NAME_FIELD_CHARS, required=False)}


def _actor(req: web.WebRequest, signed_in: web.SignedIn) -> AuditContext:
    return req.audit_context(signed_in.user.username)


def _devices_path(username: str) -> str:
    return "/admin/devices/" + quote(username, safe="")


def _page_context(req: web.WebRequest, username: str) -> dict[str, Any]:
    # Links percent-encode names; the gateway may or may not have decoded the path already,
    # and names never contain '%', so decoding once is right in both cases.
    account = accounts.get_user(unquote(username))
    rows = pages.device_rows(
        devices.list_devices(account.username),
        account,
        device_token=guard.device_token(req),
        now=req.clock.now(),
    )
    return {
        "account": account,
        "devices": rows,
        "device_count": int(account.device_count or 0),
        "locked": lockout.is_locked(account, req.clock),
        "base": _devices_path(account.username),
    }


def _action(
    username: str, fields: dict[str, web.Field]
) -> tuple[web.WebRequest, web.SignedIn, str, dict[str, str]]:
    """The common start of every form on the page: admin, the user exists, the form is valid."""
    req = web.request()
    signed_in = guard.require_admin(req)
    context = _page_context(req, username)
    req.error_page = ("admin/devices.html", {"notice": None, **context})
    form = web.read_form(req, signed_in.session, fields)
    return req, signed_in, context["account"].username, form


def _done(req: web.WebRequest, username: str, notice: str) -> Response[str]:
    return web.redirect(req, _devices_path(username), query={"notice": notice})


@router.get("/admin/devices/<username>")
def user_devices_page(username: str) -> Response[str]:
    req = web.request()
    guard.require_admin(req)
    return web.render(
        req,
        "admin/devices.html",
        notice=NOTICES.get(req.query.get("notice", "")),
        **_page_context(req, username),
    )


@router.post("/admin/devices/<username>/<device_id>/rename")
def rename_device(username: str, device_id: str) -> Response[str]:
    req, signed_in, name, form = _action(username, NAME_FIELDS)
    devices.rename(name, device_id, form.get("name", ""), context=_actor(req, signed_in), clock=req.clock)
    return _done(req, name, "device-renamed")


@router.post("/admin/devices/<username>/<device_id>/remove")
def remove_device(username: str, device_id: str) -> Response[str]:
    req, signed_in, name, _ = _action(username, {})
    devices.remove(name, device_id, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, name, "device-removed")


@router.post("/admin/devices/<username>/<device_id>/untrust")
def untrust_device(username: str, device_id: str) -> Response[str]:
    req, signed_in, name, _ = _action(username, {})
    devices.untrust(name, device_id, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, name, "device-untrusted")


@router.post("/admin/devices/<username>/unlock")
def unlock_user(username: str) -> Response[str]:
    req, signed_in, name, _ = _action(username, {})
    accounts.unlock_user(name, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, name, "user-unlocked")
