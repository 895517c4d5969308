"""Form posts: size caps before parsing, field caps without truncation, CSRF (S16, S26).

Every check runs before any logic, so a refused post writes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from idp_core.errors import BadRequest, CsrfFailure, IdpError, PayloadTooLarge
from idp_core.models import Session
from idp_core.web.request import WebRequest
from idp_core.web.responses import cookie_name, set_cookie

MAX_BODY_BYTES = 16 * 1024
# The largest form, a user store's settings with every box ticked, has 34 fields.
MAX_FIELDS = 36
CSRF_FIELD = "csrf_token"
LOGIN_CSRF_COOKIE = "idp_csrf"
# A sign-in CSRF cookie of another length was not set here: a new token replaces it.
MIN_CSRF_TOKEN_CHARS, MAX_CSRF_TOKEN_CHARS = 20, 128
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_CSRF_MESSAGE = "This form has expired or did not come from this site. Reload the page and try again."


class UnsupportedMediaType(IdpError):
    status = 415


@dataclass(frozen=True)
class Field:
    """One expected form field: its label (used in messages), cap and whether it must be there."""

    label: str
    max_chars: int
    required: bool = True


def _body_bytes(req: WebRequest) -> bytes:
    if req.raw_body is None:
        return b""
    if req.body_is_base64:
        # Base64 is 4/3 of the payload: refuse before decoding anything huge.
        if len(req.raw_body) > (MAX_BODY_BYTES * 4) // 3 + 4:
            raise PayloadTooLarge(f"The request is too large (more than {MAX_BODY_BYTES // 1024} KiB).")
        try:
            return base64.b64decode(req.raw_body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("The request body could not be read.") from exc
    if len(req.raw_body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The request is too large (more than {MAX_BODY_BYTES // 1024} KiB).")
    return req.raw_body.encode("utf-8")


def _parse(req: WebRequest) -> dict[str, str]:
    body = _body_bytes(req)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The request is too large (more than {MAX_BODY_BYTES // 1024} KiB).")
    media_type = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    # An empty body is an empty form whatever its type: it then fails on its CSRF token.
    if body and media_type != FORM_CONTENT_TYPE:
        raise UnsupportedMediaType(f"This page accepts only form posts ({FORM_CONTENT_TYPE}).")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequest("The form is not valid UTF-8.") from exc
    except ValueError as exc:
        raise BadRequest(f"The form has too many fields (at most {MAX_FIELDS}).") from exc
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values:
            raise BadRequest(f"The form field {name!r} was sent more than once.")
        values[name] = value
    return values


def _declared(values: Mapping[str, str], fields: Mapping[str, Field]) -> dict[str, str]:
    form: dict[str, str] = {}
    for name, spec in fields.items():
        value = values.get(name)
        if value is None or value == "":
            if spec.required:
                raise BadRequest(f"{spec.label} is required.")
            continue
        if len(value) > spec.max_chars:
            raise BadRequest(f"{spec.label} must be at most {spec.max_chars} characters long.")
        form[name] = value
    return form


def posted_values(req: WebRequest) -> dict[str, str]:
    """The raw fields of a form post, checked for size, type and syntax only: for a route that
    needs a few of them to read the session in the same request, and then ``read_form``s it."""
    return _parse(req)


def read_form(req: WebRequest, session: Session, fields: Mapping[str, Field]) -> dict[str, str]:
    """The declared fields of a form posted by a signed-in user; unknown fields are ignored.

    Order of checks: size (413), content type (415), syntax (400), the session's CSRF
    token (403), then each field (400, naming the field; a value that is too long is
    refused, never truncated).
    """
    values = _parse(req)
    _compare(values.get(CSRF_FIELD), session.csrf_token)
    return _declared(values, fields)


def read_login_form(req: WebRequest, fields: Mapping[str, Field]) -> dict[str, str]:
    """Like ``read_form`` for the sign-in form, whose CSRF token is a double-submit cookie."""
    values = _parse(req)
    _compare(values.get(CSRF_FIELD), req.cookies.get(cookie_name(req, LOGIN_CSRF_COOKIE)))
    return _declared(values, fields)


def read_api_form(req: WebRequest, fields: Mapping[str, Field]) -> dict[str, str]:
    """Like ``read_form`` for a program's post without cookies (the command line's hand-off):
    no session, so no CSRF token; what it sends (a device code) is its credential."""
    return _declared(_parse(req), fields)


def login_csrf_token(req: WebRequest) -> tuple[str, list[str]]:
    """The double-submit token for the sign-in form, and the Set-Cookie to send when it is new."""
    existing = req.cookies.get(cookie_name(req, LOGIN_CSRF_COOKIE))
    if existing and MIN_CSRF_TOKEN_CHARS <= len(existing) <= MAX_CSRF_TOKEN_CHARS:
        return existing, []
    token = secrets.token_urlsafe(32)
    return token, [set_cookie(req, LOGIN_CSRF_COOKIE, token)]


def _compare(sent: str | None, expected: str | None) -> None:
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfFailure(_CSRF_MESSAGE)
