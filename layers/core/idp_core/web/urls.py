"""Redirect targets (S17): only same-site paths are followed after sign-in."""

from __future__ import annotations

from idp_core.errors import BadRequest

MAX_NEXT_CHARS = 512


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
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw)
        or ":" in raw.split("?", 1)[0].split("/", 2)[1]
    ):
        raise BadRequest("The page to continue to after signing in must be a page of this site.")
    return raw
