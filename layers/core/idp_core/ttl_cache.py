"""A container's short-lived copies of what changes rarely and is read on every request.

An entry is kept ``seconds`` (by the monotonic clock) and then read afresh; a change made
elsewhere therefore applies everywhere within that time. Tests move ``now``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from time import monotonic
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, seconds: float, now: Callable[[], float] = monotonic) -> None:
        self.seconds = seconds
        self.now = now
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value kept for ``key`` while it is fresh, else None."""
        entry = self._entries.get(key)
        if entry is None or self.now() >= entry[0]:
            return None
        return entry[1]

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._entries[key] = (self.now() + self.seconds, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
