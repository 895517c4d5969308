"""Races on purpose: the same call from several threads released at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def all_at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run ``calls`` in threads released together by a barrier, so what they race for really
    races; their results in the order of ``calls``. Any exception fails the test in the
    calling thread."""
    barrier = threading.Barrier(len(calls))
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout=60)
            results[index] = call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return [results[index] for index in range(len(calls))]


def outcomes_of_parallel(calls: Sequence[Callable[[], object]], refused: type[Exception]) -> list[str]:
    """Run ``calls`` at once; each gives "ok", or "refused" when it raised ``refused``.
    Any other exception fails the test in the calling thread."""

    def outcome(call: Callable[[], object]) -> str:
        try:
            call()
        except refused:
            return "refused"
        return "ok"

    return sorted(all_at_once([lambda call=call: outcome(call) for call in calls]))  # type: ignore[misc]
