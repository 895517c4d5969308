"""The page that carries a SAMLResponse to the service provider (HTTP-POST binding).

The inline script that submits the form carries the page's CSP nonce; the hash of the script
is also published (``AUTO_POST_SCRIPT_CSP_HASH``) for a policy that prefers hashes. Without
JavaScript, the user presses "Continue". The page's CSP must allow the ACS URL in form-action.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

FORM_ID = "saml-post"
AUTO_POST_SCRIPT = f'document.getElementById("{FORM_ID}").submit();'
AUTO_POST_SCRIPT_CSP_HASH = (
    "'sha256-"
    + base64.b64encode(hashlib.sha256(AUTO_POST_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    + "'"
)


def _attr(value: str) -> str:
    return escape(value, quote=True)


def auto_post_form(acs_url: str, saml_response_b64: str, relay_state: str | None, nonce: str) -> str:
    """An HTML page that POSTs ``saml_response_b64`` (and ``relay_state``) to ``acs_url``."""
    relay_field = (
        f'<input type="hidden" name="RelayState" value="{_attr(relay_state)}">' if relay_state else ""
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Signing you in</title></head><body>"
        f'<form id="{FORM_ID}" method="post" action="{_attr(acs_url)}">'
        f'<input type="hidden" name="SAMLResponse" value="{_attr(saml_response_b64)}">'
        f"{relay_field}"
        "<noscript><p>JavaScript is off. Press Continue to finish signing in.</p>"
        '<button type="submit">Continue</button></noscript>'
        "</form>"
        f'<script nonce="{_attr(nonce)}">{AUTO_POST_SCRIPT}</script>'
        "</body></html>"
    )
