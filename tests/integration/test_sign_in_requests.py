"""One DynamoDB connection and one client per AWS service in an execution environment
(issue 13): a warm sign-in makes no botocore client, whatever the models, batches and
transactions it runs."""

from __future__ import annotations

from typing import Any

import botocore.client
import botocore.session
import pytest

from idp_core import mfa_pages, models, signin
from idp_core.clock import FakeClock
from idp_core.config import Tables
from tests.helpers.mfa import MFA_APP, add_user, give_totp, sign_in_with_totp
from tests.helpers.round_trips import RoundTrips
from tests.helpers.sso import Sso, running_sso

pytestmark = pytest.mark.sso_setup("two_apps")


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


def test_a_sign_in_with_totp_costs_8_dynamodb_and_2_kms_requests_in_7_round_trips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The budget of BENCHMARKS.md, exactly: the password step reads in one round trip and
    writes the session in another; the code's answer reads and reserves at once, spends the
    time step, signs the assertion and the response, and writes the session (issue 13)."""
    import lxml.html
    import pyotp

    from idp_core import accounts, apps
    from idp_local.request_count import RequestCounter
    from tests.helpers.sso import PASSWORD, csrf_token
    from tests.support.aws import fresh_tables, moto_server

    counter = RequestCounter()
    round_trips = RoundTrips()
    with moto_server(counter):
        tables = fresh_tables()
        clock = FakeClock()
        with running_sso(tables, clock) as sso:
            accounts.create_group("engineers", clock=clock)
            apps.create_aws_app(
                "aws-budget", apps.AwsAppChoices(account_id="123456789012", roles=[("Engineer", "engineers")])
            )
            for name in ("warm", "alice"):
                add_user(name, clock)
            sign_in_with_totp(sso, "warm", give_totp(sso, "warm"), app="aws-budget")
            secret = give_totp(sso, "alice")
            browser = sso.browser()
            token = csrf_token(sso.get(browser, "/login?app=aws-budget").text)
            clock.advance(30)
            round_trips.record(monkeypatch, signin, mfa_pages)
            counter.reset()
            page = sso.post(
                browser,
                "/login",
                {"csrf_token": token, "username": "alice", "password": PASSWORD, "app": "aws-budget"},
            )
            form = lxml.html.fromstring(page.text).xpath('//form[contains(@action, "/mfa/verify")]')[0]
            fields = {
                field.get("name"): field.get("value") for field in form.xpath('.//input[@type="hidden"]')
            }
            launched = sso.post(
                browser, "/mfa/verify", {**fields, "code": pyotp.TOTP(secret).at(clock.now())}
            )
            assert "SAMLResponse" in launched.text
            counts = counter.by_service()
    assert (counts["dynamodb"], counts["kms"]) == (8, 2)
    assert set(counts) == {"dynamodb", "kms"}
    assert round_trips.sequential() == 7, round_trips.trips
    # The password step's reads, and the code's read with its reservation, each overlap.
    assert round_trips.overlapped() == 2, round_trips.trips
