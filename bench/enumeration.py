"""Enumeration timing (S5): an unknown username and a wrong password for a real user do the same
work, so their answers take the same time.

300 sign-ins with unknown usernames and 300 with wrong passwords (each for its own user, so
no lockout starts), interleaved, through the local gateway against moto; the medians of the
two must be within 5 % of each other. The AWS requests of each kind are counted too: the
same work means the same requests, which does not depend on the machine."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from http import HTTPStatus

import requests

from bench.common import verdict
from idp_core import accounts
from idp_core.clock import SYSTEM_CLOCK
from idp_local.request_count import RequestCounter
from tests.helpers.sso import PASSWORD, csrf_token, running_sso
from tests.support.aws import fresh_tables, moto_server

ATTEMPTS = 300
TARGET_PERCENT = 5.0
WRONG = "not the password, but long enough"


# Request counts per sign-in below this are noise of a run, not a cost to report.
SHOWN_COUNT = 0.1


def _attempt(url: str, browser: requests.Session, token: str, username: str) -> float:
    started = time.perf_counter()
    answer = browser.post(
        f"{url}/login",
        data={"csrf_token": token, "username": username, "password": WRONG},
        allow_redirects=False,
        timeout=30,
    )
    elapsed = time.perf_counter() - started
    if answer.status_code != HTTPStatus.UNAUTHORIZED:
        raise RuntimeError(f"expected a refusal, got {answer.status_code}: {answer.text[:300]}")
    return elapsed


def run() -> dict:
    counter = RequestCounter()
    with moto_server(counter):
        tables = fresh_tables()
        with running_sso(tables, SYSTEM_CLOCK) as sso:  # type: ignore[arg-type]
            known = [f"known{i}" for i in range(ATTEMPTS)]
            for name in known:
                accounts.create_user(accounts.NewUser(name, password=PASSWORD))
            browser = requests.Session()
            token = csrf_token(browser.get(f"{sso.url}/login", timeout=30).text)
            _attempt(sso.url, browser, token, "warm-up")  # the first request in the process loads code
            times: dict[str, list[float]] = {"unknown username": [], "wrong password": []}
            requests_by_kind: dict[str, Counter] = {kind: Counter() for kind in times}
            for i, name in enumerate(known):
                for kind, username in (("unknown username", f"nobody{i}"), ("wrong password", name)):
                    counter.reset()
                    times[kind].append(_attempt(sso.url, browser, token, username))
                    requests_by_kind[kind].update(counter.snapshot())

    medians = {kind: statistics.median(values) * 1000 for kind, values in times.items()}
    difference = (
        abs(medians["unknown username"] - medians["wrong password"]) / medians["wrong password"] * 100
    )
    per_attempt = {
        kind: {
            f"{service}:{operation}": count / ATTEMPTS
            for (service, operation), count in sorted(counts.items())
        }
        for kind, counts in requests_by_kind.items()
    }
    rows = [(f"median refusal, {kind} (ms)", f"{median:.1f}", "", "") for kind, median in medians.items()]
    rows.append(
        (
            "unknown username vs wrong password, median difference",
            f"{difference:.1f} %",
            f"<= {TARGET_PERCENT:.0f} %",
            verdict(difference <= TARGET_PERCENT),
        )
    )
    # Below one in ten attempts: the refresh of a 30-second cache, which falls on either kind.
    per_request = {
        kind: {operation: count for operation, count in counts.items() if count >= SHOWN_COUNT}
        for kind, counts in per_attempt.items()
    }
    same_requests = per_request["unknown username"] == per_request["wrong password"]
    rows.append(
        ("same AWS requests for both", "yes" if same_requests else "no", "yes", verdict(same_requests))
    )
    figures = {
        "attempts of each kind": ATTEMPTS,
        "median ms": {kind: round(median, 2) for kind, median in medians.items()},
        "median difference percent": round(difference, 2),
        "aws requests per attempt": per_attempt,
    }
    return {"figures": figures, "rows": rows}
