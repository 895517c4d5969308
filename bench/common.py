"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))
