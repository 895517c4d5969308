"""The boto3 clients of a function: one per service and container, made when first needed,
so a cold start that never signs or sends pays nothing for them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from typing import Any


def client(service: str) -> Any:
    # Keyed by the endpoint and region too: a process that switches between embedded AWS
    # servers (the CLI's tests, the local stack) never gets a client of a stopped one.
    return _client(service, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_DEFAULT_REGION"))


@cache
def _client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    import boto3

    made = boto3.client(service)  # type: ignore[call-overload]
    if service == "kms":
        # Every KMS failure, whoever called and whatever they do with it, is counted and
        # logged here: a KMS key that is disabled, throttled or unreachable stops sign-ins.
        made.meta.events.register("after-call.kms", _kms_answered)
        made.meta.events.register("after-call-error.kms", _kms_unreachable)
    return made


def _kms_answered(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
    if http_response.status_code < 300:
        return
    from idp_core import observability

    code = parsed.get("Error", {}).get("Code", str(http_response.status_code))
    observability.count("KmsError")
    observability.logger.error(
        "KMS %s failed: %s", model.name, code, extra={"failed": f"kms {model.name}", "error_code": code}
    )


def _kms_unreachable(exception: Exception, context: dict[str, Any], **_: Any) -> None:
    from idp_core import observability

    observability.count("KmsError")
    observability.logger.error(
        "KMS did not answer: %s", exception, extra={"failed": "kms", "error_code": type(exception).__name__}
    )


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
