"""Session and user reads are strongly consistent (S15; issue 11 point 4).

DynamoDB's default read is eventually consistent: for about a second after a logout, a
session rotation or the disabling of a user, a read may still return the old item, and
the old cookie would still work. moto always answers consistently, so these tests look at
what the handlers ASK for: every read of a session item and of the user item behind it
carries ``ConsistentRead``, recorded with botocore's ``before-parameter-build`` event on every
DynamoDB client the models make.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.session
import pynamodb.connection.base
import pytest

from idp_core import accounts, models
from idp_core.clock import FakeClock
from idp_core.models import ALL_MODELS, Session, User
from tests.helpers.mfa import give_totp, submit_code, totp_code
from tests.helpers.sso import PASSWORD, Sso, csrf_token, is_signed_in, signed_in


class DynamoDbCalls:
    """The DynamoDB requests of this process: (operation, parameters) in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def record(self, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        self.calls.append((model.name, params))

    def clear(self) -> None:
        self.calls.clear()

    def reads_of(self, table: str) -> list[tuple[str, bool]]:
        """(operation, consistent?) of each read that touched ``table``."""
        reads: list[tuple[str, bool]] = []
        for operation, params in self.calls:
            if operation in ("GetItem", "Query", "Scan") and params.get("TableName") == table:
                reads.append((operation, bool(params.get("ConsistentRead"))))
            if operation == "BatchGetItem" and table in params["RequestItems"]:
                reads.append((operation, bool(params["RequestItems"][table].get("ConsistentRead"))))
        return reads


@pytest.fixture
def dynamodb_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDbCalls]:
    recorder = DynamoDbCalls()
    original = pynamodb.connection.base.get_session

    def session_with_recorder(*args: Any, **kwargs: Any) -> botocore.session.Session:
        session = original(*args, **kwargs)
        session.register("before-parameter-build.dynamodb", recorder.record)  # type: ignore[arg-type]
        return session

    monkeypatch.setattr(pynamodb.connection.base, "get_session", session_with_recorder)
    # The models, and the process-wide connection of the calls around them (batches,
    # transactions), keep their botocore session once made; make them anew, with the recorder.
    for model in ALL_MODELS.values():
        monkeypatch.setattr(model, "_connection", None)
    models._connection.cache_clear()
    yield recorder
    models._connection.cache_clear()


pytestmark = pytest.mark.sso_setup("password_only")


def test_attack_a_logged_out_session_is_looked_up_with_a_strongly_consistent_read(
    sso: Sso, clock: FakeClock, dynamodb_calls: DynamoDbCalls
) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    browser = signed_in(sso, "alice")
    stolen = dict(browser.cookies)
    dynamodb_calls.clear()
    assert is_signed_in(sso, browser)
    # Every read of the session and of its user on a page request is consistent.
    sessions_reads = dynamodb_calls.reads_of(Session.Meta.table_name)
    users_reads = dynamodb_calls.reads_of(User.Meta.table_name)
    assert sessions_reads and all(consistent for _, consistent in sessions_reads), sessions_reads
    assert users_reads and all(consistent for _, consistent in users_reads), users_reads

    page = sso.get(browser, "/me")
    assert sso.post(browser, "/logout", {"csrf_token": csrf_token(page.text)}).status_code == 303
    replay = sso.browser()
    replay.cookies.update(stolen)
    assert not is_signed_in(sso, replay)


def test_attack_the_session_id_before_the_second_factor_stops_working_at_once(
    sso: Sso, clock: FakeClock, dynamodb_calls: DynamoDbCalls
) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    secret = give_totp(sso, "alice")
    browser = signed_in(sso, "alice")
    half_way = dict(browser.cookies)
    dynamodb_calls.clear()
    verified = submit_code(sso, browser, "/mfa?next=/me", totp_code(secret, clock))
    assert verified.status_code == 303, verified.text[:500]
    sessions_reads = dynamodb_calls.reads_of(Session.Meta.table_name)
    assert sessions_reads and all(consistent for _, consistent in sessions_reads), sessions_reads
    # The rotated id reaches nothing, not even the challenge it was made for.
    replay = sso.browser()
    replay.cookies.update(half_way)
    assert sso.get(replay, "/mfa?next=/me").status_code == 303
    assert is_signed_in(sso, browser)


def test_attack_a_disabled_user_is_read_consistently_so_their_session_ends_at_once(
    sso: Sso, clock: FakeClock, dynamodb_calls: DynamoDbCalls
) -> None:
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    browser = signed_in(sso, "alice")
    # The session item stays (as when the by_user index lags behind the disabling); the user
    # item read on the next request must be the new one.
    User.get("alice").update(actions=[User.disabled.set(True)])
    dynamodb_calls.clear()
    assert not is_signed_in(sso, browser)
    users_reads = dynamodb_calls.reads_of(User.Meta.table_name)
    assert users_reads and all(consistent for _, consistent in users_reads), users_reads
