"""Redirect targets (S17): only same-site paths are followed after sign-in."""

from __future__ import annotations

import re
from urllib.parse import quote

from idp_core.errors import BadRequest

MAX_NEXT_CHARS = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The characters a URL may carry as they are (RFC 3986 reserved and unreserved ones) and '%',
# so escapes already present stay as they are; the same set as requests' requote_uri.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


def safe_next_path(raw: str | None) -> str | None:
    """Return ``raw`` if it is a path on this site, None if absent; raise BadRequest otherwise.

    A path starts with exactly one '/', and has no backslash (browsers read it as '/'),
    no control characters and no scheme or host, so ``//evil.example`` and
    ``/\\evil.example`` cannot leave the site.
    """
    if raw is None or raw == "":
        return None
    if (
        len(raw) > MAX_NEXT_CHARS
        or not raw.startswith("/")
        or raw.startswith("//")
        or "\\" in raw
        or _CONTROL.search(raw)
        or ":" in raw.split("?", 1)[0].split("/", 2)[1]
    ):
        raise BadRequest("The page to continue to after signing in must be a page of this site.")
    return raw


def ascii_url(url: str) -> str:
    """``url`` with every other character percent-encoded (non-ASCII ones as their UTF-8
    bytes): what a Location header may carry. An HTTP header is ASCII, and a control
    character such as CR or LF in it would end the header (response splitting)."""
    return quote(url, safe=_URL_SAFE)
