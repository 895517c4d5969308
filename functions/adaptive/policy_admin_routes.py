"""The admin console for adaptive policies: /admin/adaptive (list, create, edit, delete).

Like the rest of the admin console, every route starts with ``guard.require_admin``, which
also demands a second factor proven in the last 15 minutes when the admin has one. A form
is read through ``web.read_form`` (CSRF, S16) and turned into an ``AdaptivePolicy``, which
validates itself: bad input (a malformed network, a device limit out of range, an unknown
action) gets the form back with the sentence and what the admin typed, and nothing is
written (S26). ``policies`` writes the audit event (S25) and refuses to delete a policy
that an app still uses.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from idp_core import apps, guard, web
from idp_core.adaptive import policies
from idp_core.adaptive.policies import ACTIONS, EXCEED_ACTIONS, AdaptivePolicy
from idp_core.audit import AuditContext
from idp_core.errors import BadRequest
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

MAX_NAME_CHARS = 63
# A list may fill the form (``MAX_CIDRS`` networks do not fit in one post anyway).
MAX_LIST_CHARS = web.MAX_BODY_BYTES
MAX_NUMBER_CHARS = 9
MAX_EMAIL_CHARS = 254
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
ACTION_LABELS = {
    policies.ALLOW: "Allow",
    policies.CHALLENGE: "Ask for a second factor",
    policies.DENY: "Deny",
}
# Notices are chosen by a fixed key in the query string, so a crafted link cannot make the
# console show text of the attacker's choosing.
NOTICES = {
    "policy-created": "The adaptive policy was created. Choose it for an app to apply it.",
    "policy-saved": "The adaptive policy was saved; sign-ins use it within a minute.",
    "policy-deleted": "The adaptive policy was deleted.",
}
POLICY_FIELDS = {
    "allow_cidrs": web.Field("Allow list", MAX_LIST_CHARS, required=False),
    "deny_cidrs": web.Field("Deny list", MAX_LIST_CHARS, required=False),
    "outside_allow": web.Field("Action outside the allow list", 16),
    "register_devices": web.Field("Allow users to register devices", 8, required=False),
    "max_devices": web.Field("Number of devices allowed", MAX_NUMBER_CHARS),
    "on_exceed": web.Field("Action if the number of devices is exceeded", 16),
    "alert_user": web.Field("Send e-mail alerts to users", 8, required=False),
    "alert_email": web.Field("Also alert this address", MAX_EMAIL_CHARS, required=False),
    "on_new_device": web.Field("Action for behaviour change (new device or network)", 16),
    "notify_new_sign_in": web.Field("E-mail users about a new device or network", 8, required=False),
    "trust_days": web.Field("Days a device may stay trusted", MAX_NUMBER_CHARS),
}
NEW_POLICY_FIELDS = {"name": web.Field("Policy name", MAX_NAME_CHARS), **POLICY_FIELDS}


# ---------------------------------------------------------------- helpers


def _admin() -> tuple[web.WebRequest, web.SignedIn]:
    req = web.request()
    return req, guard.require_admin(req)


def _actor(req: web.WebRequest, signed_in: web.SignedIn) -> AuditContext:
    return req.audit_context(signed_in.user.username)


def _page(req: web.WebRequest, template: str, **context: Any) -> Response[str]:
    notice = NOTICES.get(req.query.get("notice", ""))
    return web.render(req, f"admin/{template}", notice=notice, **context)


def _done(req: web.WebRequest, path: str, notice: str) -> Response[str]:
    return web.redirect(req, path, query={"notice": notice})


def _policy_view(policy: AdaptivePolicy) -> dict[str, Any]:
    """The form's values for a stored policy: one network per line."""
    return {
        "name": policy.name,
        "allow_cidrs": "\n".join(policy.allow_cidrs),
        "deny_cidrs": "\n".join(policy.deny_cidrs),
        "outside_allow": policy.outside_allow,
        "register_devices": policy.register_devices,
        "max_devices": str(policy.max_devices),
        "on_exceed": policy.on_exceed,
        "alert_user": policy.alert_user,
        "alert_email": policy.alert_email or "",
        "on_new_device": policy.on_new_device,
        "notify_new_sign_in": policy.notify_new_sign_in,
        "trust_days": str(policy.trust_days),
    }


def _form_view(form: Mapping[str, str], name: str = "") -> dict[str, Any]:
    """What the admin typed, shown again with the message when the form is refused."""
    boxes = ("register_devices", "alert_user", "notify_new_sign_in")
    view: dict[str, Any] = {field: form.get(field, "") for field in POLICY_FIELDS if field not in boxes}
    return {**view, **{field: bool(form.get(field)) for field in boxes}, "name": form.get("name", name)}


def _form_context(
    view: Mapping[str, Any], *, creating: bool, used_by: list[str] | None = None
) -> dict[str, Any]:
    return {
        "policy": view,
        "creating": creating,
        "apps": used_by or [],
        "actions": [(action, ACTION_LABELS[action]) for action in ACTIONS],
        "exceed_actions": [(action, ACTION_LABELS[action]) for action in EXCEED_ACTIONS],
    }


def _form_page(context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The form shown again with the message when the rest of the route fails."""
    return "admin/adaptive_policy.html", {"notice": None, **context}


def _whole_number(raw: str, label: str) -> int:
    text = raw.strip()
    if not text.isascii() or not _WHOLE_NUMBER.fullmatch(text):
        raise BadRequest(f"{label} must be a whole number.")
    return int(text)


def _networks(raw: str) -> tuple[str, ...]:
    # One network per line; blank lines and stray spaces are not networks.
    return tuple(raw.split())


def _policy_from_form(name: str, form: Mapping[str, str]) -> AdaptivePolicy:
    """The policy the form describes; ``AdaptivePolicy`` refuses an invalid one with a sentence."""
    return AdaptivePolicy(
        name=name,
        allow_cidrs=_networks(form.get("allow_cidrs", "")),
        deny_cidrs=_networks(form.get("deny_cidrs", "")),
        outside_allow=form["outside_allow"],
        register_devices=bool(form.get("register_devices")),
        max_devices=_whole_number(form["max_devices"], POLICY_FIELDS["max_devices"].label),
        on_exceed=form["on_exceed"],
        alert_user=bool(form.get("alert_user")),
        alert_email=form.get("alert_email", "").strip() or None,
        on_new_device=form["on_new_device"],
        notify_new_sign_in=bool(form.get("notify_new_sign_in")),
        trust_days=_whole_number(form["trust_days"], POLICY_FIELDS["trust_days"].label),
    )


# ---------------------------------------------------------------- the list


@router.get("/admin/adaptive")
def policies_page() -> Response[str]:
    req, _ = _admin()
    # One scan of the apps for the whole list, rather than ``policies.apps_using`` per policy.
    using: defaultdict[str, list[str]] = defaultdict(list)
    for app in apps.list_apps():
        if app.adaptive_policy:
            using[app.adaptive_policy].append(app.name)
    rows = [{"policy": policy, "apps": using[policy.name]} for policy in policies.list_policies()]
    return _page(req, "adaptive.html", policies=rows, labels=ACTION_LABELS)


# ---------------------------------------------------------------- create


def _defaults_view() -> dict[str, Any]:
    """The new-policy form starts from the secure defaults of ``AdaptivePolicy``."""
    return {**_policy_view(AdaptivePolicy(name="defaults")), "name": ""}


@router.get("/admin/adaptive/new")
def new_policy_page() -> Response[str]:
    req, _ = _admin()
    return _page(req, "adaptive_policy.html", **_form_context(_defaults_view(), creating=True))


@router.post("/admin/adaptive")
def create_policy() -> Response[str]:
    req, signed_in = _admin()
    req.error_page = _form_page(_form_context(_defaults_view(), creating=True))
    form = web.read_form(req, signed_in.session, NEW_POLICY_FIELDS)
    req.error_page = _form_page(_form_context(_form_view(form), creating=True))
    policy = policies.save_policy(
        _policy_from_form(form["name"], form), create=True, context=_actor(req, signed_in), clock=req.clock
    )
    return _done(req, f"/admin/adaptive/{policy.name}", "policy-created")


# ---------------------------------------------------------------- edit, delete


def _stored(req: web.WebRequest, name: str) -> AdaptivePolicy:
    """The policy the page is about (404 when there is none); a refused form shows it again."""
    policy = policies.get_policy(name)
    req.error_page = lambda: _form_page(
        _form_context(_policy_view(policy), creating=False, used_by=policies.apps_using(policy.name))
    )
    return policy


@router.get("/admin/adaptive/<name>")
def policy_page(name: str) -> Response[str]:
    req, _ = _admin()
    policy = policies.get_policy(name)
    used_by = policies.apps_using(policy.name)
    return _page(
        req, "adaptive_policy.html", **_form_context(_policy_view(policy), creating=False, used_by=used_by)
    )


@router.post("/admin/adaptive/<name>")
def save_policy(name: str) -> Response[str]:
    req, signed_in = _admin()
    stored = _stored(req, name)
    form = web.read_form(req, signed_in.session, POLICY_FIELDS)
    req.error_page = lambda: _form_page(
        _form_context(_form_view(form, stored.name), creating=False, used_by=policies.apps_using(stored.name))
    )
    policies.save_policy(
        _policy_from_form(stored.name, form), create=False, context=_actor(req, signed_in), clock=req.clock
    )
    return _done(req, f"/admin/adaptive/{stored.name}", "policy-saved")


@router.post("/admin/adaptive/<name>/delete")
def delete_policy(name: str) -> Response[str]:
    req, signed_in = _admin()
    stored = _stored(req, name)
    web.read_form(req, signed_in.session, {})
    policies.delete_policy(stored.name, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, "/admin/adaptive", "policy-deleted")
