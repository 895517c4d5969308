"""Counts the AWS requests that reach the embedded moto server, by service and operation.

The sign-in benchmark and the request-budget tests read these counts: they are exact and
do not depend on the machine's speed (BENCHMARKS.md).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from idp_local.faults import FaultPlan, FaultyMotoServer, WsgiApp, operation_of


class RequestCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, service: str, operation: str) -> None:
        with self._lock:
            self._counts[(service, operation)] += 1

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def by_service(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (service, _), count in self.snapshot().items():
            totals[service] += count
        return dict(totals)


class CountingMotoServer(FaultyMotoServer):
    """A moto server (with faults, see ``idp_local.faults``) whose WSGI app counts every
    request it serves."""

    def __init__(
        self,
        counter: RequestCounter,
        ip_address: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        from idp_local.moto_extensions import install as install_moto_extensions

        install_moto_extensions()
        super().__init__(ip_address=ip_address, port=port, faults=faults)
        self.counter = counter

    def wsgi_app(self) -> WsgiApp:
        backend = super().wsgi_app()
        counter = self.counter
        # DynamoDB applies each request atomically: a conditional write or a transaction sees
        # no other request half done. moto checks conditions and then applies the writes
        # without a lock, so parallel requests (the races the tests start on purpose) could
        # both pass one condition. One DynamoDB request at a time restores DynamoDB's rule.
        dynamodb_lock = threading.Lock()

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            service, operation = operation_of(environ)
            counter.add(service, operation)
            if service != "dynamodb":
                return backend(environ, start_response)
            with dynamodb_lock:
                return list(backend(environ, start_response))

        return app
