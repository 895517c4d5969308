"""A small local stand-in for API Gateway (REST API, Lambda proxy integration).

Each HTTP request becomes an API Gateway proxy event (payload version 1.0) and is passed
to the function that serves its path: a pool of worker processes (``idp_local.workers``, as
the local stack runs them) or a handler in this process (tests that reach into the handler
modules); the handler's proxy response is written back. Routes under ``/_local/`` are
served by the gateway itself (the AWS sign-in emulator, a health check) and never reach a
handler, as they would not exist in a deployment.

Whatever a handler does, the client gets an answer: a failed, crashed or malformed
invocation is a 502 and one that outlasts API Gateway's 29 seconds a 504, each with the
reason in the log, as API Gateway answers its clients.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TextIO, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from idp_core.routing import DEFAULT_FUNCTION, PATH_FUNCTIONS

LambdaHandler = Callable[[dict[str, Any], Any], Mapping[str, Any]]

# API Gateway refuses payloads above 10 MB; the IdP never needs more than a form post.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
LOCAL_PREFIX = "/_local/"
# API Gateway's limit for a Lambda integration: after it the client gets a 504.
REQUEST_TIMEOUT_SECONDS = 29.0
_HTTP_STATUSES = range(100, 600)  # 100-599: the three digits a status line carries.
# RFC 9110 field names are tokens; values are visible ASCII, spaces and tabs. Anything else
# (a raw non-ASCII Location, a CR or LF) cannot be written as an HTTP/1.1 header.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")

# Content types API Gateway passes as text when no binary media types are configured;
# anything else arrives base64-encoded with isBase64Encoded set.
_TEXT_TYPES = ("application/x-www-form-urlencoded", "application/json", "application/xml")


@dataclass(frozen=True)
class LocalRequest:
    """A request to a ``/_local/`` route, already read from the socket."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    source_ip: str

    def form(self) -> dict[str, str]:
        """The url-encoded form fields; a repeated field keeps its first value."""
        fields = parse_qs(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {name: values[0] for name, values in fields.items()}


@dataclass(frozen=True)
class LocalResponse:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


LocalRoute = Callable[[LocalRequest], LocalResponse]


class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_version = "$LATEST"
    memory_limit_in_mb = 512
    log_stream_name = "local"

    def __init__(
        self,
        request_id: str,
        timeout_seconds: float = REQUEST_TIMEOUT_SECONDS,
        function: str = DEFAULT_FUNCTION,
    ) -> None:
        self.aws_request_id = request_id
        self.function_name = f"idp-local-{function}"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """One event handled by a function: the proxy response, which execution environment (its
    process id) ran it, and when, in seconds since the epoch as that process read its clock."""

    result: Mapping[str, Any]
    worker: int
    started: float
    ended: float


class FunctionError(Exception):
    """The function gave no usable answer (it raised, its worker died, or it could not start);
    API Gateway answers such an invocation with a 502. The message is the reason to log."""


class FunctionTimedOut(FunctionError):
    """The function did not answer within the integration timeout: API Gateway's 504."""


class MalformedProxyResponse(FunctionError):
    """The handler's answer cannot be written as an HTTP response (API Gateway's "Malformed
    Lambda proxy response", a 502)."""


@runtime_checkable
class Function(Protocol):
    """What serves a path: a pool of execution environments, or a handler in this process."""

    def invoke(self, event: dict[str, Any], timeout: float) -> Invocation: ...


class InProcessFunction:
    """A Lambda handler called in the gateway's own process. Lambda runs one event at a time
    per execution environment, and Powertools keeps the current event on the resolver
    instance, so the calls of every in-process handler share one lock: this process is one
    execution environment for all of them."""

    def __init__(self, handler: LambdaHandler, lock: threading.Lock, function: str) -> None:
        self.handler = handler
        self.lock = lock
        self.function = function

    def invoke(self, event: dict[str, Any], timeout: float) -> Invocation:
        context = LambdaContext(event["requestContext"]["requestId"], timeout, self.function)
        with self.lock:
            started = time.time()
            try:
                result = self.handler(event, context)
            except Exception as exc:
                raise FunctionError(f"the {self.function} handler raised:\n{traceback.format_exc()}") from exc
            return Invocation(result, os.getpid(), started, time.time())


def health_route(request: LocalRequest) -> LocalResponse:
    return LocalResponse(200, b'{"status": "ok"}', content_type="application/json")


class LocalGateway:
    """Serves Lambda functions over HTTP; start on port 0 to let the OS pick a free port."""

    def __init__(
        self,
        handler: LambdaHandler | Function,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "local",
        local_routes: Mapping[tuple[str, str], LocalRoute] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        access_log: TextIO | None = None,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        # Lambda runs one event at a time per execution environment; the handlers called in
        # this process are one environment (see InProcessFunction).
        self._in_process_lock = threading.Lock()
        self.function = self._function(handler, DEFAULT_FUNCTION)
        self.stage = stage
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.access_log = access_log
        self.local_routes: dict[tuple[str, str], LocalRoute] = {("GET", "/_local/health"): health_route}
        self.local_routes.update(local_routes or {})
        # Path prefixes served by another function, like the API's /mfa resources; the
        # longest matching prefix wins, as the most specific API Gateway resource does.
        self.prefix_functions: dict[str, Function] = {}
        # Binding here (not in start) makes a taken port fail in the caller's thread.
        self._server = _Server((host, port), _RequestHandler, self)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> LocalGateway:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="idp-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def route_like_the_api(self, handlers: Mapping[str, LambdaHandler | Function]) -> None:
        """Route as the deployed API does (``idp_core.routing``); ``handlers`` by function name:
        worker pools, or handlers to call in this process."""
        self.function = self._function(handlers[DEFAULT_FUNCTION], DEFAULT_FUNCTION)
        for prefix, name in PATH_FUNCTIONS.items():
            self.route_prefix(prefix, handlers[name], name)

    def route_prefix(
        self, prefix: str, handler: LambdaHandler | Function, name: str = DEFAULT_FUNCTION
    ) -> None:
        """Send ``prefix`` and every path below it to ``handler`` (of the function ``name``)."""
        self.prefix_functions["/" + prefix.strip("/")] = self._function(handler, name)

    def function_for(self, path: str) -> Function:
        matches = [p for p in self.prefix_functions if path == p or path.startswith(p + "/")]
        return self.prefix_functions[max(matches, key=len)] if matches else self.function

    def invoke(self, event: dict[str, Any]) -> Invocation:
        return self.function_for(str(event.get("path") or "/")).invoke(event, self.request_timeout)

    def _function(self, handler: LambdaHandler | Function, name: str) -> Function:
        if isinstance(handler, Function):
            return handler
        return InProcessFunction(handler, self._in_process_lock, name)

    def log(self, line: str) -> None:
        if self.access_log is not None:
            self.access_log.write(line + "\n")
            self.access_log.flush()

    def log_invocation(self, client: str, request: str, status: int, invocation: Invocation) -> None:
        """Which execution environment ran a request, and when (the workers' own clocks):
        how overlapping requests show in the log."""
        self.log(
            f"{client} {request} {status} ran in worker {invocation.worker} "
            f"from {invocation.started:.6f} to {invocation.ended:.6f}"
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A developer restarting ``make dev`` expects the port back at once, but two live
    # stacks on one port must not happen: Linux refuses a second listener either way.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler_class: type, gateway: LocalGateway) -> None:
        self.gateway = gateway
        # An IPv6 host (e.g. ::1) needs an IPv6 socket; the tests sign in from ::1 too.
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler_class)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "idp-local-gateway"
    sys_version = ""

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            # A browser or probe dropped a kept-alive connection; that ends the conversation, not the server.
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        self.server.gateway.log(f"{self.client_address[0]} {format % args}")

    def _dispatch(self) -> None:
        gateway = self.server.gateway
        body = self._read_body(gateway.max_body_bytes)
        if body is None:
            return
        url = urlsplit(self.path)
        path = url.path or "/"
        route = gateway.local_routes.get((self.command, path))
        if route is not None:
            self._serve_local(route, path, url.query, body)
        elif path.startswith(LOCAL_PREFIX):
            self._send_json(404, {"message": "Not Found"})
        else:
            self._serve_lambda(path, url.query, body)

    def _read_body(self, limit: int) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send_json(411, {"message": "Length Required"})
            return None
        raw_length = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send_json(400, {"message": "Bad Request"})
            return None
        if length > limit:
            # The body is left unread, so the connection cannot be reused.
            self.close_connection = True
            self._send_json(413, {"message": "Request Too Long"})
            return None
        return self.rfile.read(length) if length else b""

    def _serve_local(self, route: LocalRoute, path: str, query: str, body: bytes) -> None:
        request = LocalRequest(
            method=self.command,
            path=path,
            query=parse_qs(query, keep_blank_values=True),
            headers={name: value for name, value in self.headers.items()},
            body=body,
            source_ip=self.client_address[0],
        )
        try:
            response = route(request)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._send_json(500, {"message": "Internal server error"})
            return
        headers = [("Content-Type", response.content_type), *response.headers.items()]
        try:
            check_headers(headers)
        except MalformedProxyResponse as exc:
            self._fail(502, f"the local route {path} answered {exc}")
            return
        self._send(response.status, headers, response.body)

    def _serve_lambda(self, path: str, query: str, body: bytes) -> None:
        gateway = self.server.gateway
        event = build_event(
            method=self.command,
            path=path,
            query=query,
            header_items=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            stage=gateway.stage,
        )
        try:
            invocation = gateway.invoke(event)
            status, headers, payload = parse_proxy_response(invocation.result)
        except FunctionTimedOut as exc:
            self._fail(504, f"{self.command} {path}: {exc}", "Endpoint request timed out")
            return
        except MalformedProxyResponse as exc:
            self._fail(502, f"{self.command} {path}: malformed Lambda proxy response: {exc}")
            return
        except Exception as exc:
            # API Gateway answers a failed integration with a bare 502.
            reason = str(exc) if isinstance(exc, FunctionError) else traceback.format_exc()
            self._fail(502, f"{self.command} {path}: {reason}")
            return
        gateway.log_invocation(self.client_address[0], f"{self.command} {path}", status, invocation)
        self._send(status, headers, payload)

    def _fail(self, status: int, reason: str, message: str = "Internal server error") -> None:
        """Answer as API Gateway does when the integration fails, with the reason in the log."""
        sys.stderr.write(f"idp-local-gateway: {status}: {reason}\n")
        sys.stderr.flush()
        self._send_json(status, {"message": message})

    def _send_json(self, status: int, payload: object) -> None:
        self._send(status, [("Content-Type", "application/json")], json.dumps(payload).encode())

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status, _reason(status))
        skip = {"content-length", "connection", "transfer-encoding", "date", "server"}
        for name, value in headers:
            if name.lower() not in skip:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client stopped listening (a health probe that read only the status line);
            # there is nobody left to answer, which is not the server's error.
            self.close_connection = True


def build_event(
    *,
    method: str,
    path: str,
    query: str,
    header_items: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    stage: str,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload 1.0) for one request on ``/{proxy+}``."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in header_items:
        headers[name] = value  # API Gateway keeps the last value in the single-value map.
        multi_headers.setdefault(name, []).append(value)
    lower = {name.lower(): value for name, value in headers.items()}

    multi_query = parse_qs(query, keep_blank_values=True) if query else {}
    single_query = {name: values[-1] for name, values in multi_query.items()}

    text_body: str | None = None
    is_base64 = False
    if body:
        if _is_text(lower.get("content-type", "")):
            try:
                text_body = body.decode("utf-8")
            except UnicodeDecodeError:
                text_body = None
        if text_body is None:
            text_body = base64.b64encode(body).decode("ascii")
            is_base64 = True

    now = time.time()
    request_id = str(uuid.uuid4())
    is_root = path == "/"
    return {
        "resource": "/" if is_root else "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None if is_root else {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "idplocal",
            "resourceId": "local",
            "resourcePath": "/" if is_root else "/{proxy+}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": formatdate(now, usegmt=True),
            "requestTimeEpoch": int(now * 1000),
            "httpMethod": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "domainName": lower.get("host", "localhost"),
            "identity": {
                # Always the socket's peer: a client-supplied header must never set it.
                "sourceIp": source_ip,
                "userAgent": lower.get("user-agent"),
            },
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def parse_proxy_response(result: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, header pairs (repeats kept, e.g. several Set-Cookie) and body bytes;
    ``MalformedProxyResponse`` (the reason) when they cannot be written as HTTP."""
    try:
        status = int(result["statusCode"])
        merged: dict[str, list[str]] = {}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            merged.setdefault(str(name), []).extend(str(value) for value in values)
        # API Gateway merges both maps; a pair present in both appears once.
        for name, value in (result.get("headers") or {}).items():
            values = merged.setdefault(str(name), [])
            if str(value) not in values:
                values.append(str(value))
        raw_body = result.get("body") or ""
        encoded = bool(result.get("isBase64Encoded"))
        payload = base64.b64decode(raw_body, validate=True) if encoded else str(raw_body).encode("utf-8")
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error, UnicodeError) as exc:
        raise MalformedProxyResponse(f"{type(exc).__name__}: {exc}") from exc
    if status not in _HTTP_STATUSES:
        raise MalformedProxyResponse(f"the status code {status} is not an HTTP status")
    pairs = [(name, value) for name, values in merged.items() for value in values]
    check_headers(pairs)
    return status, pairs, payload


def check_headers(pairs: list[tuple[str, str]]) -> None:
    """``MalformedProxyResponse`` unless every pair can be written as an HTTP/1.1 header."""
    for name, value in pairs:
        if not _HEADER_NAME.fullmatch(name):
            raise MalformedProxyResponse(f"the header name {name!r} is not an HTTP token")
        valid = _HEADER_VALUE.match(value)
        if valid is None or valid.end() != len(value):
            # The value itself is not logged: it may be a cookie.
            index = 0 if valid is None else valid.end()
            raise MalformedProxyResponse(
                f"the {name} header has {value[index]!r} at {index}, not visible ASCII, a space or a tab"
            )


def _is_text(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_TYPES or media_type.endswith("+xml")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
