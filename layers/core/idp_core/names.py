"""Canonical forms of the names people type: usernames, group names, app names."""

from __future__ import annotations

import re
import unicodedata

from idp_core.errors import BadRequest

MAX_USERNAME_CHARS = 128
MAX_GROUP_CHARS = 64
_NAME_PUNCTUATION = frozenset("._@+-'")
_APP_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def _canonical(raw: str, *, what: str, max_chars: int) -> tuple[str, str]:
    """Return (key, display): the key is NFKC + casefold so variants share one item (S3)."""
    if not isinstance(raw, str):
        raise BadRequest(f"The {what} is missing.")
    display = unicodedata.normalize("NFKC", raw).strip()
    if not display:
        raise BadRequest(f"The {what} is missing.")
    if len(display) > max_chars:
        raise BadRequest(f"The {what} must be at most {max_chars} characters long.")
    bad = [ch for ch in display if not (ch.isalnum() or ch in _NAME_PUNCTUATION)]
    if bad:
        raise BadRequest(
            f"The {what} may contain only letters, digits and the characters . _ @ + - ' (found {bad[0]!r})."
        )
    return unicodedata.normalize("NFKC", display.casefold()), display


def canonical_username(raw: str) -> str:
    return _canonical(raw, what="username", max_chars=MAX_USERNAME_CHARS)[0]


def username_forms(raw: str) -> tuple[str, str]:
    """(key, display) of a username."""
    return _canonical(raw, what="username", max_chars=MAX_USERNAME_CHARS)


def group_forms(raw: str) -> tuple[str, str]:
    return _canonical(raw, what="group name", max_chars=MAX_GROUP_CHARS)


def canonical_group(raw: str) -> str:
    return group_forms(raw)[0]


def canonical_app_name(raw: str) -> str:
    name = (raw or "").strip()
    if not _APP_NAME.fullmatch(name):
        raise BadRequest(
            "An app name is 1-63 characters of lower-case letters, digits and hyphens, "
            "starting with a letter or digit."
        )
    return name
