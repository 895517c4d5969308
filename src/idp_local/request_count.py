"""Counts the AWS requests that reach the embedded moto server, by service and operation.

The sign-in benchmark and the request-budget tests read these counts: they are exact and
do not depend on the machine's speed (BENCHMARKS.md).
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


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


def _operation(environ: dict[str, Any]) -> tuple[str, str]:
    match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    # The body was consumed to read the Action of query-protocol services (IAM, STS, SNS,
    # SES); moto reads it again from this fresh stream.
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    return service, action or environ.get("REQUEST_METHOD", "")


class CountingMotoServer(ThreadedMotoServer):
    """A ThreadedMotoServer whose WSGI app counts every request it serves."""

    def __init__(self, counter: RequestCounter, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        from idp_local.moto_extensions import install as install_moto_extensions

        install_moto_extensions()
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.counter = counter

    def _server_entry(self) -> None:
        # werkzeug logs every request at INFO, which would drown the tests' and the stack's output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        backend = DomainDispatcherApplication(create_backend_app)
        counter = self.counter
        # DynamoDB applies each request atomically: a conditional write or a transaction sees
        # no other request half done. moto checks conditions and then applies the writes
        # without a lock, so parallel requests (the races the tests start on purpose) could
        # both pass one condition. One DynamoDB request at a time restores DynamoDB's rule.
        dynamodb_lock = threading.Lock()

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            service, operation = _operation(environ)
            counter.add(service, operation)
            if service != "dynamodb":
                return backend(environ, start_response)
            with dynamodb_lock:
                return list(backend(environ, start_response))

        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
