"""One DynamoDB connection and one client per AWS service in an execution environment
(issue 13): a warm sign-in makes no botocore client, whatever the models, batches and
transactions it runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest

from idp_core import models
from idp_core.clock import FakeClock
from idp_core.config import Tables
from tests.helpers.mfa import MFA_APP, add_user, directory, give_totp, sign_in_with_totp
from tests.helpers.sso import Sso, running_sso


@pytest.fixture
def sso(tables: Tables, clock: FakeClock) -> Iterator[Sso]:
    with running_sso(tables, clock) as running:
        directory(clock)
        yield running


def test_every_model_goes_through_the_one_connection(tables: Tables) -> None:
    shared = models.connection()
    for model in models.ALL_MODELS.values():
        assert model._get_connection().connection is shared, model.__name__


def test_a_warm_sign_in_makes_no_aws_client(
    sso: Sso, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("warm", "alice"):
        add_user(name, clock)
    warm_secret, secret = give_totp(sso, "warm"), give_totp(sso, "alice")
    sign_in_with_totp(sso, "warm", warm_secret, app=MFA_APP)  # the first requests make the clients
    made: list[str] = []
    original = botocore.session.Session.create_client

    def counting(self: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        made.append(service_name)
        return original(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    clock.advance(30)
    sign_in_with_totp(sso, "alice", secret, app=MFA_APP)
    assert made == []
