"""The boto3 clients of a function: one per service and container, made when first needed,
so a cold start that never signs or sends pays nothing for them."""

from __future__ import annotations

import os
from functools import cache
from typing import Any


def client(service: str) -> Any:
    # Keyed by the endpoint and region too: a process that switches between embedded AWS
    # servers (the CLI's tests, the local stack) never gets a client of a stopped one.
    return _client(service, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_DEFAULT_REGION"))


@cache
def _client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    import boto3

    return boto3.client(service)  # type: ignore[call-overload]
