"""Faults injected at the embedded AWS and at a directory, to show what the product does when
they misbehave (issue 12, point 7).

- ``FaultPlan``: rules that make the moto server answer chosen requests with an AWS error
  (throttling, a 5xx, a conditional check that fails, a cancelled transaction, a refused
  message) or leave them unanswered until the client gives up, before or after applying
  them. ``FaultyMotoServer`` is a moto server that applies its plan to every request; the
  tests' counting server and the local stack's server are both one. A running server's plan
  is also reachable over HTTP at ``/_idp/faults`` (GET lists the rules, POST adds one as
  JSON, DELETE clears them), so a fault can be planted in ``make dev`` with curl:

      curl -X POST "$AWS_ENDPOINT_URL/_idp/faults" \
          -d '{"service": "kms", "operation": "Sign", "kind": "throttling"}'

- ``SilentServer``: a TCP server that accepts connections and never sends a byte, as a
  directory behind a broken firewall or a hung domain controller does.

Requests are matched by the service of their signature's credential scope (``dynamodb``,
``kms``, ``ses``, ``sns``...) and their operation (``X-Amz-Target`` for JSON services, the
``Action`` of query services), so faults never depend on which client sent them.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

CONTROL_PATH = "/_idp/faults"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# What each kind of fault answers, by service: (HTTP status, AWS error code).
THROTTLING = {
    "dynamodb": (400, "ProvisionedThroughputExceededException"),
    "kms": (400, "ThrottlingException"),
    "ses": (400, "Throttling"),
    "sns": (429, "Throttled"),
}
SERVER_ERROR = {
    "dynamodb": (500, "InternalServerError"),
    "kms": (500, "KMSInternalException"),
    "ses": (500, "InternalFailure"),
    "sns": (500, "InternalError"),
}
# A refusal that trying again does not cure.
REFUSED = {
    "kms": (400, "DisabledException"),
    "ses": (400, "MessageRejected"),
    "sns": (400, "InvalidParameter"),
}
_ERRORS = {
    "throttling": THROTTLING,
    "server-error": SERVER_ERROR,
    "refused": REFUSED,
    "applied-server-error": SERVER_ERROR,
}
DYNAMODB_KINDS = ("conditional-check", "transaction-conflict")
# The request is carried out, and only then its answer fails: the client cannot tell it from
# a request that never arrived, and retries a write that was in fact applied.
APPLIED_KINDS = ("applied-server-error", "lost-answer")
KINDS = ("throttling", "server-error", "refused", *DYNAMODB_KINDS, "hang", *APPLIED_KINDS)
# The services the product calls; a fault for "*" never touches the emulator's IAM or STS.
PRODUCT_SERVICES = ("dynamodb", "kms", "ses", "sns")
# A hung request is answered after this long at the latest, so a forgotten fault never
# keeps a server thread forever; clients give up long before (idp_core.aws).
MAX_HANG_SECONDS = 60.0


@dataclass(frozen=True)
class Fault:
    """Answer requests of ``service`` (or any: "*") and ``operation`` (or any) with ``kind``.

    The first ``after`` matching requests pass; then ``times`` of them fail (None: all of
    them until the plan is cleared). A client retries once (``idp_core.aws``), so a call
    fails when two requests in a row do. ``kind`` is one of ``KINDS``:

    - ``throttling``, ``server-error``, ``refused``: the service's own error for that;
    - ``conditional-check``: DynamoDB's ConditionalCheckFailedException, or for
      TransactWriteItems a TransactionCanceledException whose every reason is
      ConditionalCheckFailed (a storm of parallel writers winning every race);
    - ``transaction-conflict``: TransactWriteItems cancelled by TransactionConflict;
    - ``hang``: no answer until the client's read timeout has passed;
    - ``applied-server-error``: the request is carried out, then answered with the
      service's 5xx (DynamoDB's InternalServerError, after which "the request may or may
      not have been processed");
    - ``lost-answer``: the request is carried out, then its answer is held back until the
      client's read timeout has passed (a network that drops the answer).
    """

    service: str
    kind: str
    operation: str = "*"
    times: int | None = None
    after: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.service != "*" and self.service not in self.services():
            raise ValueError(f"no {self.kind} fault is known for {self.service}")

    def services(self) -> tuple[str, ...]:
        """The services this kind of fault has an answer for."""
        if self.kind in _ERRORS:
            return tuple(_ERRORS[self.kind])
        return ("dynamodb",) if self.kind in DYNAMODB_KINDS else PRODUCT_SERVICES

    def matches(self, service: str, operation: str) -> bool:
        wanted = self.services() if self.service == "*" else (self.service,)
        return service in wanted and self.operation in ("*", operation)


@dataclass
class _Rule:
    fault: Fault
    skip: int
    left: int | None
    matched: int = 0


@dataclass
class FaultPlan:
    """The faults a server applies, changed by tests (or over HTTP) while it runs."""

    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)
    # (service, operation, kind) of every request answered with a fault, in order.
    hits: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._rules.append(_Rule(fault, fault.after, fault.times))
            self._released.clear()
        return fault

    def clear(self) -> None:
        """Remove every fault and answer the hung requests."""
        with self._lock:
            self._rules.clear()
            self.hits.clear()
            self._released.set()

    def faults(self) -> list[Fault]:
        with self._lock:
            return [rule.fault for rule in self._rules]

    def take(self, service: str, operation: str) -> Fault | None:
        """The fault for this request, if any (spending one of its ``times``)."""
        with self._lock:
            for rule in self._rules:
                if not rule.fault.matches(service, operation):
                    continue
                rule.matched += 1
                if rule.left == 0:
                    continue
                if rule.skip:
                    rule.skip -= 1
                    continue
                if rule.left is not None:
                    rule.left -= 1
                self.hits.append((service, operation, rule.fault.kind))
                return rule.fault
        return None

    def matched(self, fault: Fault) -> int:
        """How many requests ``fault`` matched so far, failed or let through."""
        with self._lock:
            return sum(rule.matched for rule in self._rules if rule.fault is fault)

    def wait_until_released(self, seconds: float) -> None:
        self._released.wait(seconds)


_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def operation_of(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) of a request to the embedded AWS, e.g. ("kms", "Sign")."""
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


def inject(app: WsgiApp, plan: FaultPlan) -> WsgiApp:
    """``app`` (moto's WSGI app) with ``plan`` applied, and the plan's HTTP control route."""

    def faulty(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return _control(plan, environ, start_response)
        service, operation = operation_of(environ)
        fault = plan.take(service, operation)
        if fault is None:
            return app(environ, start_response)
        if fault.kind == "hang":
            plan.wait_until_released(MAX_HANG_SECONDS)
            return app(environ, start_response)
        if fault.kind == "lost-answer":
            answer = _carried_out(app, environ)
            plan.wait_until_released(MAX_HANG_SECONDS)  # The client gives up meanwhile.
        else:
            if fault.kind in APPLIED_KINDS:
                _carried_out(app, environ)
            answer = _error_answer(fault, service, environ)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    return faulty


def _carried_out(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run the request through moto to its end: (status, headers, body) of its answer."""
    started: list[Any] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], _exc_info: Any = None
    ) -> Callable[..., Any]:
        started[:] = [status, headers]
        return lambda _data: None

    body = b"".join(app(environ, start_response))
    return started[0], started[1], body


def _error_answer(
    fault: Fault, service: str, environ: dict[str, Any]
) -> tuple[str, list[tuple[str, str]], bytes]:
    message = f"Injected by idp_local.faults: {fault.kind}"
    extra: dict[str, Any] = {}
    if fault.kind in DYNAMODB_KINDS:
        status, code = 400, "ConditionalCheckFailedException"
        reason = "ConditionalCheckFailed" if fault.kind == "conditional-check" else "TransactionConflict"
        if (
            environ.get("HTTP_X_AMZ_TARGET", "").endswith(".TransactWriteItems")
            or fault.kind == "transaction-conflict"
        ):
            code = "TransactionCanceledException"
            items = len(_json_body(environ).get("TransactItems") or [None])
            extra["CancellationReasons"] = [{"Code": reason, "Message": message}] * items
            message = (
                f"Transaction cancelled, please refer cancellation reasons for specific reasons [{reason}]"
            )
    else:
        status, code = _ERRORS[fault.kind][service]
    request_id = str(uuid.uuid4())
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": code, "message": message, **extra}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)]
    else:
        sender = "Sender" if status < HTTPStatus.INTERNAL_SERVER_ERROR else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return f"{status} {_REASONS.get(status, 'Error')}", [*headers, ("Content-Length", str(len(body)))], body


_REASONS = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error"}


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _control(plan: FaultPlan, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    method = environ.get("REQUEST_METHOD")
    status = "200 OK"
    try:
        if method == "POST":
            plan.add(Fault(**_json_body(environ)))
        elif method == "DELETE":
            plan.clear()
        elif method != "GET":
            raise ValueError(f"{method} is not GET, POST or DELETE")
        answer: Any = {"faults": [asdict(fault) for fault in plan.faults()], "hits": plan.hits}
    except (TypeError, ValueError) as exc:
        status, answer = "400 Bad Request", {"error": str(exc)}
    body = json.dumps(answer).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class FaultyMotoServer(ThreadedMotoServer):
    """A moto server in a thread of this process whose answers follow ``faults``."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0, faults: FaultPlan | None = None) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.faults = faults or FaultPlan()

    def wsgi_app(self) -> WsgiApp:
        """moto's WSGI app; subclasses wrap it (the faults apply before whatever they add)."""
        return DomainDispatcherApplication(create_backend_app)

    def _server_entry(self) -> None:
        # werkzeug logs every request at INFO, which would drown the tests' and the stack's output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(
            self._ip_address,
            self._port,
            inject(self.wsgi_app(), self.faults),
            True,
            request_handler=MotoRequestHandler,
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def stop(self) -> None:
        self.faults.clear()  # Hung requests answer, so the server's threads can end.
        super().stop()


class SilentServer:
    """A TCP server on a free loopback port that accepts every connection and never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # Closed.
            self._accepted.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Shutting the listener down wakes the thread blocked in accept(); closing alone does not.
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        for conn in self._accepted:
            conn.close()

    @property
    def connections(self) -> int:
        """How many connections it accepted (and left unanswered)."""
        return len(self._accepted)
