"""The boto3 clients of a function: one per service and container, made when first needed,
so a cold start that never signs or sends pays nothing for them."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3

    return boto3.client(service)  # type: ignore[call-overload]
