"""One HTTP request as the pages see it, built from an API Gateway REST proxy event.

Building it never fails on bad input: checks happen where the input is read (forms,
query parameters), so every refusal becomes a clear 4xx through the one error mapping.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from idp_core.audit import AuditContext
from idp_core.clock import Clock
from idp_core.config import FunctionSettings
from idp_core.errors import BadRequest
from idp_core.scope import Browser, RequestScope

if TYPE_CHECKING:
    from idp_core.web.auth import SignedIn


@dataclass
class WebRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    cookies: Mapping[str, str]
    raw_body: str | None
    body_is_base64: bool
    source_ip: str | None
    user_agent: str | None
    # Absolute URL of the site root without a trailing slash, e.g. https://id.example.com
    # or https://abc.execute-api.eu-west-1.amazonaws.com/prod.
    base_url: str
    settings: FunctionSettings
    clock: Clock
    # A fresh nonce per response, used when a page carries an inline script.
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    # What the page needs from the Content-Security-Policy beyond the strict default.
    allow_nonce_script: bool = False
    # The security-key script (/static/webauthn.js) and its fetches of this site's options.
    allow_webauthn: bool = False
    extra_form_actions: list[str] = field(default_factory=list)
    # The page to show again (with the error message) when the request fails with an IdpError.
    # A callable is called only when the request is refused: building the page may read data.
    error_page: tuple[str, dict[str, Any]] | Callable[[], tuple[str, dict[str, Any]]] | None = None
    # An API for programs rather than a page: a refusal is JSON (OAuth's error and description).
    json_errors: bool = False
    # Cached result of the session lookup (idp_core.guard), so a request reads its session once.
    signed_in_cache: SignedIn | None = None
    # The same lookup when the session is half-way (only the MFA pages accept it, S14).
    any_session_cache: SignedIn | None = None
    session_loaded: bool = False

    @classmethod
    def from_event(cls, event: Mapping[str, Any], *, settings: FunctionSettings, clock: Clock) -> WebRequest:
        headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
        multi = event.get("multiValueHeaders") or {}
        cookie_lines = [
            str(v) for name, values in multi.items() if name.lower() == "cookie" for v in values or ()
        ]
        if not cookie_lines and "cookie" in headers:
            cookie_lines = [headers["cookie"]]
        context = event.get("requestContext") or {}
        identity = context.get("identity") or {}
        return cls(
            method=str(event.get("httpMethod") or "GET").upper(),
            path=str(event.get("path") or "/"),
            query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
            headers=headers,
            cookies=_parse_cookies(cookie_lines),
            raw_body=event.get("body"),
            body_is_base64=bool(event.get("isBase64Encoded")),
            source_ip=identity.get("sourceIp"),
            user_agent=headers.get("user-agent"),
            base_url=_base_url(settings, context),
            settings=settings,
            clock=clock,
        )

    @property
    def base_path(self) -> str:
        """The path prefix of the site (the stage, e.g. ``/prod``), or '' at a domain root."""
        return urlsplit(self.base_url).path.rstrip("/")

    def link(self, path: str, **query: str | None) -> str:
        """A link for a page (``path`` starts with '/'), with the stage prefix when there is one."""
        params = {name: value for name, value in query.items() if value is not None}
        return self.base_path + path + (f"?{urlencode(params)}" if params else "")

    def absolute_url(self, path: str) -> str:
        return self.base_url + path

    def query_param(self, name: str, *, max_chars: int, label: str | None = None) -> str | None:
        value = self.query.get(name)
        if value is not None and len(value) > max_chars:
            raise BadRequest(f"{label or name} must be at most {max_chars} characters long.")
        return value

    def audit_context(self, actor: str | None = None) -> AuditContext:
        return AuditContext(source_ip=self.source_ip, actor=actor)

    def scope(self, actor: str | None = None, browser: Browser | None = None) -> RequestScope:
        """Who asks (``actor``, once signed in), from which browser (``guard.browser`` adds the
        device cookie, for the logic that judges devices), when, and the function's settings."""
        return RequestScope(
            settings=self.settings,
            browser=browser or Browser(source_ip=self.source_ip, user_agent=self.user_agent),
            actor=actor,
            clock=self.clock,
        )


def _base_url(settings: FunctionSettings, context: Mapping[str, Any]) -> str:
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    domain = str(context.get("domainName") or "localhost")
    stage = str(context.get("stage") or "").strip("/")
    return f"https://{domain}/{stage}" if stage and stage != "$default" else f"https://{domain}"


def _parse_cookies(lines: list[str]) -> dict[str, str]:
    """Cookie header pairs; the first of repeated names wins (the most specific path, RFC 6265)."""
    cookies: dict[str, str] = {}
    for line in lines:
        for pair in line.split(";"):
            name, sep, value = pair.strip().partition("=")
            if sep and name and name not in cookies:
                cookies[name] = value.strip().strip('"')
    return cookies
