"""Calls that do not depend on each other, run at once (issue 13: a sign-in's AWS round trips
overlap where they can).

Each call runs in the caller's context (``contextvars``), so its log lines carry the request's
ids and its metrics count into the invocation. The pool is the container's: a Lambda
execution environment runs one request at a time.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="idp-io")


def together(*calls: Callable[[], Any]) -> list[Any]:
    """The results of ``calls`` in order, the first in this thread and the rest in the pool;
    the first exception (in order) is raised once every call has ended."""
    futures = [_pool.submit(contextvars.copy_context().run, call) for call in calls[1:]]
    results: list[Any] = []
    error: BaseException | None = None
    try:
        results.append(calls[0]())
    except BaseException as exc:
        error = exc
    for future in futures:
        try:
            results.append(future.result())
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error
    return results
