"""The functions in worker pools behind the gateway (``running_sso(workers=...)``), driven
over HTTP: the test's FakeClock reaches the workers, and the AWS requests a sign-in makes
are counted the same whether the handlers run in this process or in workers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from idp_core import accounts
from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_local.request_count import RequestCounter
from tests.helpers.local_stack import is_alive
from tests.helpers.mfa import (
    MFA_APP,
    directory,
    give_totp,
    is_challenge,
    password_only,
    submit_code,
    totp_code,
)
from tests.helpers.sso import Sso, running_sso
from tests.support.aws import fresh_tables, moto_server


@pytest.fixture
def pooled(tables: Tables, clock: FakeClock) -> Iterator[Sso]:
    with running_sso(tables, clock, workers=2) as sso:
        password_only(clock)
        yield sso


def test_the_workers_follow_the_tests_clock(pooled: Sso, clock: FakeClock) -> None:
    """The session's idle timeout (30 minutes) is decided in an sso worker: only the time the
    test moved can end it."""
    accounts.create_user(accounts.NewUser("alice", password="correct horse battery staple"))
    browser = pooled.browser()
    assert pooled.sign_in(browser, "alice").status_code == 303

    clock.advance(29 * 60)
    assert pooled.get(browser, "/me").status_code == 200
    clock.advance(31 * 60)
    expired = pooled.get(browser, "/me")

    assert expired.status_code == 303 and expired.headers["Location"].startswith("/login")
    [worker] = pooled.pools["sso"].pids  # served by a worker of the pool, not this process
    assert is_alive(worker)


def sign_in_counts(sso: Sso, counter: RequestCounter, username: str, secret: str) -> Counter[tuple[str, str]]:
    """The AWS requests of one password + authenticator sign-in to an app."""
    browser = requests.Session()
    sso.get(browser, f"/login?app={MFA_APP}")
    counter.reset()
    assert is_challenge(sso.sign_in(browser, username, app=MFA_APP))
    verified = submit_code(sso, browser, f"/mfa?app={MFA_APP}", totp_code(secret, sso.clock))
    assert "SAMLResponse" in verified.text
    return counter.snapshot()


def test_a_sign_in_makes_the_same_aws_requests_through_workers_as_in_process(clock: FakeClock) -> None:
    """The counts behind the benchmarks' requests-per-sign-in are taken at the embedded AWS,
    so they stay exact however many processes run the handlers."""
    counter = RequestCounter()
    counts: dict[int, Counter[tuple[str, str]]] = {}
    with moto_server(counter):
        tables = fresh_tables()
        directory(clock)
        for workers in (0, 2):
            with running_sso(tables, clock, workers=workers) as sso:
                name = f"user{workers}"
                accounts.create_user(
                    accounts.NewUser(name, password="correct horse battery staple", groups=["engineers"])
                )
                secret = give_totp(sso, name)
                sign_in_counts(sso, counter, name, secret)  # warm: caches and the signing certificate
                clock.advance(30)  # the next time step, so the code is not a replay
                counts[workers] = sign_in_counts(sso, counter, name, secret)
                clock.advance(30)
    assert counts[2] == counts[0]
    assert counts[0][("dynamodb", "BatchGetItem")] >= 1
