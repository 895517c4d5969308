"""Fixtures shared by the integration tests: one moto server per test session, fresh
tables per test (unique names, so tests never see each other's items); likewise one
OpenLDAP slapd per session and a fresh subtree of it per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from idp_core import aws, models
from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_local.faults import FaultPlan
from tests.support.aws import fresh_tables, moto_server
from tests.support.slapd import Slapd, Subtree

# The session's moto server answers with these faults while a test plants them.
_FAULTS = FaultPlan()


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    with moto_server(faults=_FAULTS) as endpoint:
        yield endpoint


@pytest.fixture
def faults(aws_endpoint: str) -> Iterator[FaultPlan]:
    """Plant faults in the embedded AWS for one test; they are cleared after it."""
    yield _FAULTS
    _FAULTS.clear()
    # The cached clients' adaptive retries slowed down after the throttling: later tests
    # get fresh ones (each test binds fresh tables, which renews the models' own).
    aws._client.cache_clear()
    models._connection.cache_clear()


# The name other helpers were told about.
@pytest.fixture(scope="session")
def moto_server_url(aws_endpoint: str) -> str:
    return aws_endpoint


@pytest.fixture
def tables(aws_endpoint: str) -> Tables:
    return fresh_tables()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kms(aws_endpoint: str) -> Any:
    return boto3.client("kms")


@pytest.fixture
def key_id(kms: Any) -> str:
    """A symmetric KMS key like the stack's data key, which seals TOTP and token secrets
    (test_saml_signing overrides it with its signing key)."""
    return str(kms.create_key(Description="data key for tests")["KeyMetadata"]["KeyId"])


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    """One real OpenLDAP server for the session (a size limit of 500, as AD's default 1000
    would be, so imports must page); tests take a fresh subtree each with ``ldap_tree``."""
    with Slapd(size_limit=500) as server:
        yield server


@pytest.fixture
def ldap_tree(slapd: Slapd) -> Iterator[Subtree]:
    """A fresh ``ou=t<hex>`` with ``ou=people`` and ``ou=groups``, deleted after the test."""
    with slapd.subtree() as tree:
        yield tree
