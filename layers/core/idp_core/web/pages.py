"""Page rendering: jinja2 templates with autoescaping and the shared layout.

jinja2 is imported on the first render, not at cold start: the redirects and the
metadata never need it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idp_core.clock import readable_utc
from idp_core.resolver import Response
from idp_core.web.responses import html_response

if TYPE_CHECKING:
    import jinja2

    from idp_core.web.request import WebRequest

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STYLESHEET_PATH = "/static/idp.css"


@cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Epoch seconds as pages show times: {{ item.changed_at | utc }}.
    env.filters["utc"] = readable_utc
    return env


def render_text(req: WebRequest, template: str, **context: Any) -> str:
    signed_in = req.signed_in_cache
    base = {
        "req": req,
        "link": req.link,
        "signed_in": signed_in,
        "user": signed_in.user if signed_in else None,
        "csrf_token": signed_in.csrf_token if signed_in else None,
        "stylesheet": req.link(STYLESHEET_PATH),
        "error": None,
    }
    return environment().get_template(template).render(**{**base, **context})


def render(
    req: WebRequest, template: str, *, status: int = 200, cookies: Iterable[str] = (), **context: Any
) -> Response[str]:
    """A full HTML page from ``templates/<template>`` (which extends ``layout.html``)."""
    return html_response(render_text(req, template, **context), status=status, cookies=cookies)


@cache
def _static_text(name: str) -> str:
    return (STATIC_DIR / name).read_text("utf-8")


def _static_response(name: str, content_type: str) -> Response[str]:
    return Response(
        status_code=200,
        content_type=content_type,
        body=_static_text(name),
        headers={"Cache-Control": "public, max-age=3600"},
    )


def stylesheet_response() -> Response[str]:
    return _static_response("idp.css", "text/css; charset=utf-8")


def webauthn_script_response() -> Response[str]:
    """The small script that relays between the pages and the browser's security keys."""
    return _static_response("webauthn.js", "text/javascript; charset=utf-8")


def allow_webauthn(req: WebRequest) -> None:
    """Let this page load the security-key script from this site and fetch the server's
    options for a ceremony from it (``script-src 'self'``, ``connect-src 'self'``), and no
    more. No nonce: the sign-in page's body stays the same for every refusal (S5)."""
    req.allow_webauthn = True
