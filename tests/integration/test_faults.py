"""Faults at the embedded AWS and at a directory (issue 12, point 7): every request still
answers a clear page (503 "try again" when trying again may work), nothing is half-written
(a completed sign-in has its audit events, a failed one leaves no session), and the log
line and the metric say what failed.

The faults are planted in the tests' moto server (``idp_local.faults``); the directory that
never answers is a real TCP server that accepts connections and stays silent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from idp_core import aws, models, sealing
from idp_core.directories import client as directory_client
from idp_core.directories.settings import DirectorySettings
from idp_core.mfa import factors, flow
from idp_core.models import AuditEvent, Factor, Session, User, bind_tables
from idp_local.faults import Fault, FaultPlan, SilentServer
from tests.helpers.ldap_directory import store_directory
from tests.helpers.mfa import (
    MFA_APP,
    OPEN_APP,
    add_user,
    alert,
    emails_to,
    give_totp,
    is_challenge,
    sms_to,
    submit_code,
    totp_code,
)
from tests.helpers.observed import Captured, capture
from tests.helpers.sso import PASSWORD, Sso, csrf_token
from tests.support.slapd import closed_port

TRY_AGAIN = "Please try again in a moment."
PHONE = "+447400123499"


pytestmark = pytest.mark.sso_setup("two_apps")


@pytest.fixture
def alice(sso: Sso) -> str:
    """alice with an authenticator app (her default), e-mail and SMS; returns the app's secret."""
    add_user("alice", sso.clock, email="alice@faults.example")
    secret = give_totp(sso, "alice")
    for kind, destination in (("email", "alice@faults.example"), ("sms", PHONE)):
        factors.activate_factor(
            flow.start_contact_factor("alice", kind, destination, clock=sso.clock), sso.clock
        )
    return secret


def _login(
    sso: Sso, browser: requests.Session, app: str = MFA_APP, token: str | None = None
) -> requests.Response:
    """alice's password for ``app`` (through the sign-in form, unless its CSRF ``token`` is given)."""
    fields = {"username": "alice", "password": PASSWORD, "app": app}
    return sso.post(browser, "/login", {"csrf_token": token or sso.login_form_token(browser), **fields})


def _sessions(username: str = "alice") -> list[Session]:
    return [session for session in Session.scan() if session.username == username]


def _events(kind: str, subject: str = "alice") -> list[AuditEvent]:
    return [event for event in AuditEvent.scan() if event.type == kind and event.subject == subject]


def _assert_try_again(response: requests.Response) -> None:
    assert response.status_code == 503, response.text[:500]
    assert TRY_AGAIN in alert(response.text)
    assert response.headers["Retry-After"] == "5"


def _unavailable(seen: Captured) -> str:
    """What the one 503 log line says failed."""
    line = seen.log_line("ServiceUnavailable")
    assert line["level"] == "WARNING" and line["service"] in ("sso", "otp")
    return str(line["failed"])


def _half_way(sso: Sso, alice: str) -> tuple[requests.Session, str]:
    """A browser past the password, at the challenge for the app; and the current code."""
    browser = sso.browser()
    assert is_challenge(_login(sso, browser))
    return browser, totp_code(alice, sso.clock)


def test_dynamodb_throttling_answers_try_again_and_leaves_no_session(
    sso: Sso, alice: str, faults: FaultPlan
) -> None:
    browser = sso.browser()
    faults.add(Fault("dynamodb", "throttling", operation="TransactWriteItems"))
    with capture() as seen:
        answered = _login(sso, browser)
    _assert_try_again(answered)
    # The client retried once (adaptive mode), then gave up well inside the function's timeout.
    assert faults.hits == [("dynamodb", "TransactWriteItems", "throttling")] * aws.MAX_ATTEMPTS
    assert _sessions() == [] and _events("auth.signin") == []
    assert _unavailable(seen) == "TransactWriteItems: ProvisionedThroughputExceededException"
    assert seen.log_line("ServiceUnavailable")["path"] == "/login"
    assert seen.metrics()["UnhandledError"] == 0

    # The password was right: its reserved attempt was given back although no session was written.
    assert int(User.get("alice").fail_password) == 0 and int(User.get("alice").fail_total or 0) == 0

    faults.clear()
    assert is_challenge(_login(sso, browser))  # trying again works


def test_a_storm_of_failing_conditions_answers_try_again_and_writes_nothing(
    sso: Sso, alice: str, faults: FaultPlan
) -> None:
    faults.add(Fault("dynamodb", "conditional-check", operation="TransactWriteItems"))
    with capture() as seen:
        answered = _login(sso, sso.browser())
    _assert_try_again(answered)
    assert _unavailable(seen) == "TransactWriteItems: TransactionCanceledException (ConditionalCheckFailed)"
    assert _sessions() == [] and _events("auth.signin") == []

    faults.clear()
    faults.add(Fault("dynamodb", "conditional-check", operation="UpdateItem"))
    # A wrong password's counter update loses every race: still the one refusal, never a 500.
    browser = sso.browser()
    token = sso.login_form_token(browser)
    wrong = sso.post(
        browser, "/login", {"csrf_token": token, "username": "alice", "password": "not it at all"}
    )
    assert wrong.status_code == 401 and "The username or password is incorrect." in alert(wrong.text)


def test_a_transaction_conflict_at_the_second_factor_keeps_the_half_way_session(
    sso: Sso, alice: str, faults: FaultPlan
) -> None:
    browser, code = _half_way(sso, alice)
    half_way = _sessions()
    faults.add(Fault("dynamodb", "transaction-conflict", operation="TransactWriteItems"))
    with capture() as seen:
        answered = submit_code(sso, browser, f"/mfa?app={MFA_APP}", code)
    _assert_try_again(answered)
    assert _unavailable(seen) == "TransactWriteItems: TransactionCanceledException (TransactionConflict)"
    # Signed, but neither sent nor recorded: the session is still the half-way one.
    assert [s.id_hash for s in _sessions()] == [s.id_hash for s in half_way]
    assert _events("mfa.success") == [] and _events("saml.assertion_issued") == []

    faults.clear()
    sso.clock.advance(30)  # the next code: the last one's time step was used (S6)
    verified = submit_code(sso, browser, f"/mfa?app={MFA_APP}", totp_code(alice, sso.clock))
    assert verified.status_code == 200 and "SAMLResponse" in verified.text


def _throttled_kms_at_the_code(sso: Sso, alice: str, faults: FaultPlan, operation: str) -> requests.Session:
    """The code for an app answered, in a new container, while KMS throttles ``operation``
    (Decrypt: unwrapping the factor data key; Sign: the assertion): a 503 that says to try
    again, one KMS error counted (its retry is not a second) and logged; the browser."""
    browser, code = _half_way(sso, alice)
    sealing.forget_cached_keys()  # a new container: the factor data key is unwrapped by KMS
    faults.add(Fault("kms", "throttling", operation=operation))
    with capture() as seen:
        answered = submit_code(sso, browser, f"/mfa?app={MFA_APP}", code)
    faults.clear()
    _assert_try_again(answered)
    assert _unavailable(seen) == f"{operation}: ThrottlingException"
    kms_line = seen.log_line(f"KMS {operation} failed")
    assert (kms_line["level"], kms_line["error_code"]) == ("ERROR", "ThrottlingException")
    assert seen.metrics("sso")["KmsError"] == 1 and seen.metrics()["AssertionIssued"] == 0
    # A code that was never judged, or judged right, is never a wrong code.
    assert int(User.get("alice").fail_totp) == 0 and seen.metrics()["SecondFactorRefused"] == 0
    assert _events("saml.assertion_issued") == []
    return browser


def test_kms_throttling_at_unwrapping_the_factor_key_leaves_the_challenge_as_it_was(
    sso: Sso, alice: str, faults: FaultPlan
) -> None:
    browser = _throttled_kms_at_the_code(sso, alice, faults, "Decrypt")
    assert _events("mfa.success") == [] and [s for s in _sessions() if "mfa:totp" in s.factors] == []
    verified = submit_code(sso, browser, f"/mfa?app={MFA_APP}", totp_code(alice, sso.clock))  # the same code
    assert verified.status_code == 200 and "SAMLResponse" in verified.text


def test_kms_throttling_at_signing_keeps_the_proven_second_factor_for_the_next_launch(
    sso: Sso, alice: str, faults: FaultPlan
) -> None:
    browser = _throttled_kms_at_the_code(sso, alice, faults, "Sign")
    # The code was right and is spent (S6): the session and its event record it, so trying
    # again is a launch that needs no new code.
    (session,) = _sessions()
    assert "mfa:totp" in session.factors and len(_events("mfa.success")) == 1
    launched = sso.get(browser, f"/apps/{MFA_APP}/launch")
    assert launched.status_code == 200 and "SAMLResponse" in launched.text


def test_a_kms_key_that_refuses_is_a_500_logged_with_its_stack_and_counted(
    sso: Sso, alice: str, faults: FaultPlan
) -> None:
    browser, code = _half_way(sso, alice)
    faults.add(Fault("kms", "refused", operation="Sign"))  # e.g. the key was disabled
    with capture() as seen:
        answered = submit_code(sso, browser, f"/mfa?app={MFA_APP}", code)
    assert answered.status_code == 500
    assert alert(answered.text) == "Something went wrong on our side. Please try again in a moment."
    assert "DisabledException" not in answered.text and "Traceback" not in answered.text
    line = seen.log_line("unhandled error on POST /mfa/verify")
    assert line["level"] == "ERROR" and line["exception_name"] == "DisabledException"
    assert any(frame["function"] == "_post_to_app" for frame in line["stack_trace"]["frames"])
    assert seen.metrics("sso")["UnhandledError"] == 1 and seen.metrics("sso")["KmsError"] == 1
    assert faults.hits == [("kms", "Sign", "refused")]  # not retried: trying again does not cure it


def _send_code(sso: Sso, browser: requests.Session, kind: str) -> requests.Response:
    factor = next(f for f in Factor.query("alice") if f.kind == kind)
    page = sso.get(browser, f"/mfa?app={MFA_APP}&factor={factor.factor_id}")
    assert ">Send code</button>" in page.text
    return sso.post(
        browser,
        "/mfa/send",
        {"csrf_token": csrf_token(page.text), "factor": factor.factor_id, "app": MFA_APP},
    )


@pytest.mark.parametrize(
    ("kind", "fault", "reason"),
    [
        ("email", Fault("ses", "refused", operation="SendEmail"), "MessageRejected"),
        ("email", Fault("ses", "throttling", operation="SendEmail"), "Throttling"),
        ("sms", Fault("sns", "throttling", operation="Publish"), "Throttled"),
        ("sms", Fault("sns", "server-error", operation="Publish"), "InternalError"),
    ],
)
def test_a_code_that_ses_or_sns_does_not_take_is_logged_with_the_reason_and_counted(
    sso: Sso, alice: str, faults: FaultPlan, kind: str, fault: Fault, reason: str
) -> None:
    browser, _ = _half_way(sso, alice)
    before = len(emails_to("alice@faults.example")) + len(sms_to(PHONE))
    faults.add(fault)
    with capture() as seen:
        answered = _send_code(sso, browser, kind)
    assert answered.status_code == 503
    assert "The code could not be sent just now. Try again in a minute" in alert(answered.text)
    assert answered.headers["Retry-After"] == "5"
    line = seen.log_line(f"the {kind} code to ")
    assert line["level"] == "ERROR" and line["service"] == "otp"
    assert f"was not sent: {reason}: Injected by idp_local.faults" in line["message"]
    # Masked, as in the audit trail: the log names neither the address nor the number.
    assert "alice@faults.example" not in seen.text and PHONE not in seen.text
    assert seen.metrics("otp") == {"DeliveryFailed": 1}
    assert len(emails_to("alice@faults.example")) + len(sms_to(PHONE)) == before

    faults.clear()
    sso.clock.advance(60)  # past the wait between two sends
    assert _send_code(sso, browser, kind).status_code == 303


def test_dynamodb_that_does_not_answer_gets_a_503_within_the_call_budget(
    sso: Sso, alice: str, faults: FaultPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clients a deployed function has: without the embedded AWS's longer read timeout.
    monkeypatch.delenv(aws.EMBEDDED_READ_TIMEOUT_ENV)
    assert aws.read_timeout_seconds() == aws.READ_TIMEOUT_SECONDS
    faults.add(Fault("dynamodb", "hang", operation="BatchGetItem"))
    started = time.monotonic()
    with capture() as seen:
        answered = _login(sso, sso.browser())
    elapsed = time.monotonic() - started
    _assert_try_again(answered)
    assert _unavailable(seen).startswith("ReadTimeoutError: Read timeout on endpoint URL")
    assert aws.READ_TIMEOUT_SECONDS * aws.MAX_ATTEMPTS <= elapsed < aws.CALL_BUDGET_SECONDS + 2
    assert _sessions() == []


def test_aws_that_cannot_be_reached_gets_a_503(sso: Sso, alice: str, monkeypatch: pytest.MonkeyPatch) -> None:
    browser = sso.browser()
    token = sso.login_form_token(browser)
    # As a VPC without a route to the service: nothing listens at the endpoint.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    with capture() as seen:
        answered = _login(sso, browser, token=token)
    _assert_try_again(answered)
    assert _unavailable(seen).startswith("EndpointConnectionError: Could not connect to the endpoint URL")
    monkeypatch.undo()
    assert _sessions() == []


@pytest.fixture(params=["ldap", "ldaps"])
def silent_corp(sso: Sso, request: pytest.FixtureRequest) -> Iterator[SilentServer]:
    """A directory "corp" whose server accepts connections and never answers (with and
    without TLS), with alice as one of its users."""
    with SilentServer() as server:
        store_directory(
            sso,
            DirectorySettings(
                name="corp",
                display_name="Corp",
                kind="openldap",
                urls=(f"{request.param}://127.0.0.1:{server.port}",),
                bind_dn="uid=svc,ou=people,dc=corp",
                bases=("ou=people,dc=corp",),
                activate=True,
                # A silent server hears nothing anyway; the plain-ldap case needs the switch (S30).
                allow_cleartext=request.param == "ldap",
            ),
        )
        add_user("alice", sso.clock)
        user = User.get("alice")
        user.update(actions=[User.source.set("ldap:corp")])
        yield server


def test_a_directory_that_never_answers_gets_a_503_and_counts_no_failure(
    sso: Sso, silent_corp: SilentServer
) -> None:
    started = time.monotonic()
    with capture() as seen:
        answered = _login(sso, sso.browser(), OPEN_APP)
    elapsed = time.monotonic() - started
    _assert_try_again(answered)
    assert silent_corp.connections >= 1
    # The directory client's own timeout, well inside the function's 15 seconds.
    assert elapsed < directory_client.DEFAULT_TIMEOUT * 2
    failed = _unavailable(seen)
    assert failed.startswith("directory corp: ") and "timed out" in failed, failed
    assert int(User.get("alice").fail_password) == 0 and _sessions() == []
    assert seen.metrics()["SignInPasswordRefused"] == 0


def test_a_fault_at_any_aws_call_of_a_sign_in_leaves_a_clear_page_and_nothing_half_written(
    sso: Sso, alice: str, faults: FaultPlan
) -> None:
    """Password, challenge and code for an app, with the n-th AWS request (and its retry)
    throttled, for n = 0, 1, 2, ... until a sign-in makes fewer requests: each answer is a
    page or a 503, and the sign-in either completed with its audit events and its session,
    or left none of them beyond the half-way session of a password that passed."""
    factor_id = next(f.factor_id for f in Factor.query("alice") if f.kind == "totp")
    faulted: list[tuple[str, str, str]] = []
    for n in range(60):
        sso.clock.advance(30)  # a fresh authenticator code each time (S6)
        sessions_before = {s.id_hash for s in _sessions()}
        events_before = {kind: len(_events(kind)) for kind in SIGN_IN_EVENTS}
        faults.add(Fault("*", "throttling", after=n, times=aws.MAX_ATTEMPTS))
        statuses = _sign_in_steps(sso, alice, factor_id)
        hits = list(faults.hits)
        faults.clear()
        _fresh_clients(sso)
        new = [s for s in _sessions() if s.id_hash not in sessions_before]
        grown = {kind for kind in SIGN_IN_EVENTS if len(_events(kind)) > events_before[kind]}
        where = (n, hits, statuses)
        completed = statuses == [200, 200, 200, 200]
        assert completed or (statuses[-1] == 503 and set(statuses[:-1]) <= {200}), where
        # Past the password (a 200 to it) there is one new session, before it none.
        assert len(new) == int(len(statuses) > 2), where
        proven = [s for s in new if "mfa:totp" in s.factors]
        # A session and its events are written together: a proven second factor always has
        # its mfa.success, a half-way session only its auth.signin; an assertion was issued
        # only when it was sent.
        expected = {"auth.signin"} if new else set()
        expected |= {"mfa.success"} if proven else set()
        expected |= {"saml.assertion_issued"} if completed else set()
        assert grown == expected, where
        assert all(proven or any(f.startswith("pending:") for f in s.factors) for s in new), where
        if not hits:
            break  # the sign-in made fewer than n + 1 requests: every one has failed once
        faulted.extend(hits[:1])
    else:
        pytest.fail("a sign-in made more than 60 AWS requests")
    assert {service for service, _, _ in faulted} == {"dynamodb", "kms"}
    assert len(faulted) >= 8


SIGN_IN_EVENTS = ("auth.signin", "mfa.success", "saml.assertion_issued")


def _fresh_clients(sso: Sso) -> None:
    """New AWS clients, as a new container would have: the adaptive retries of the old ones
    slowed them down after the throttling, which only makes the next round slower."""
    aws._client.cache_clear()
    models._connection.cache_clear()
    bind_tables(sso.settings.tables)


def _sign_in_steps(sso: Sso, alice: str, factor_id: str) -> list[int]:
    """The statuses of the sign-in form, the password, the challenge page and the code, up
    to the first one that is not a 200."""
    browser = sso.browser()
    statuses: list[int] = []
    form = sso.get(browser, "/login")
    statuses.append(form.status_code)
    if form.status_code != 200:
        return statuses
    fields = {"csrf_token": csrf_token(form.text), "username": "alice", "password": PASSWORD, "app": MFA_APP}
    statuses.append(sso.post(browser, "/login", fields).status_code)
    if statuses[-1] != 200:
        return statuses
    page = sso.get(browser, f"/mfa?app={MFA_APP}")
    statuses.append(page.status_code)
    if page.status_code != 200:
        return statuses
    fields = {"csrf_token": csrf_token(page.text), "factor": factor_id, "code": totp_code(alice, sso.clock)}
    verified = sso.post(browser, "/mfa/verify", {**fields, "app": MFA_APP})
    statuses.append(verified.status_code)
    if verified.status_code == 200:
        assert "SAMLResponse" in verified.text
    return statuses
