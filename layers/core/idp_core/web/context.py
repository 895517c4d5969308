"""The request being handled, reachable from any route of any router in the function."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from idp_core.web.request import WebRequest

_current: ContextVar[WebRequest | None] = ContextVar("idp_web_request", default=None)


@contextmanager
def bound(req: WebRequest) -> Iterator[WebRequest]:
    token = _current.set(req)
    try:
        yield req
    finally:
        _current.reset(token)


def request() -> WebRequest:
    """The current request; only valid inside ``lambda_handler`` (RuntimeError otherwise)."""
    req = _current.get()
    if req is None:
        raise RuntimeError("no web request is being handled")
    return req


def request_or_none() -> WebRequest | None:
    return _current.get()
