"""An injectable clock: tests move time instead of sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


SYSTEM_CLOCK: Clock = SystemClock()


def readable_utc(epoch: float | None) -> str | None:
    """A time as pages and e-mails show it, e.g. "2026-11-27 09:30 UTC" (None stays None)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(epoch))) if epoch else None
