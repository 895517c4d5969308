"""The embedded AWS for tests: a real moto server on a free loopback port."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from idp_core.aws import EMBEDDED_READ_TIMEOUT_ENV
from idp_core.config import Tables
from idp_core.models import ALL_MODELS, bind_tables
from idp_local.faults import FaultPlan
from idp_local.request_count import CountingMotoServer, RequestCounter
from idp_local.state import embedded_aws_env

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server(counter: RequestCounter | None = None, faults: FaultPlan | None = None) -> Iterator[str]:
    """Start moto, point every boto3/botocore client of this process at it, stop it after.
    ``faults``: what it answers instead of moto while a test plants a fault (``idp_local.faults``)."""
    server = CountingMotoServer(counter or RequestCounter(), port=free_port(), faults=faults)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {name: os.environ.get(name) for name in AWS_ENV}
    os.environ.update(embedded_aws_env(endpoint, REGION), AWS_SESSION_TOKEN="testing")
    try:
        yield endpoint
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# What points boto3 and PynamoDB at the embedded AWS.
AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    EMBEDDED_READ_TIMEOUT_ENV,
)


def fresh_tables() -> Tables:
    """A new set of tables with a unique prefix, bound to the models."""
    tables = Tables.with_prefix(f"t{uuid.uuid4().hex[:8]}-")
    create_new_tables(tables)
    return tables


def create_new_tables(tables: Tables) -> None:
    """Create ``tables`` (a prefix not used before) as ``idp_core.models.create_tables`` does,
    less the two requests a table it adds around PynamoDB's ``create_table``: a second look
    whether the table exists, and the wait until it is active, which moto makes it at once.
    That was half the set-up of most integration tests."""
    bind_tables(tables)
    for model in ALL_MODELS.values():
        model.create_table(billing_mode="PAY_PER_REQUEST")
