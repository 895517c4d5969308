"""Count what the process asks DynamoDB for: each request by operation, and the items each one
read (a Query's ScannedCount, the items a BatchGetItem returned), as DynamoDB bills them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from idp_core import models


@dataclass
class DynamoDbReads:
    requests: Counter[str] = field(default_factory=Counter)
    items_read: Counter[str] = field(default_factory=Counter)

    def _after_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        operation = model.name
        self.requests[operation] += 1
        if "ScannedCount" in parsed:
            self.items_read[operation] += int(parsed["ScannedCount"])
        for items in (parsed.get("Responses") or {}).values():
            self.items_read[operation] += len(items)


@contextmanager
def counting_dynamodb_reads() -> Iterator[DynamoDbReads]:
    """The requests made through the process's one DynamoDB connection (``models.connection``)
    while the block runs."""
    reads = DynamoDbReads()
    events = models.connection().client.meta.events
    events.register("after-call.dynamodb", reads._after_call)
    try:
        yield reads
    finally:
        events.unregister("after-call.dynamodb", reads._after_call)


def put_items_directly(table_name: str, items: Iterator[dict[str, Any]], region: str = "us-east-1") -> None:
    """Store many items in the embedded AWS's table through moto's own backend, in this process:
    tens of thousands in seconds, where BatchWriteItem over HTTP would take minutes."""
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][region]
    for item in items:
        backend.put_item(table_name, item)
