"""The sequential AWS round trips of a request, counted by structure rather than by timing: a
call alone is one round trip; the calls that ``idp_core.concurrency.together`` runs at once
are one round trip as long as its longest branch. Timing would count a thread the scheduler
of a loaded machine starts late as one more round trip."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

import botocore.client
import pytest

from idp_core.concurrency import together


class RoundTrips:
    def __init__(self) -> None:
        # Each round trip: its branches, each the operations it called in order.
        self.trips: list[list[list[str]]] = []
        self._branch: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
            "branch", default=None
        )

    def record(self, monkeypatch: pytest.MonkeyPatch, *users_of_together: ModuleType) -> None:
        """Record every AWS call from now on, and the groups that the modules
        ``users_of_together`` run through ``together``."""
        original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]  # private, unstubbed

        def recorded(client: Any, operation: str, params: Any) -> Any:
            calls = self._branch.get()
            if calls is None:
                self.trips.append([[operation]])
            else:
                calls.append(operation)
            return original(client, operation, params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded)
        for module in users_of_together:
            monkeypatch.setattr(module, "together", self._in_branches)

    def _in_branches(self, *group: Callable[[], Any]) -> list[Any]:
        branches: list[list[str]] = [[] for _ in group]
        self.trips.append(branches)
        return together(
            *(partial(self._within, calls, call) for calls, call in zip(branches, group, strict=True))
        )

    def _within(self, calls: list[str], call: Callable[[], Any]) -> Any:
        token = self._branch.set(calls)
        try:
            return call()
        finally:
            self._branch.reset(token)

    def sequential(self) -> int:
        return sum(max(len(calls) for calls in trip) for trip in self.trips)

    def overlapped(self) -> int:
        """How many round trips ran more than one call at once."""
        return sum(len(trip) > 1 for trip in self.trips)
