"""Responses, cookies and the security headers every response carries (S13, S16)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from idp_core.resolver import Response
from idp_core.web.request import WebRequest
from idp_core.web.urls import ascii_url

HTML = "text/html; charset=utf-8"
HSTS = "max-age=63072000; includeSubDomains"


def cookie_name(req: WebRequest, base: str) -> str:
    """``__Host-{base}`` (Secure, host-only, Path=/); the local http stack drops the prefix (S13)."""
    return f"__Host-{base}" if req.settings.cookie_secure else base


def set_cookie(req: WebRequest, base: str, value: str, *, max_age: int | None = None) -> str:
    parts = [f"{cookie_name(req, base)}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if req.settings.cookie_secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def clear_cookie(req: WebRequest, base: str) -> str:
    return set_cookie(req, base, "", max_age=0)


def html_response(body: str, *, status: int = 200, cookies: Iterable[str] = ()) -> Response[str]:
    headers: dict[str, str | list[str]] = {}
    cookie_list = list(cookies)
    if cookie_list:
        headers["Set-Cookie"] = cookie_list
    return Response(status_code=status, content_type=HTML, body=body, headers=headers)


def json_response(body: str, *, status: int = 200) -> Response[str]:
    """A JSON document for the pages' own scripts (a security key's options)."""
    return Response(status_code=status, content_type="application/json", body=body)


def redirect(
    req: WebRequest,
    path: str,
    *,
    query: Mapping[str, str | None] | None = None,
    cookies: Iterable[str] = (),
) -> Response[str]:
    """303 See Other to a page of this site (``path`` starts with '/'), so a POST becomes a GET.
    The path may come from the user (``next``), so the Location is percent-encoded to ASCII."""
    headers: dict[str, str | list[str]] = {"Location": ascii_url(req.link(path, **(query or {})))}
    cookie_list = list(cookies)
    if cookie_list:
        headers["Set-Cookie"] = cookie_list
    return Response(status_code=303, content_type=HTML, body="", headers=headers)


def content_security_policy(req: WebRequest | None) -> str:
    form_action = "'self'"
    script = ""
    if req is not None:
        form_action = " ".join(["'self'", *req.extra_form_actions])
        sources = [f"'nonce-{req.nonce}'"] if req.allow_nonce_script else []
        if req.allow_webauthn:
            sources.insert(0, "'self'")
        if sources:
            script = "; script-src " + " ".join(sources)
        if req.allow_webauthn:
            script += "; connect-src 'self'"
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'"
        f"{script}; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


def security_headers(req: WebRequest | None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(req),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Strict-Transport-Security": HSTS,
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def finalize(result: Mapping[str, Any], req: WebRequest | None) -> dict[str, Any]:
    """Add the security headers to a proxy response, whichever route or error produced it.

    This runs on every response of the function, so no page can forget them. A route may
    set its own Cache-Control (the stylesheet does); everything else is ``no-store``.
    """
    out = dict(result)
    multi: dict[str, list[str]] = {
        name: list(values) for name, values in (out.get("multiValueHeaders") or {}).items()
    }
    single = out.pop("headers", None) or {}
    for name, value in single.items():
        multi.setdefault(name, [str(value)])
    present = {name.lower() for name in multi}
    for name, value in security_headers(req).items():
        if name.lower() not in present:
            multi[name] = [value]
    if "cache-control" not in present:
        multi["Cache-Control"] = ["no-store"]
    out["multiValueHeaders"] = multi
    return out
