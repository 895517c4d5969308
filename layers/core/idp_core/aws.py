"""The boto3 clients of a function: one per service and container, made when first needed,
so a cold start that never signs or sends pays nothing for them.

Every AWS call of the product (these clients and PynamoDB's, see ``idp_core.models``) runs
with the same bounded timeouts and retries: boto3's defaults (60 s to connect, 60 s to
read, then retries) outlast the functions' 15-second timeout, which would turn a throttled
or unreachable service into API Gateway's bare 502/504 instead of a page. With these, one
call gives up after ``CALL_BUDGET_SECONDS`` at worst and the request answers a clear 503
(``transient_failure`` names what failed; ``idp_core.web.errors`` maps it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any, Final

from idp_core import observability

# AWS endpoints in the function's region accept a connection in milliseconds; a second
# means the network path is broken (a VPC without a route or an endpoint).
CONNECT_TIMEOUT_SECONDS = 1.0
# DynamoDB and KMS answer in milliseconds, SES and SNS in a few hundred.
READ_TIMEOUT_SECONDS = 2.0
# The embedded AWS (moto: one Python process answering every service for the tests and
# `idp local`) can take seconds where DynamoDB takes milliseconds when the machine is busy;
# it sets this variable to a longer read timeout. A deployed function never has it.
EMBEDDED_READ_TIMEOUT_ENV: Final = "IDP_EMBEDDED_AWS_READ_TIMEOUT_SECONDS"
# One retry: enough for a throttled or dropped request; adaptive mode also slows this
# container's requests down while the service throttles it.
MAX_ATTEMPTS: Final = 2
RETRY_MODE: Final = "adaptive"
# botocore's backoff before retry n is at most 2 ** (n - 1) seconds.
MAX_BACKOFF_SECONDS = sum(2 ** (attempt - 1) for attempt in range(1, MAX_ATTEMPTS))
# The longest one call can take before it raises (7 s): within half of a 15-second
# function timeout, so even a second failing call (a notice whose failure the request
# survives, then the call that ends it) still leaves time for the error page.
CALL_BUDGET_SECONDS = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + MAX_BACKOFF_SECONDS


def read_timeout_seconds() -> float:
    return float(os.environ.get(EMBEDDED_READ_TIMEOUT_ENV, READ_TIMEOUT_SECONDS))


def client_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout_seconds(),
        retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS},
    )


def pynamodb_settings() -> dict[str, Any]:
    """The same bounds for PynamoDB's own DynamoDB client (its settings' names).

    With ``retry_configuration`` set, botocore retries PynamoDB's calls as it does ours;
    PynamoDB's ``max_retry_attempts`` then only bounds how often a batch resends the items
    DynamoDB left unprocessed, which keeps its default."""
    return {
        "connect_timeout_seconds": CONNECT_TIMEOUT_SECONDS,
        "read_timeout_seconds": read_timeout_seconds(),
        "retry_configuration": {"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS},
    }


def client(service: str) -> Any:
    # Keyed by the endpoint, region and read timeout too: a process that switches between
    # embedded AWS servers (the CLI's tests, the local stack) never gets a client of a stopped one.
    return _client(
        service,
        os.environ.get("AWS_ENDPOINT_URL"),
        os.environ.get("AWS_DEFAULT_REGION"),
        read_timeout_seconds(),
    )


@cache
def _client(service: str, endpoint_url: str | None, region: str | None, read_timeout: float) -> Any:
    import boto3

    made = boto3.client(service, config=client_config())  # type: ignore[call-overload]
    if service == "kms":
        # Every KMS failure, whoever called and whatever they do with it, is counted and
        # logged here: a KMS key that is disabled, throttled or unreachable stops sign-ins.
        made.meta.events.register("after-call.kms", _kms_answered)
        made.meta.events.register("after-call-error.kms", _kms_unreachable)
    return made


def _kms_answered(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
    if http_response.status_code < HTTPStatus.MULTIPLE_CHOICES:  # A 1xx or 2xx answer.
        return
    code = parsed.get("Error", {}).get("Code", str(http_response.status_code))
    observability.count("KmsError")
    observability.logger.error(
        "KMS %s failed: %s", model.name, code, extra={"failed": f"kms {model.name}", "error_code": code}
    )


def _kms_unreachable(exception: Exception, context: dict[str, Any], **_: Any) -> None:
    observability.count("KmsError")
    observability.logger.error(
        "KMS did not answer: %s", exception, extra={"failed": "kms", "error_code": type(exception).__name__}
    )


# ---------------------------------------------------------------- transient failures

# A DynamoDB write whose condition a concurrent request broke first: the code handles the
# races it expects (a replayed code, a counter at its limit); one it did not expect reaches
# the error page, where trying again is the answer, as after throttling.
_LOST_RACE_CODES = frozenset({"ConditionalCheckFailedException", "TransactionConflictException"})
# DynamoDB cancels a whole transaction for one of these reasons; trying again may succeed.
_TRANSIENT_CANCELLATIONS = frozenset(
    {"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded", "ConditionalCheckFailed"}
)


def transient_failure(exc: BaseException) -> str | None:
    """What failed, e.g. ``"PutItem: ProvisionedThroughputExceededException"``, when ``exc``
    (or what it was raised from: PynamoDB wraps botocore's errors) is an AWS call that was
    throttled, failed on the service's side, did not answer in time or lost a race to a
    concurrent write; None otherwise.

    Beyond the races, "transient" is what botocore's own retries count as retryable
    (throttling codes and statuses, 5xx answers, connection errors and timeouts); those
    calls already had their retry, so the answer is "try again".
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        what = _transient(current)
        if what is not None:
            return what
        pending.extend([current.__cause__, getattr(current, "cause", None)])
    return None


def _transient(exc: BaseException) -> str | None:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ConnectionError | HTTPClientError):
        return f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, ClientError):
        return None
    from botocore.retries.standard import RetryContext, ThrottledRetryableChecker, TransientRetryableChecker

    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    context = RetryContext(
        attempt_number=1, parsed_response=exc.response, http_response=SimpleNamespace(status_code=status)
    )
    reasons = sorted(
        {str(reason.get("Code")) for reason in exc.response.get("CancellationReasons", ())}
        & _TRANSIENT_CANCELLATIONS
    )
    checkers = (ThrottledRetryableChecker(), TransientRetryableChecker())
    throttled = status == HTTPStatus.TOO_MANY_REQUESTS  # SNS's Throttled too, whatever the code.
    if code in _LOST_RACE_CODES or reasons or throttled or any(c.is_retryable(context) for c in checkers):
        return f"{exc.operation_name}: {code}" + (f" ({','.join(reasons)})" if reasons else "")
    return None


def failure_reason(exc: BaseException, *, hide: Iterable[str | None] = ()) -> str:
    """A failed AWS call as a log line's reason: the error code and the service's message,
    with each of ``hide`` (a code that was sent, its destination) masked, since a
    service's message may quote the request."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        text = f"{error.get('Code') or type(exc).__name__}: {error.get('Message') or exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    for value in hide:
        if value:
            text = text.replace(value, "[hidden]")
    return text
