"""Races over HTTP against `idp local` as `make dev` runs it: every function in a pool of
worker processes, so parallel requests really run at the same time in separate execution
environments, each with its own caches (issue 12). The same races run in-process in
test_adaptive_signin, test_otp_codes, test_signin_lockout and test_scheduled_imports; here
they go through the gateway, the workers and the embedded AWS together."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from idp_core import accounts, apps
from idp_core.adaptive import policies
from idp_core.clock import SYSTEM_CLOCK
from idp_core.config import LockoutPolicy, Settings
from idp_core.mfa import factors, policy, totp
from idp_core.models import AuditEvent, Device, User
from idp_local.process import LocalStackProcess
from tests.helpers.adaptive import browser_at, is_saml_post
from tests.helpers.directory_imports import add_directory, add_people, import_events, users_of
from tests.helpers.local_stack import Ran, bound_to, invocations
from tests.helpers.mfa import code_in, make_factor
from tests.helpers.sso import PASSWORD, csrf_token
from tests.support.parallel import all_at_once
from tests.support.slapd import Slapd, Subtree

REPO = Path(__file__).resolve().parents[2]
WORKERS = 4
ACCOUNT = "123456789012"
WRONG = "definitely not the password"
_FACTOR_FIELD = 'name="factor" value="'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    # No timed ticks: the import race below delivers its own.
    process = LocalStackProcess(
        tmp_path_factory.mktemp("races") / "state",
        cwd=REPO,
        env={"IDP_WORKERS": str(WORKERS)},
        options=["--tick-seconds", "0"],
    )
    with process:
        yield process


@pytest.fixture
def local(stack: LocalStackProcess) -> Iterator[Settings]:
    """The stack's embedded AWS and tables, for setting up and checking from the test."""
    assert stack.state is not None
    with bound_to(stack.state) as settings:
        yield settings


class Browser:
    """A browser from its own loopback address, so the stack's log tells its requests apart."""

    def __init__(self, stack: LocalStackProcess, address: str) -> None:
        self.base = stack.base_url
        self.address = address
        self.session: requests.Session = browser_at(address)

    def get(self, path: str, **params: str) -> requests.Response:
        return self.session.get(self.base + path, params=params, allow_redirects=False, timeout=60)

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        return self.session.post(self.base + path, data=data, allow_redirects=False, timeout=60)

    def login_token(self, **params: str) -> str:
        page = self.get("/login", **params)
        assert page.status_code == 200, page.text[:300]
        return csrf_token(page.text)

    def twin(self, address: str) -> Browser:
        """Another connection with this browser's cookies (the same signed-in session)."""
        twin = Browser.__new__(Browser)
        twin.base, twin.address, twin.session = self.base, address, browser_at(address)
        twin.session.cookies.update(self.session.cookies)
        return twin


def browsers(stack: LocalStackProcess, block: int, count: int) -> list[Browser]:
    return [Browser(stack, f"127.0.{block}.{i + 1}") for i in range(count)]


def add_user(name: str, **fields: Any) -> None:
    accounts.create_user(accounts.NewUser(name, password=PASSWORD, groups=["engineers"], **fields))


def give_authenticator(name: str, settings: Settings) -> None:
    """An active authenticator app, so the sign-in owes no enrolment (S11)."""
    enrolment = totp.start_enrolment(
        name, "Phone", kms=boto3.client("kms"), key_id=settings.require_data_key(), issuer="Tests"
    )
    factors.activate_factor(enrolment.factor)


def open_app(name: str) -> None:
    """An app without a second factor, mapped to the demo group."""
    apps.create_aws_app(
        name, apps.AwsAppChoices(account_id=ACCOUNT, roles=[("Reader", "engineers")]), mfa_required=False
    )


def overlapping_pairs(runs: list[Ran]) -> list[tuple[Ran, Ran]]:
    return [(a, b) for i, a in enumerate(runs) for b in runs[i + 1 :] if a.overlaps(b)]


def sign_in_all_at_once(group: list[Browser], username: str, passwords: list[str]) -> list[requests.Response]:
    tokens = [browser.login_token() for browser in group]
    return all_at_once(
        [
            lambda b=b, t=t, p=p: b.post(  # type: ignore[misc]
                "/login", {"csrf_token": t, "username": username, "password": p}
            )
            for b, t, p in zip(group, tokens, passwords, strict=True)
        ]
    )


def sso_workers(stack: LocalStackProcess) -> set[int]:
    return {ran.worker for ran in invocations(stack.log()) if (ran.method, ran.path) == ("POST", "/login")}


def warm_sso_workers(stack: LocalStackProcess) -> None:
    """Grow the sso pool to its size, as steady traffic does, so a burst runs ``WORKERS`` at
    once instead of queueing behind cold starts (a pool grows only while all are busy)."""
    if not accounts.find_user("warm-up"):
        add_user("warm-up")
    for round_ in range(8):
        if len(sso_workers(stack)) >= WORKERS:
            return
        sign_in_all_at_once(browsers(stack, 100 + round_, WORKERS), "warm-up", [PASSWORD] * WORKERS)
    assert len(sso_workers(stack)) >= WORKERS, "the sso pool did not grow to its size"


# ---------------------------------------------------------------- parallel execution


def test_two_parallel_password_sign_ins_run_at_once_in_two_sso_workers(
    stack: LocalStackProcess, local: Settings
) -> None:
    """Each sign-in verifies an Argon2id hash (tens of milliseconds of CPU): the workers'
    own timestamps in the gateway's log show two of them running at the same time."""
    add_user("overlap")
    overlaps: list[tuple[Ran, Ran]] = []
    # A request that finds every worker busy starts a new one (a cold start), so the first
    # round may run one after another while the pool grows; a pool that runs one event at
    # a time never overlaps in any round.
    for round_ in range(1, 4):
        group = browsers(stack, round_, WORKERS)
        answers = sign_in_all_at_once(group, "overlap", [PASSWORD] * WORKERS)
        assert [answer.status_code for answer in answers] == [303] * WORKERS
        runs = [
            ran
            for browser in group
            for ran in invocations(stack.log(), browser.address)
            if (ran.method, ran.path) == ("POST", "/login")
        ]
        assert len(runs) == WORKERS
        overlaps = overlapping_pairs(runs)
        if overlaps:
            break
    assert overlaps, "no two sign-ins ran at the same time"
    assert all(a.worker != b.worker for a, b in overlaps)  # one event at a time per worker


# ---------------------------------------------------------------- device limit (adaptive)


def test_ten_parallel_sign_ins_from_new_devices_under_a_limit_of_three_register_exactly_three(
    stack: LocalStackProcess, local: Settings
) -> None:
    warm_sso_workers(stack)
    add_user("race-devices")
    give_authenticator("race-devices", local)
    open_app("race-devices-app")
    policies.save_policy(
        policies.AdaptivePolicy(name="race-cap", register_devices=True, max_devices=3, on_exceed="deny"),
        create=True,
    )
    policy.set_app_policy("race-devices-app", adaptive="race-cap")
    group = browsers(stack, 10, 10)
    tokens = [browser.login_token(app="race-devices-app") for browser in group]

    def sign_in_and_launch(browser: Browser, token: str) -> requests.Response:
        signed_in = browser.post(
            "/login",
            {
                "csrf_token": token,
                "username": "race-devices",
                "password": PASSWORD,
                "app": "race-devices-app",
            },
        )
        if signed_in.status_code != 303:
            return signed_in
        return browser.get(signed_in.headers["Location"].removeprefix(browser.base))

    answers = all_at_once(
        [lambda b=b, t=t: sign_in_and_launch(b, t) for b, t in zip(group, tokens, strict=True)]  # type: ignore[misc]
    )

    launched = [answer for answer in answers if is_saml_post(answer)]
    assert len(launched) == 3
    assert all(answer.status_code == 403 for answer in answers if not is_saml_post(answer))
    assert len(list(Device.query("race-devices"))) == 3
    assert int(User.get("race-devices", consistent_read=True).device_count) == 3
    workers = {ran.worker for b in group for ran in invocations(stack.log(), b.address)}
    assert len(workers) > 1  # the sign-ins really were spread over several workers


# ---------------------------------------------------------------- SMS and e-mail codes


def mfa_app(name: str) -> None:
    if apps.find_app(name) is None:
        apps.create_aws_app(name, apps.AwsAppChoices(account_id=ACCOUNT, roles=[("Engineer", "engineers")]))


def sent_code(browser: Browser, to: str) -> str:
    """The newest code the embedded SNS or SES "sent" to ``to``, read from /_local/outbox."""
    outbox = browser.get("/_local/outbox", format="json").json()
    newest = next(message for message in outbox if to in message["to"])
    return code_in(newest["body"])


@pytest.mark.parametrize(
    ("kind", "destination"),
    [("email", {"email": "race-email@example.com"}), ("sms", {"phone": "+447400123457"})],
)
def test_one_code_verified_by_six_parallel_requests_signs_in_exactly_once(
    stack: LocalStackProcess, local: Settings, kind: str, destination: dict[str, str]
) -> None:
    warm_sso_workers(stack)
    username = f"race-{kind}"
    add_user(username, email=destination.get("email"))
    mfa_app("race-mfa")
    factor = make_factor(username, kind, SYSTEM_CLOCK, **destination)
    [browser] = browsers(stack, 20 if kind == "email" else 21, 1)
    signed_in = browser.post(
        "/login",
        {"csrf_token": browser.login_token(), "username": username, "password": PASSWORD, "app": "race-mfa"},
    )
    assert signed_in.status_code == 200 and _FACTOR_FIELD in signed_in.text, signed_in.text[:300]
    page = browser.get("/mfa", app="race-mfa", factor=factor.factor_id)
    token = csrf_token(page.text)
    sent = browser.post("/mfa/send", {"csrf_token": token, "factor": factor.factor_id, "app": "race-mfa"})
    assert sent.status_code == 303, sent.text[:300]
    code = sent_code(browser, next(iter(destination.values())))
    answer = {"csrf_token": token, "factor": factor.factor_id, "code": code, "app": "race-mfa"}
    twins = [browser.twin(f"127.0.{30 + (kind == 'sms')}.{i + 1}") for i in range(6)]

    answers = all_at_once([lambda t=t: t.post("/mfa/verify", answer) for t in twins])  # type: ignore[misc]

    assert sum(is_saml_post(response) for response in answers) == 1
    refused = [response for response in answers if not is_saml_post(response)]
    assert all(response.status_code in (303, 401, 403) for response in refused)
    assert not any("SAMLResponse" in response.text for response in refused)
    ran = [r for t in twins for r in invocations(stack.log(), t.address) if r.path == "/mfa/verify"]
    assert len(ran) == 6 and len({r.worker for r in ran}) > 1


# ---------------------------------------------------------------- lockout (S1, S29)

LOCKOUT = LockoutPolicy()


def record_failures_below_the_limit(username: str, failures: int) -> None:
    """``failures`` consecutive failed attempts, recorded as the lockout logic stores them
    (their temporary locks waited out: the next password limit lies past them)."""
    User(username).update(
        actions=[
            User.fail_password.set(failures),
            User.fail_total.set(failures),
            User.limit_password.set(failures + LOCKOUT.failure_factor),
        ]
    )


def test_a_burst_of_attempts_at_the_hard_limit_neither_counts_past_it_nor_signs_in_a_locked_account(
    stack: LocalStackProcess, local: Settings
) -> None:
    """S29 / issue 11 point 3: with 99 failures, 11 wrong passwords and the right one at once.
    An attempt is reserved atomically before its credential is checked, so at most one is
    checked at the 100th place: either the right one signs in (and the account is not
    locked), or a wrong one takes the place, locks the account and the right one is refused."""
    warm_sso_workers(stack)
    add_user("race-lock")
    record_failures_below_the_limit("race-lock", LOCKOUT.max_failures - 1)
    group = browsers(stack, 40, 12)

    answers = sign_in_all_at_once(group, "race-lock", [PASSWORD] + [WRONG] * 11)

    user = User.get("race-lock", consistent_read=True)
    signed_in = answers[0].status_code == 303
    assert all(answer.status_code == 401 for answer in answers[1:])
    assert user.total_failures() <= LOCKOUT.max_failures, "wrong passwords were checked past the limit"
    if signed_in:
        assert not user.locked, "a session was issued to an account the same burst locked"
    else:
        assert user.locked and user.total_failures() == LOCKOUT.max_failures
        again = {"csrf_token": group[0].login_token(), "username": "race-lock", "password": PASSWORD}
        assert group[0].post("/login", again).status_code == 401
    locks = [
        event for event in AuditEvent.scan() if event.type == "user.locked" and event.subject == "race-lock"
    ]
    assert len(locks) == (0 if signed_in else 1)


# ---------------------------------------------------------------- the directory import lock


def test_parallel_ticks_import_a_due_directory_exactly_once(
    stack: LocalStackProcess, local: Settings, slapd: Slapd, ldap_tree: Subtree
) -> None:
    """Overlapping EventBridge invocations of the provisioning function: the directory's lock
    lets one run the import; the others find it running (or the slot taken)."""
    [browser] = browsers(stack, 50, 1)
    ticks = [browser.twin(f"127.0.51.{i + 1}") for i in range(WORKERS)]
    # A first round while nothing is due starts the provisioning workers, so the round that
    # matters reads the directory at the same moment in several of them.
    warm = all_at_once([lambda t=t: t.post("/_local/tick", {}) for t in ticks])  # type: ignore[misc]
    assert [response.status_code for response in warm] == [200] * WORKERS
    people = add_people(ldap_tree, "tick", 60)
    kms = boto3.client("kms")
    add_directory(
        slapd, ldap_tree, "race-corp", "rate(5 minutes)", kms, local.require_data_key(), SYSTEM_CLOCK
    )
    started = time.time()

    results = all_at_once([lambda t=t: t.post("/_local/tick", {}) for t in ticks])  # type: ignore[misc]

    outcomes = [response.json()["directories"]["race-corp"] for response in results]
    ran = [outcome for outcome in outcomes if outcome["status"] == "ran"]
    assert len(ran) == 1 and ran[0]["created"] == len(people)
    skipped = [outcome for outcome in outcomes if outcome["status"] != "ran"]
    assert all(outcome["reason"] in ("already running", "not due") for outcome in skipped), skipped
    assert len(skipped) == WORKERS - 1
    assert len(users_of("race-corp")) == len(people)
    assert len(import_events("race-corp")) == 1
    runs = [r for t in ticks for r in invocations(stack.log(), t.address) if r.started >= started]
    assert len(runs) == WORKERS
    assert overlapping_pairs(runs), "no two ticks ran at the same time"
