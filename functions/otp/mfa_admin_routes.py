"""Admin pages for second factors: "2FA options for end users" (/admin/mfa) and each app's
"App authentication policy" (/admin/mfa/apps/<name>).

Like the rest of the admin console, every route starts with ``guard.require_admin``, which
also demands a second factor proven in the last 15 minutes when the admin has one. A form
is read and parsed completely before ``policy`` validates and writes it, so bad input gets
the form back with a message and nothing is written (S26); every change is audited (S25).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from idp_core import guard, web
from idp_core.errors import BadRequest
from idp_core.mfa import methods as registry
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

MAX_NUMBER_CHARS = 9
MAX_COUNTRIES_CHARS = 1024
COUNTRY_CODE_LENGTH = 2
MAX_MODELS_CHARS = 4000
NOTICES = {
    "settings-saved": "The 2FA options were saved.",
    "policy-saved": "The app's authentication policy was saved.",
}
LIMIT_FIELDS = {
    "per_user_per_hour": "Codes per user per hour",
    "per_number_per_day": "Codes per phone number or address per day",
    "per_ip_per_hour": "Codes per source IP address per hour",
    "account_per_day": "Codes for the whole account per day",
    "first_resend_wait_seconds": "Wait before the first resend (seconds)",
}
SETTINGS_FIELDS = {
    "default_method": web.Field("Default method", 16),
    "enrol_at_sign_in": web.Field("Enrol at sign-in", 8, required=False),
    "allowed_countries": web.Field("Countries for text messages", MAX_COUNTRIES_CHARS, required=False),
    **{
        f"allowed_{method}": web.Field(f"Allow {registry.label(method)}", 8, required=False)
        for method in registry.kinds()
    },
    **{name: web.Field(label, MAX_NUMBER_CHARS) for name, label in LIMIT_FIELDS.items()},
    "webauthn_user_verification": web.Field("Keys must check it is their owner", 8, required=False),
    "webauthn_models": web.Field("Allowed key models (AAGUIDs)", MAX_MODELS_CHARS, required=False),
}
APP_POLICY_FIELDS = {
    "mfa_required": web.Field("Enable 2-Factor Authentication (MFA)", 8, required=False),
    "phishing_resistant_only": web.Field("Phishing-resistant only", 8, required=False),
    "adaptive_policy": web.Field("Adaptive authentication policy", 63, required=False),
    **{
        f"method_{method}": web.Field(f"Accept {registry.label(method)}", 8, required=False)
        for method in registry.kinds()
    },
}


def _admin() -> tuple[web.WebRequest, web.SignedIn]:
    req = web.request()
    return req, guard.require_admin(req)


def _methods() -> list[dict[str, str]]:
    return [{"method": method, "label": registry.label(method)} for method in registry.kinds()]


def _settings_view(settings: Any) -> dict[str, Any]:
    limits = settings.sms
    return {
        "default_method": settings.default_method,
        "allowed": set(settings.allowed_methods),
        "enrol_at_sign_in": bool(settings.enrol_at_sign_in),
        "limits": {name: str(getattr(limits, name)) for name in LIMIT_FIELDS},
        "allowed_countries": ", ".join(limits.allowed_countries),
        "webauthn_user_verification": settings.webauthn_user_verification,
        "webauthn_models": ", ".join(settings.webauthn_models),
    }


def _form_view(form: Mapping[str, str]) -> dict[str, Any]:
    """What the admin typed, shown again with the message when the form is refused."""
    return {
        "default_method": form.get("default_method", ""),
        "allowed": {method for method in registry.kinds() if form.get(f"allowed_{method}")},
        "enrol_at_sign_in": bool(form.get("enrol_at_sign_in")),
        "limits": {name: form.get(name, "") for name in LIMIT_FIELDS},
        "allowed_countries": form.get("allowed_countries", ""),
        "webauthn_user_verification": "required" if form.get("webauthn_user_verification") else "preferred",
        "webauthn_models": form.get("webauthn_models", ""),
    }


def _settings_page_context(view: dict[str, Any]) -> dict[str, Any]:
    from idp_core import apps

    return {"settings": view, "methods": _methods(), "limit_labels": LIMIT_FIELDS, "apps": apps.list_apps()}


def _whole_number(raw: str, label: str) -> int:
    text = raw.strip()
    if not text.isascii() or not text.isdigit():
        raise BadRequest(f"{label} must be a whole number.")
    return int(text)


def _countries(raw: str) -> tuple[str, ...]:
    parts = [part.strip().upper() for part in raw.replace(";", ",").replace(" ", ",").split(",")]
    codes = tuple(dict.fromkeys(part for part in parts if part))
    for code in codes:
        if len(code) != COUNTRY_CODE_LENGTH or not code.isascii() or not code.isalpha():
            raise BadRequest(
                f"{code!r} is not a country code; list two-letter ISO codes "
                "separated by commas, e.g. US, GB, DE."
            )
    return codes


def _settings_from_form(current: Any, form: Mapping[str, str]) -> Any:
    """New settings from the form; ``policy.save_settings`` validates the combination."""
    limits = dataclasses.replace(
        current.sms,
        allowed_countries=_countries(form.get("allowed_countries", "")),
        **{name: _whole_number(form[name], label) for name, label in LIMIT_FIELDS.items()},
    )
    default_method = form["default_method"]
    if default_method not in registry.kinds():
        raise BadRequest("Choose the default method from the list.")
    return dataclasses.replace(
        current,
        default_method=default_method,
        allowed_methods=tuple(method for method in registry.kinds() if form.get(f"allowed_{method}")),
        enrol_at_sign_in=bool(form.get("enrol_at_sign_in")),
        sms=limits,
        webauthn_user_verification="required" if form.get("webauthn_user_verification") else "preferred",
        webauthn_models=tuple(m.strip() for m in form.get("webauthn_models", "").split(",") if m.strip()),
    )


@router.get("/admin/mfa")
def settings_page() -> Response[str]:
    from idp_core.mfa import policy

    req, _ = _admin()
    context = _settings_page_context(_settings_view(policy.load_settings()))
    return web.render(req, "admin/mfa.html", notice=NOTICES.get(req.query.get("notice", "")), **context)


@router.post("/admin/mfa")
def save_settings() -> Response[str]:
    from idp_core.mfa import policy

    req, signed_in = _admin()
    current = policy.load_settings()
    req.error_page = lambda: (
        "admin/mfa.html",
        {"notice": None, **_settings_page_context(_settings_view(current))},
    )
    form = web.read_form(req, signed_in.session, SETTINGS_FIELDS)
    req.error_page = lambda: ("admin/mfa.html", {"notice": None, **_settings_page_context(_form_view(form))})
    policy.save_settings(
        _settings_from_form(current, form),
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )
    return web.redirect(req, "/admin/mfa", query={"notice": "settings-saved"})


def _app_context(name: str) -> dict[str, Any]:
    from idp_core import apps
    from idp_core.adaptive import policies
    from idp_core.mfa import policy

    app = apps.get_app(name)
    settings = policy.load_settings()
    return {
        "app": app,
        "adaptive_policies": [adaptive.name for adaptive in policies.list_policies()],
        "methods": _methods(),
        "accepted": set(app.mfa_methods or ()),
        "effective": [registry.label(m) for m in policy.app_methods(app, settings)],
        "allowed": set(settings.allowed_methods),
    }


@router.get("/admin/mfa/apps/<name>")
def app_policy_page(name: str) -> Response[str]:
    req, _ = _admin()
    return web.render(
        req, "admin/mfa_app.html", notice=NOTICES.get(req.query.get("notice", "")), **_app_context(name)
    )


@router.post("/admin/mfa/apps/<name>")
def save_app_policy(name: str) -> Response[str]:
    from idp_core.mfa import policy

    req, signed_in = _admin()
    context = _app_context(name)
    req.error_page = ("admin/mfa_app.html", {"notice": None, **context})
    form = web.read_form(req, signed_in.session, APP_POLICY_FIELDS)
    methods = [method for method in registry.kinds() if form.get(f"method_{method}")]
    app = context["app"]
    policy.set_app_policy(
        app.name,
        mfa_required=bool(form.get("mfa_required")),
        methods=methods,
        phishing_resistant_only=bool(form.get("phishing_resistant_only")),
        adaptive=form.get("adaptive_policy") or "none",
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )
    return web.redirect(req, f"/admin/mfa/apps/{app.name}", query={"notice": "policy-saved"})
