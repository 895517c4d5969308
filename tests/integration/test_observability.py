"""Logs and metrics of the functions (issue 12, point 4), as CloudWatch would receive them:
Powertools JSON log lines with the API Gateway request id as correlation id and never a
secret, and one EMF blob per invocation with the contract's metric names, counted where
things happen."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from idp_core import accounts, aws, mail, observability
from idp_core.clock import FakeClock
from idp_core.config import LockoutPolicy, Tables
from idp_core.directories import store
from idp_core.mfa import factors, flow
from idp_core.models import User
from idp_local.faults import Fault, FaultPlan
from tests.helpers import directory_imports as scheduled_imports
from tests.helpers.adaptive import browser_at, give_policy
from tests.helpers.mfa import (
    MFA_APP,
    OPEN_APP,
    add_user,
    code_in,
    directory,
    emails_to,
    give_totp,
    is_challenge,
    password_only,
    submit_code,
    totp_code,
)
from tests.helpers.observed import Captured, capture
from tests.helpers.sso import PASSWORD, Sso, csrf_token, event, running_sso
from tests.support.slapd import Slapd, Subtree, closed_port

ADDRESS = "alice@observed.example"


@pytest.fixture
def sso(tables: Tables, clock: FakeClock) -> Iterator[Sso]:
    directory(clock)
    with running_sso(tables, clock, lockout=LockoutPolicy(max_failures=100, failure_factor=3)) as running:
        yield running


def _secrets_of(browser: requests.Session) -> set[str]:
    """The cookie values a browser holds (session, CSRF, device), raw and URL-decoded."""
    values = {cookie.value for cookie in browser.cookies if cookie.value}
    return values | {unquote(value) for value in values}


def _assert_none_in(captured: Captured, secrets: set[str]) -> None:
    text = captured.text
    assert text, "nothing was captured: the scan would prove nothing"
    for secret in secrets:
        assert len(secret) >= 6, secret  # a short value would match by chance
        assert secret not in text, f"a secret is in the logs: {secret[:4]}..."


def test_a_full_sign_in_logs_no_secret_even_at_debug(sso: Sso) -> None:
    add_user("alice", sso.clock, email=ADDRESS)
    secret = give_totp(sso, "alice")
    email_factor = flow.start_contact_factor("alice", "email", ADDRESS, clock=sso.clock)
    factors.activate_factor(email_factor, sso.clock)
    browser = sso.browser()
    with capture("DEBUG", every_library=True) as seen:
        form = sso.get(browser, "/login")
        login_csrf = csrf_token(form.text)
        signed_in = sso.post(
            browser,
            "/login",
            {"csrf_token": login_csrf, "username": "alice", "password": PASSWORD, "app": MFA_APP},
        )
        assert is_challenge(signed_in)
        half_way = _secrets_of(browser)
        # An e-mail code is sent (and not used), then the authenticator's code signs in.
        page = sso.get(browser, f"/mfa?app={MFA_APP}&factor={email_factor.factor_id}")
        mfa_csrf = csrf_token(page.text)
        sent = sso.post(
            browser, "/mfa/send", {"csrf_token": mfa_csrf, "factor": email_factor.factor_id, "app": MFA_APP}
        )
        assert sent.status_code == 303
        emailed_code = code_in(str(emails_to(ADDRESS)[-1].body))
        code = totp_code(secret, sso.clock)
        verified = submit_code(sso, browser, f"/mfa?app={MFA_APP}", code)
        assert verified.status_code == 200
        saml_response = re.search(r'name="SAMLResponse" value="([^"]+)"', verified.text)
        assert saml_response
    raw_secret = base64.b32decode(secret)
    _assert_none_in(
        seen,
        {
            PASSWORD,
            secret,
            base64.b64encode(raw_secret).decode(),
            raw_secret.hex(),
            code,
            emailed_code,
            login_csrf,
            mfa_csrf,
            saml_response.group(1),
            saml_response.group(1)[:64],  # any piece of it
            *half_way,
            *_secrets_of(browser),
        },
    )
    assert seen.others, "the other libraries' loggers were captured too (at DEBUG)"
    # The capture did see the requests: one line per answer, each with its request id.
    answered = [line for line in seen.log_lines() if line["message"] == "answered"]
    assert [line["path"] for line in answered] == [
        "/login",
        "/login",
        "/mfa",
        "/mfa/send",
        "/mfa",
        "/mfa/verify",
    ]
    assert len({line["correlation_id"] for line in answered}) == len(answered)
    assert [line["service"] for line in answered] == ["sso", "sso", "otp", "otp", "otp", "sso"]


class _Context:
    """The Lambda context attributes the entry point reads."""

    function_name = "ServerlessIdp-Sso"
    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"


def test_an_invocation_logs_its_api_gateway_request_id_and_prints_one_emf_blob(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD), clock=sso.clock)
    body = b"csrf_token=x&username=bob&password=wrong-password"
    request = event(
        "POST", "/login", headers={"Content-Type": "application/x-www-form-urlencoded"}, body=body
    )
    with capture("DEBUG") as seen:
        answer = sso.handler.lambda_handler(request, _Context())
        observability.logger.info("after the invocation")
    assert answer["statusCode"] == 403  # no CSRF cookie: refused before the password is read
    line = seen.log_line("answered")
    assert line["correlation_id"] == request["requestContext"]["requestId"]
    assert line["function_request_id"] == _Context.aws_request_id
    assert (line["service"], line["function_name"], line["status"]) == ("sso", "ServerlessIdp-Sso", 403)
    # The keys belong to the invocation: a line logged after it carries none of them.
    assert "correlation_id" not in seen.log_line("after the invocation")
    assert seen.emf_blobs() == []  # nothing happened that a metric counts, so nothing is printed

    browser = sso.browser()
    with capture() as seen:
        sso.sign_in(browser, "bob", "wrong-password")
        sso.sign_in(browser, "bob", "wrong-password")
    blobs = seen.emf_blobs()
    assert len(blobs) == 2  # one per invocation that counted something (the forms count nothing)
    blob = blobs[0]
    assert blob["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "ServerlessIdp",
            "Dimensions": [["service"]],
            "Metrics": [{"Name": "SignInPasswordRefused", "Unit": "Count"}],
        }
    ]
    assert (blob["service"], blob["SignInPasswordRefused"]) == ("sso", [1.0])


def test_the_sign_in_funnel_and_lockouts_are_counted_where_they_happen(sso: Sso) -> None:
    add_user("carol", sso.clock)
    secret = give_totp(sso, "carol")
    with capture() as seen:
        for _ in range(3):  # the third failure locks for a while (failure_factor=3)
            assert sso.sign_in(sso.browser(), "carol", "wrong-password").status_code == 401
        assert sso.sign_in(sso.browser(), "carol").status_code == 401  # locked: even the right one
    assert seen.metrics("sso") == {"SignInPasswordRefused": 4, "AccountLocked": 1}

    sso.clock.advance(3600)
    browser = sso.browser()
    with capture() as seen:
        assert is_challenge(sso.sign_in(browser, "carol", app=MFA_APP))
        right = totp_code(secret, sso.clock)
        wrong = submit_code(sso, browser, f"/mfa?app={MFA_APP}", f"{(int(right) + 1) % 1_000_000:06d}")
        assert wrong.status_code == 401
        verified = submit_code(sso, browser, f"/mfa?app={MFA_APP}", totp_code(secret, sso.clock))
        assert "SAMLResponse" in verified.text
    assert seen.metrics("sso") == {
        "SignInPasswordAccepted": 1,
        "SecondFactorRefused": 1,
        "SecondFactorAccepted": 1,
        "AssertionIssued": 1,
    }


def test_a_hard_lock_is_counted_once(tables: Tables, clock: FakeClock) -> None:
    accounts.create_user(accounts.NewUser("dave", password=PASSWORD), clock=clock)
    policy = LockoutPolicy(max_failures=2, failure_factor=0)
    with running_sso(tables, clock, lockout=policy) as sso, capture() as seen:
        for _ in range(3):
            sso.sign_in(sso.browser(), "dave", "wrong-password")
    assert seen.metrics("sso") == {"SignInPasswordRefused": 3, "AccountLocked": 1}


def test_adaptive_denials_and_refused_assertions_are_counted(sso: Sso) -> None:
    password_only(sso.clock)
    give_policy(OPEN_APP, sso.clock, deny_cidrs=("127.0.0.9/32",))
    add_user("erin", sso.clock)
    accounts.create_user(accounts.NewUser("jörg", password=PASSWORD, groups=["engineers"]), clock=sso.clock)
    with capture() as seen:
        denied = sso.sign_in(browser_at("127.0.0.9"), "erin", app=OPEN_APP)
        assert denied.status_code == 403
    assert seen.metrics("sso") == {"AdaptiveDenied": 1}  # refused before the password is read

    browser = sso.browser()
    assert sso.sign_in(browser, "jörg").status_code == 303
    with capture() as seen:
        refused = sso.get(browser, f"/apps/{OPEN_APP}/launch")
    assert refused.status_code == 400 and "role session name" in refused.text
    assert seen.metrics("sso") == {"AssertionRefused": 1}


def test_codes_sent_are_counted_by_channel(sso: Sso) -> None:
    add_user("frank", sso.clock, email="frank@observed.example")
    give_totp(sso, "frank")
    sent = {}
    for kind, destination in (("email", "frank@observed.example"), ("sms", "+447400123498")):
        factor = flow.start_contact_factor("frank", kind, destination, clock=sso.clock)
        factors.activate_factor(factor, sso.clock)
        sent[kind] = factor.factor_id
    browser = sso.browser()
    assert is_challenge(sso.sign_in(browser, "frank", app=MFA_APP))
    with capture() as seen:
        for factor_id in sent.values():
            page = sso.get(browser, f"/mfa?app={MFA_APP}&factor={factor_id}")
            posted = sso.post(
                browser,
                "/mfa/send",
                {"csrf_token": csrf_token(page.text), "factor": factor_id, "app": MFA_APP},
            )
            assert posted.status_code == 303
    assert seen.metrics("otp") == {"CodeSentEmail": 1, "CodeSentSms": 1}


def test_a_notice_that_ses_refuses_is_logged_with_the_reason_and_counted(sso: Sso, faults: FaultPlan) -> None:
    add_user("gina", sso.clock, email="gina@example.com")
    user = User.get("gina")
    faults.add(Fault("ses", "refused", operation="SendEmail"))
    with capture() as seen, observability.invocation({"id": "tick"}, None, function_name="sso"):
        sent = mail.notify(
            user,
            "A factor was added",
            mail.change_text("A factor was added"),
            ses=aws.client("ses"),
            messaging=sso.settings.messaging,
            clock=sso.clock,
        )
    assert sent is False  # the change stands; the audit trail and the log say the notice did not leave
    line = seen.log_line("the notice 'A factor was added' to g")
    assert (
        line["level"] == "ERROR"
        and "was not sent: MessageRejected: Injected by idp_local.faults" in line["message"]
    )
    assert "gina@example.com" not in seen.text
    assert seen.metrics("sso") == {"DeliveryFailed": 1}


def test_scheduled_imports_count_users_failures_and_welcome_e_mails_that_did_not_leave(
    slapd: Slapd,
    ldap_tree: Subtree,
    provisioning: ModuleType,
    kms: Any,
    key_id: str,
    clock: FakeClock,
    faults: FaultPlan,
) -> None:
    scheduled_imports.add_people(ldap_tree, "corp", 3)
    settings = scheduled_imports.add_directory(slapd, ldap_tree, "corp", "rate(1 hour)", kms, key_id, clock)
    store.save_directory(
        dataclasses.replace(settings, welcome_emails=True),
        create=False,
        bind_password=None,
        kms=kms,
        key_id=key_id,
        clock=clock,
    )
    # A second directory whose server is down: its own failure, counted, the first one unaffected.
    with slapd.subtree() as other:
        scheduled_imports.add_directory(
            slapd,
            other,
            "down",
            "rate(1 hour)",
            kms,
            key_id,
            clock,
            urls=(f"ldap://127.0.0.1:{closed_port()}",),
        )
    faults.add(Fault("ses", "refused", operation="SendEmail"))
    tick = scheduled_imports.scheduled_event(clock)
    with capture() as seen:
        result = provisioning.lambda_handler(tick, None)
    assert (result["ran"], result["failed"]) == (1, 1)
    assert seen.metrics("provisioning") == {
        "ImportUsersCreated": 3,
        "ImportUsersUpdated": 0,
        "ImportUsersDisabled": 0,
        "ImportFailed": 1,
        "DeliveryFailed": 3,
    }
    welcome_lines = [
        line for line in seen.log_lines() if line["message"].startswith("the welcome e-mail to ")
    ]
    assert len(welcome_lines) == 3
    assert all("was not sent: MessageRejected" in line["message"] for line in welcome_lines)
    assert "corp0@example.com" not in seen.text
    failed = seen.log_line("directory down: the scheduled full import failed")
    assert failed["level"] == "WARNING" and failed["correlation_id"] == result.get(
        "id", failed["correlation_id"]
    )
