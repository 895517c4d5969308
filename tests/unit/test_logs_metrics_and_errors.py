"""Logs, metrics and traces without AWS (idp_core.observability), the one error mapping's
answers to a 500 and to a transient AWS failure (idp_core.web.errors), and the bounded AWS
calls (idp_core.aws)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from pynamodb.exceptions import PutError, TransactWriteError

from idp_core import aws, observability
from idp_core.config import Settings, Tables
from idp_core.web.function import PageFunction
from tests.helpers.observed import capture

SETTINGS = Settings(tables=Tables.with_prefix("unit-"), signing_key_id="key", data_key_id="data-key")


def test_only_the_contracts_metric_names_can_be_counted() -> None:
    with capture() as seen, observability.invocation({}, None, function_name="sso"):
        with pytest.raises(ValueError, match="unknown metric 'AccountLockd'"):
            observability.count("AccountLockd")
        observability.count("AccountLocked")
    assert seen.metrics() == {"AccountLocked": 1}


def test_an_invocation_flushes_its_counts_once_as_one_emf_blob_even_when_it_raises() -> None:
    with (
        capture() as seen,
        pytest.raises(RuntimeError),
        observability.invocation({}, None, function_name="otp"),
    ):
        observability.count("CodeSentSms")
        observability.count("CodeSentSms")
        observability.count("DeliveryFailed", 3)
        raise RuntimeError("the handler failed")
    (blob,) = seen.emf_blobs()
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ServerlessIdp"
    assert blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert {m["Name"]: m["Unit"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {
        "CodeSentSms": "Count",
        "DeliveryFailed": "Count",
    }
    assert (blob["service"], blob["CodeSentSms"], blob["DeliveryFailed"]) == ("otp", [2.0], [3.0])
    # The counts went with that blob; an invocation that counts nothing prints nothing.
    with capture() as seen, observability.invocation({}, None, function_name="otp"):
        pass
    assert seen.stdout.getvalue() == ""


def test_the_service_and_namespace_come_from_powertools_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "sso")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "OtherIdp")
    with capture() as seen, observability.invocation({"id": "e-1"}, None, function_name="local-name"):
        observability.count("KmsError")
        observability.logger.warning("inside")
    (blob,) = seen.emf_blobs()
    assert (blob["service"], blob["_aws"]["CloudWatchMetrics"][0]["Namespace"]) == ("sso", "OtherIdp")
    line = seen.log_line("inside")
    assert (line["service"], line["correlation_id"]) == ("sso", "e-1")  # an EventBridge event's id


def test_counts_of_another_thread_are_flushed_by_that_threads_invocation() -> None:
    import threading

    def elsewhere() -> None:
        observability.count("ImportFailed")

    with capture() as seen, observability.invocation({}, None, function_name="sso"):
        observability.count("UnhandledError")
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    assert seen.metrics() == {"UnhandledError": 1}  # the local stack's ticker thread keeps its own


def test_the_aws_sdks_debug_lines_stay_off_whatever_the_root_level() -> None:
    import logging

    with capture("DEBUG", every_library=True) as seen:
        logging.getLogger("botocore.endpoint").debug("Making request with params {'Message': '123456'}")
        logging.getLogger("pynamodb.connection.base").debug("Calling PutItem with arguments {...}")
    assert "123456" not in seen.text and "PutItem" not in seen.text


# ---------------------------------------------------------------- the error mapping


@pytest.fixture
def probe() -> PageFunction:
    """A function whose routes fail in the ways the error mapping tells apart."""
    function = PageFunction("probe", Settings)
    function.configure(SETTINGS)
    router = APIGatewayRouter()

    @router.get("/boom")
    def boom() -> Response[str]:
        raise RuntimeError("a bug")

    @router.get("/busy")
    def busy() -> Response[str]:
        raise PutError(
            "Failed to put item", _client_error("ProvisionedThroughputExceededException", 400, "PutItem")
        )

    function.app.include_router(router)
    return function


def _event(path: str) -> dict[str, Any]:
    return {
        "httpMethod": "GET",
        "path": path,
        "headers": {"Host": "abc.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "requestId": f"req-{path}",
            "stage": "prod",
            "identity": {"sourceIp": "192.0.2.1"},
        },
    }


def test_a_500_is_logged_with_its_stack_trace_and_counted(probe: PageFunction) -> None:
    with capture() as seen:
        answer = probe.handle(_event("/boom"), None)
    assert answer["statusCode"] == 500 and "a bug" not in answer["body"] and "Traceback" not in answer["body"]
    line = seen.log_line("unhandled error on GET /boom")
    assert (line["level"], line["exception_name"], line["correlation_id"]) == (
        "ERROR",
        "RuntimeError",
        "req-/boom",
    )
    assert line["stack_trace"]["frames"][-1]["function"] == "boom"
    assert seen.metrics("probe") == {"UnhandledError": 1}


def test_a_throttled_aws_call_is_a_503_that_says_try_again(probe: PageFunction) -> None:
    with capture() as seen:
        answer = probe.handle(_event("/busy"), None)
    assert answer["statusCode"] == 503
    assert answer["multiValueHeaders"]["Retry-After"] == ["5"]
    assert "Please try again in a moment." in answer["body"]
    line = seen.log_line("ServiceUnavailable")
    assert (line["failed"], line["path"]) == ("PutItem: ProvisionedThroughputExceededException", "/busy")
    assert seen.metrics() == {}  # DynamoDB's own ThrottledRequests metric counts it


# ---------------------------------------------------------------- transient AWS failures


def _client_error(code: str, status: int, operation: str, **extra: Any) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("exc", "failed"),
    [
        (
            _client_error("ProvisionedThroughputExceededException", 400, "GetItem"),
            "GetItem: ProvisionedThroughputExceededException",
        ),
        (_client_error("ThrottlingException", 400, "Sign"), "Sign: ThrottlingException"),
        (_client_error("Throttling", 400, "SendEmail"), "SendEmail: Throttling"),
        (_client_error("Throttled", 429, "Publish"), "Publish: Throttled"),
        (_client_error("KMSInternalException", 500, "Decrypt"), "Decrypt: KMSInternalException"),
        (_client_error("DependencyTimeoutException", 503, "Sign"), "Sign: DependencyTimeoutException"),
        (
            _client_error("ConditionalCheckFailedException", 400, "UpdateItem"),
            "UpdateItem: ConditionalCheckFailedException",
        ),
        (
            _client_error(
                "TransactionCanceledException",
                400,
                "TransactWriteItems",
                CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict"}],
            ),
            "TransactWriteItems: TransactionCanceledException (TransactionConflict)",
        ),
        (
            EndpointConnectionError(endpoint_url="https://kms"),
            'EndpointConnectionError: Could not connect to the endpoint URL: "https://kms"',
        ),
        (
            ReadTimeoutError(endpoint_url="https://dynamodb"),
            'ReadTimeoutError: Read timeout on endpoint URL: "https://dynamodb"',
        ),
        (
            ConnectTimeoutError(endpoint_url="https://sns"),
            'ConnectTimeoutError: Connect timeout on endpoint URL: "https://sns"',
        ),
        (
            TransactWriteError(
                "Failed",
                _client_error(
                    "TransactionCanceledException",
                    400,
                    "TransactWriteItems",
                    CancellationReasons=[{"Code": "ThrottlingError"}],
                ),
            ),
            "TransactWriteItems: TransactionCanceledException (ThrottlingError)",
        ),
    ],
)
def test_transient_aws_failures_name_what_failed(exc: Exception, failed: str) -> None:
    assert aws.transient_failure(exc) == failed


@pytest.mark.parametrize(
    "exc",
    [
        _client_error("AccessDeniedException", 400, "Sign"),
        _client_error("DisabledException", 400, "Sign"),
        _client_error("ValidationException", 400, "PutItem"),
        _client_error("MessageRejected", 400, "SendEmail"),
        _client_error(
            "TransactionCanceledException",
            400,
            "TransactWriteItems",
            CancellationReasons=[{"Code": "ValidationError"}],
        ),
        PutError("Failed", _client_error("ResourceNotFoundException", 400, "PutItem")),
        RuntimeError("a bug"),
    ],
)
def test_faults_of_ours_or_of_the_setup_are_not_transient(exc: Exception) -> None:
    assert aws.transient_failure(exc) is None


def test_a_failure_reason_hides_what_the_request_carried() -> None:
    exc = _client_error("InvalidParameter", 400, "Publish")
    exc.response["Error"]["Message"] = "Invalid parameter: PhoneNumber +447400123456 for 123456 is your code"
    assert aws.failure_reason(exc, hide=("+447400123456", "123456", None)) == (
        "InvalidParameter: Invalid parameter: PhoneNumber [hidden] for [hidden] is your code"
    )


# ---------------------------------------------------------------- bounded calls


def test_one_aws_call_gives_up_well_inside_the_functions_timeout() -> None:
    from infra.constructs.function import DEFAULT_TIMEOUT

    assert DEFAULT_TIMEOUT.to_seconds() / 2 >= aws.CALL_BUDGET_SECONDS
    assert aws.CALL_BUDGET_SECONDS == 2 * (1 + 2) + 1


def test_boto3_and_pynamodb_clients_carry_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    import pynamodb.connection

    from idp_core.models import Session as SessionModel
    from idp_core.models import User

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # a client is made, never used
    monkeypatch.delenv(aws.EMBEDDED_READ_TIMEOUT_ENV, raising=False)  # as in a deployed function
    clients = [
        aws.client("kms").meta.config,
        pynamodb.connection.Connection(region="us-east-1").client.meta.config,
    ]
    for config in clients:
        assert (config.connect_timeout, config.read_timeout) == (1.0, 2.0)
        assert config.retries == {"mode": "adaptive", "total_max_attempts": 2}
    for model in (User, SessionModel):
        assert (model.Meta.connect_timeout_seconds, model.Meta.read_timeout_seconds) == (1.0, 2.0)


def test_clients_of_the_embedded_aws_wait_longer_for_an_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from idp_core import models
    from idp_local.stack import aws_env

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # a client is made, never used
    for name, value in aws_env("http://127.0.0.1:9").items():
        monkeypatch.setenv(name, value)
    assert aws.read_timeout_seconds() == 15.0
    for config in (aws.client("kms").meta.config, models.connection().client.meta.config):
        assert (config.connect_timeout, config.read_timeout) == (1.0, 15.0)
        assert config.retries == {"mode": "adaptive", "total_max_attempts": 2}
    monkeypatch.delenv(aws.EMBEDDED_READ_TIMEOUT_ENV)
    for config in (aws.client("kms").meta.config, models.connection().client.meta.config):
        assert config.read_timeout == 2.0


# ---------------------------------------------------------------- tracing


def _import_handler(trace_disabled: str | None) -> dict[str, Any]:
    """Import the sso handler in a fresh interpreter (a cold start) and call it once."""
    env = {
        **os.environ,
        **SETTINGS.to_env(),
        "AWS_DEFAULT_REGION": "us-east-1",
        # Lambda's own variables: the X-Ray SDK traces only inside Lambda.
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": "sso",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9",
    }
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    if trace_disabled is not None:
        env["POWERTOOLS_TRACE_DISABLED"] = trace_disabled
    script = textwrap.dedent(
        """
        import json, sys
        import functions.sso.handler as handler
        loaded = "aws_xray_sdk" in sys.modules
        sent = []
        if loaded:  # what the X-Ray SDK would send to the daemon
            from aws_xray_sdk.core import xray_recorder
            xray_recorder.emitter.send_entity = lambda entity: sent.append(entity.name)
        answer = handler.lambda_handler(
            {"httpMethod": "GET", "path": "/static/idp.css", "headers": {"Host": "x"},
             "requestContext": {"requestId": "r", "stage": "prod", "identity": {"sourceIp": "192.0.2.1"}}},
            None,
        )
        print(json.dumps({"loaded_at_cold_start": loaded, "status": answer["statusCode"], "traced": sent}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("setting", [None, "true", "True", "1"])
def test_without_tracing_the_x_ray_sdk_is_never_loaded(setting: str | None) -> None:
    assert _import_handler(setting) == {"loaded_at_cold_start": False, "status": 200, "traced": []}


def test_with_tracing_on_the_handler_runs_under_powertools_tracer() -> None:
    assert _import_handler("false") == {"loaded_at_cold_start": True, "status": 200, "traced": ["## _invoke"]}
