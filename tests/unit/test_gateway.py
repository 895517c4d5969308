"""The local gateway turns HTTP into API Gateway proxy events and proxy responses back into HTTP."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from idp_local.gateway import (
    FunctionError,
    FunctionTimedOut,
    LocalGateway,
    LocalRequest,
    LocalResponse,
    parse_proxy_response,
)


class RecordingHandler:
    """A stand-in Lambda handler that records the events it receives."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.response: dict[str, Any] = {
            "statusCode": 200,
            "headers": {"Content-Type": "text/plain"},
            "body": "ok",
        }

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        assert context.aws_request_id == event["requestContext"]["requestId"]
        return self.response


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def gateway(handler: RecordingHandler) -> Iterator[LocalGateway]:
    def echo_form(request: LocalRequest) -> LocalResponse:
        return LocalResponse(200, json.dumps({"form": request.form(), "ip": request.source_ip}).encode())

    with LocalGateway(handler, local_routes={("POST", "/_local/echo"): echo_form}, max_body_bytes=1000) as gw:
        yield gw


def request(
    gateway: LocalGateway,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(
        gateway.host, gateway.port, timeout=10, source_address=(source, 0)
    )
    connection.request(method, path, body=body, headers=headers or {})
    return connection.getresponse()


def test_get_request_becomes_a_rest_proxy_event(gateway: LocalGateway, handler: RecordingHandler) -> None:
    response = request(gateway, "GET", "/apps/demo/launch?a=1&b=2&b=3", headers={"User-Agent": "tester/1"})

    assert response.status == 200
    assert response.read() == b"ok"
    event = handler.events[0]
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == "/apps/demo/launch"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"proxy": "apps/demo/launch"}
    assert event["queryStringParameters"] == {"a": "1", "b": "3"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1"], "b": ["2", "3"]}
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "local"
    assert context["domainName"] == f"{gateway.host}:{gateway.port}"
    assert context["httpMethod"] == "GET" and context["path"] == "/apps/demo/launch"
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "tester/1"}
    assert context["requestId"] and context["requestTime"]


def test_form_post_arrives_as_text_and_binary_as_base64(
    gateway: LocalGateway, handler: RecordingHandler
) -> None:
    request(
        gateway,
        "POST",
        "/login",
        b"username=alice&password=p%C3%A4ss",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ).read()
    request(gateway, "POST", "/upload", b"\x00\xff\x10", {"Content-Type": "application/octet-stream"}).read()

    form_event, binary_event = handler.events
    assert form_event["body"] == "username=alice&password=p%C3%A4ss"
    assert form_event["isBase64Encoded"] is False
    assert binary_event["isBase64Encoded"] is True
    assert base64.b64decode(binary_event["body"]) == b"\x00\xff\x10"


def test_source_ip_is_the_socket_peer_never_a_forwarded_header(
    gateway: LocalGateway, handler: RecordingHandler
) -> None:
    request(gateway, "GET", "/me", headers={"X-Forwarded-For": "203.0.113.9"}, source="127.0.0.7").read()

    assert handler.events[0]["requestContext"]["identity"]["sourceIp"] == "127.0.0.7"


def test_repeated_request_headers_are_kept_in_multi_value_headers(
    gateway: LocalGateway, handler: RecordingHandler
) -> None:
    connection = http.client.HTTPConnection(gateway.host, gateway.port, timeout=10)
    connection.putrequest("GET", "/me")
    connection.putheader("X-Thing", "one")
    connection.putheader("X-Thing", "two")
    connection.endheaders()
    connection.getresponse().read()

    event = handler.events[0]
    assert event["multiValueHeaders"]["X-Thing"] == ["one", "two"]
    assert event["headers"]["X-Thing"] == "two"


def test_several_set_cookie_headers_reach_the_client(
    gateway: LocalGateway, handler: RecordingHandler
) -> None:
    handler.response = {
        "statusCode": 302,
        "headers": {"Location": "/me"},
        "multiValueHeaders": {"Set-Cookie": ["a=1; Path=/", "b=2; Path=/"]},
        "body": "",
    }

    response = request(
        gateway, "POST", "/login", b"x=1", {"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert response.status == 302
    assert response.headers["Location"] == "/me"
    assert response.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]


def test_base64_response_bodies_are_decoded(gateway: LocalGateway, handler: RecordingHandler) -> None:
    handler.response = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(b"\x89PNG\x00").decode(),
        "isBase64Encoded": True,
    }

    assert request(gateway, "GET", "/logo.png").read() == b"\x89PNG\x00"


def test_oversized_body_gets_413_and_never_reaches_the_handler(
    gateway: LocalGateway, handler: RecordingHandler
) -> None:
    response = request(gateway, "POST", "/login", b"x" * 1001, {"Content-Type": "text/plain"})

    assert response.status == 413
    assert handler.events == []


def test_a_failing_handler_gives_502_like_api_gateway(
    gateway: LocalGateway, handler: RecordingHandler
) -> None:
    handler.response = {"no": "statusCode"}

    response = request(gateway, "GET", "/me")

    assert response.status == 502
    assert json.loads(response.read()) == {"message": "Internal server error"}


def test_local_routes_are_served_by_the_gateway_not_the_handler(
    gateway: LocalGateway, handler: RecordingHandler
) -> None:
    health = request(gateway, "GET", "/_local/health")
    echo = request(
        gateway,
        "POST",
        "/_local/echo",
        b"SAMLResponse=abc%2B&RelayState=x",
        {"Content-Type": "application/x-www-form-urlencoded"},
        source="127.0.0.3",
    )
    unknown = request(gateway, "GET", "/_local/nothing")

    assert health.status == 200 and json.loads(health.read()) == {"status": "ok"}
    assert json.loads(echo.read()) == {"form": {"SAMLResponse": "abc+", "RelayState": "x"}, "ip": "127.0.0.3"}
    assert unknown.status == 404
    assert handler.events == []


def test_root_path_uses_the_root_resource(gateway: LocalGateway, handler: RecordingHandler) -> None:
    request(gateway, "GET", "/").read()

    assert handler.events[0]["resource"] == "/"
    assert handler.events[0]["pathParameters"] is None


def test_a_taken_port_fails_at_construction(handler: RecordingHandler) -> None:
    with LocalGateway(handler) as first, pytest.raises(OSError):
        LocalGateway(handler, port=first.port)


def test_a_pair_in_both_header_maps_is_sent_once() -> None:
    status, headers, body = parse_proxy_response(
        {"statusCode": 200, "headers": {"X-A": "1"}, "multiValueHeaders": {"X-A": ["1", "2"]}, "body": "b"}
    )

    assert (status, headers, body) == (200, [("X-A", "1"), ("X-A", "2")], b"b")


UNWRITABLE = {
    "a raw non-ASCII Location": (
        {"statusCode": 303, "headers": {"Location": "/me/\u65e5\u672c"}, "body": ""},
        "Location header",
    ),
    "a Latin-1 Location": ({"statusCode": 303, "headers": {"Location": "/caf\u00e9"}}, "Location header"),
    "a header value with CR LF": (
        {"statusCode": 303, "multiValueHeaders": {"Location": ["/me\r\nSet-Cookie: session=attacker"]}},
        "Location header",
    ),
    "a header name with a space": ({"statusCode": 200, "headers": {"Bad Name": "x"}}, "not an HTTP token"),
    "no status code": ({"body": "x"}, "KeyError"),
    "a status code out of range": ({"statusCode": 1000}, "not an HTTP status"),
    "a body that is not base64": ({"statusCode": 200, "body": "%%%", "isBase64Encoded": True}, "Error"),
}


@pytest.mark.parametrize("answer", UNWRITABLE.values(), ids=UNWRITABLE.keys())
def test_attack_an_answer_that_cannot_be_written_is_a_502_with_the_reason_logged(
    gateway: LocalGateway,
    handler: RecordingHandler,
    capsys: pytest.CaptureFixture[str],
    answer: tuple[dict[str, Any], str],
) -> None:
    """Whatever a handler returns, the client gets an answer, never a dropped connection or
    a header split in two; API Gateway answers a malformed proxy response with a 502."""
    handler.response, reason = answer
    connection = http.client.HTTPConnection(gateway.host, gateway.port, timeout=10)

    connection.request("GET", "/me")
    refused = connection.getresponse()
    body = refused.read()
    handler.response = {"statusCode": 200, "body": "next"}
    connection.request("GET", "/me")  # The same kept-alive connection still works.
    after = connection.getresponse()

    assert refused.status == 502 and json.loads(body) == {"message": "Internal server error"}
    assert refused.getheader("Set-Cookie") is None and refused.getheader("Location") is None
    assert (after.status, after.read()) == (200, b"next")
    log = capsys.readouterr().err
    assert "502: GET /me: malformed Lambda proxy response" in log and reason in log


class Pool:
    """A function whose invocations fail as a worker pool's do."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def invoke(self, event: dict[str, Any], timeout: float) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (FunctionTimedOut("the sso worker 7 did not answer within 29 s"), 504, "Endpoint request timed out"),
        (FunctionError("the sso worker 7 died (exit status -9)"), 502, "Internal server error"),
    ],
)
def test_a_function_that_times_out_or_dies_is_answered_as_api_gateway_does(
    capsys: pytest.CaptureFixture[str], error: Exception, status: int, message: str
) -> None:
    with LocalGateway(Pool(error)) as gateway:
        response = request(gateway, "POST", "/login")

    assert (response.status, json.loads(response.read())) == (status, {"message": message})
    assert f"{status}: POST /login: {error}" in capsys.readouterr().err
