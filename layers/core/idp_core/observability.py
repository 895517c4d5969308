"""Logs, metrics and traces of the functions, with aws-lambda-powertools (DESIGN.md "Operations").

- ``logger``: the one Powertools Logger of the process: JSON lines with the service name
  and, during an invocation, the API Gateway request id as ``correlation_id``. Never pass
  it a secret (password, code, cookie or token value, SAMLResponse, TOTP secret, bind
  password): log what happened and to whom, as the audit trail does.
- ``count("AccountLocked")``: one of the metrics the alarms and the dashboard read (the
  names are fixed by ``METRICS``). Counts gather in memory and the entry point
  (``invocation``) prints them once per invocation as one CloudWatch EMF blob, so the CLI,
  which runs the same logic outside Lambda, prints none.
- ``traced``: X-Ray tracing of the handler, only when POWERTOOLS_TRACE_DISABLED says
  "false"; otherwise aws_xray_sdk is never imported, which keeps the cold start small.

Configuration is Powertools' own environment (set by infra/ on every function):
POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL and
POWERTOOLS_TRACE_DISABLED. Without a service name (the local stack runs every function
in one process) each invocation is labelled with its function's own name.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

SERVICE_ENV = "POWERTOOLS_SERVICE_NAME"
NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"
DEFAULT_NAMESPACE = "ServerlessIdp"
# The logger's name (and its service until an invocation names one) when no service is set.
UNNAMED_SERVICE = "serverless-idp"

# The metrics of the observability contract (infra/ builds alarms and the dashboard on them).
METRICS = frozenset(
    {
        "SignInPasswordAccepted",
        "SignInPasswordRefused",
        "SecondFactorAccepted",
        "SecondFactorRefused",
        "AssertionIssued",
        "AssertionRefused",
        "AccountLocked",
        "CodeSentSms",
        "CodeSentEmail",
        "DeliveryFailed",
        "AdaptiveDenied",
        "ImportFailed",
        "ImportUsersCreated",
        "ImportUsersUpdated",
        "ImportUsersDisabled",
        "KmsError",
        "UnhandledError",
    }
)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (a test may swap it).

    Standard error, not standard output: Lambda sends both to CloudWatch Logs, and the
    CLI, which runs the same logic, keeps its standard output for its own answers
    (``--json``). The EMF metric blobs go to standard output, as Powertools prints them.
    """

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


logger = Logger(service=os.environ.get(SERVICE_ENV) or UNNAMED_SERVICE, logger_handler=_CurrentStderr())
# Its own handler writes each line once; the root logger's handlers (Lambda's runtime, the
# local stack's plain-text console) must not write it again.
logging.getLogger(logger.name).propagate = False

# The AWS SDK's and PynamoDB's DEBUG lines carry whole requests and answers (an e-mail's body
# with its code, a decrypted secret). They stay off even when Lambda's log level
# (AWS_LAMBDA_LOG_LEVEL, which sets the root logger) or a developer asks for DEBUG.
CHATTY_LIBRARIES = ("boto3", "botocore", "urllib3", "pynamodb", "ldap3")
for _library in CHATTY_LIBRARIES:
    logging.getLogger(_library).setLevel(logging.WARNING)

# The counts of the invocation in progress. A context variable (like Powertools' logging
# keys) rather than a thread-local: requests that run in parallel in one process (the local
# stack's gateway) keep apart, while the calls an invocation runs in other threads
# (``idp_core.concurrency.together``) count into it.
_pending_counts: ContextVar[Counter[str] | None] = ContextVar("idp_pending_metrics", default=None)
_counting = threading.Lock()


def _pending() -> Counter[str]:
    pending = _pending_counts.get()
    if pending is None:
        pending = Counter()
        _pending_counts.set(pending)
    return pending


def count(name: str, value: int = 1) -> None:
    """Add ``value`` to the metric ``name`` for this invocation (a name of ``METRICS``)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}: the alarms read only {sorted(METRICS)}")
    pending = _pending()
    with _counting:
        pending[name] += value


def flush_metrics(service: str) -> None:
    """Print this invocation's counts as one EMF blob (namespace, a ``service`` dimension) and
    forget them; nothing when nothing was counted."""
    pending = _pending()
    if not pending:
        return
    with _counting:
        counts = dict(pending)
        pending.clear()
    # A provider of our own: Powertools' Metrics class shares one metric set per process.
    metrics = AmazonCloudWatchEMFProvider(
        namespace=os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE,
        service=service,
        metric_set={},
        dimension_set={},
        metadata_set={},
    )
    for name, value in sorted(counts.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()


def _service(function_name: str) -> str:
    return os.environ.get(SERVICE_ENV) or function_name


@contextmanager
def invocation(event: Any, context: Any, *, function_name: str) -> Iterator[None]:
    """One Lambda invocation: its log lines carry the service, the request ids and whether
    this is the container's first invocation; its counts are flushed when it ends, even
    when it raises."""
    service = _service(function_name)
    keys: dict[str, Any] = {"service": service, "correlation_id": _correlation_id(event)}
    keys.update(_lambda_context_keys(context))
    keys["cold_start"] = _cold_start()
    logger.thread_safe_append_keys(**keys)
    # Made here, in the invocation's context, so that calls it runs in other threads share it.
    _pending_counts.set(Counter())
    try:
        yield
    finally:
        try:
            flush_metrics(service)
        finally:
            logger.thread_safe_clear_keys()


def _correlation_id(event: Any) -> str | None:
    if not isinstance(event, dict):
        return None
    request_context = event.get("requestContext")
    if isinstance(request_context, dict) and request_context.get("requestId"):
        return str(request_context["requestId"])
    # An EventBridge event has its own id.
    return str(event["id"]) if event.get("id") else None


def _lambda_context_keys(context: Any) -> dict[str, Any]:
    if context is None or not hasattr(context, "aws_request_id"):
        return {}
    return {
        "function_name": getattr(context, "function_name", None),
        "function_request_id": context.aws_request_id,
    }


_first_invocation = True


def _cold_start() -> bool:
    global _first_invocation
    first, _first_invocation = _first_invocation, False
    return first


def tracing_enabled() -> bool:
    """True only when POWERTOOLS_TRACE_DISABLED is set to a false value ("false", "0"):
    infra/ sets it on every function, and unset (the local stack, the tests) means off."""
    return os.environ.get(TRACE_DISABLED_ENV, "true").strip().lower() in ("false", "0", "no", "off")


Handler = Callable[..., Any]


def traced(handler: Handler, *, function_name: str) -> Handler:
    """``handler`` under an X-Ray segment when tracing is on (Powertools Tracer, which also
    traces the AWS calls); ``handler`` itself otherwise, without loading the X-Ray SDK."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools.tracing import Tracer

    tracer = Tracer(service=_service(function_name))
    return tracer.capture_lambda_handler(handler, capture_response=False)  # type: ignore[no-any-return]
