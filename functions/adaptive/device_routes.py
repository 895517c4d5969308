"""End-user self-service for registered devices: /me/devices (list, rename, remove, untrust).

Only a complete session reaches these pages (``guard.require_session``), with a second factor of
the user's strongest tier proven in the last minutes when they have one (S28), and every route works
on the signed-in user's own devices: a device id of another user is simply not found (404).
A form is read through ``web.read_form`` (CSRF, S16) before ``idp_core.adaptive.devices``
validates and writes the change and its audit event (S25); a POST answers with a 303 to the
list with a fixed notice (Post/Redirect/Get), a refused one shows the list with the message.
"""

from __future__ import annotations

from typing import Any

from functions.adaptive import pages
from idp_core import guard, web
from idp_core.adaptive import devices
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

# Longer than a valid name, so that ``devices.clean_name`` says what a name may be.
MAX_NAME_FIELD_CHARS = 256
# Notices are chosen by a fixed key, so a crafted link cannot make the page say anything else.
NOTICES = {
    "renamed": "The device was renamed.",
    "removed": "The device was removed. It is registered again when you next sign in from it to an app "
    "whose policy registers devices.",
    "untrusted": "The device is no longer trusted: signing in from it asks for your second factor again.",
}
NAME_FIELDS = {"name": web.Field("Name", MAX_NAME_FIELD_CHARS, required=False)}


def _list_context(req: web.WebRequest, signed_in: web.SignedIn) -> dict[str, Any]:
    rows = pages.device_rows(
        devices.list_devices(signed_in.user.username),
        signed_in.user,
        device_token=guard.device_token(req),
        now=req.clock.now(),
    )
    return {"devices": rows}


def _session(req: web.WebRequest) -> web.SignedIn:
    signed_in = guard.require_session(req)
    guard.require_fresh_strongest_factor(req, signed_in, next_page="/me/devices")
    return signed_in


def _signed_in() -> tuple[web.WebRequest, web.SignedIn]:
    """The common start of every form on the list; a refused form shows the list again."""
    req = web.request()
    signed_in = _session(req)
    req.error_page = lambda: ("me_devices.html", {"notice": None, **_list_context(req, signed_in)})
    return req, signed_in


def _done(req: web.WebRequest, notice: str) -> Response[str]:
    return web.redirect(req, "/me/devices", query={"notice": notice})


@router.get("/me/devices")
def devices_page() -> Response[str]:
    req = web.request()
    signed_in = _session(req)
    return web.render(
        req,
        "me_devices.html",
        notice=NOTICES.get(req.query.get("notice", "")),
        **_list_context(req, signed_in),
    )


@router.post("/me/devices/<device_id>/rename")
def rename_device(device_id: str) -> Response[str]:
    req, signed_in = _signed_in()
    form = web.read_form(req, signed_in.session, NAME_FIELDS)
    devices.rename(
        signed_in.user.username,
        device_id,
        form.get("name", ""),
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )
    return _done(req, "renamed")


@router.post("/me/devices/<device_id>/remove")
def remove_device(device_id: str) -> Response[str]:
    req, signed_in = _signed_in()
    web.read_form(req, signed_in.session, {})
    devices.remove(
        signed_in.user.username,
        device_id,
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )
    return _done(req, "removed")


@router.post("/me/devices/<device_id>/untrust")
def untrust_device(device_id: str) -> Response[str]:
    req, signed_in = _signed_in()
    web.read_form(req, signed_in.session, {})
    devices.untrust(
        signed_in.user.username,
        device_id,
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )
    return _done(req, "untrusted")
