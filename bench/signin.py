"""Full sign-in through the local gateway against moto: password + SAML issue, 200 times.

Reports sign-ins per second (machine-dependent, for comparison within a run only), the
AWS requests per sign-in by service (exact counts) and the cost per 1,000 sign-ins from
those counts and public us-east-1 prices."""

from __future__ import annotations

import time
from collections import Counter

import requests

from bench.common import verdict
from idp_core import accounts, apps
from idp_core.clock import SYSTEM_CLOCK
from idp_local.request_count import RequestCounter
from tests.helpers.sso import PASSWORD, csrf_token, running_sso
from tests.support.aws import fresh_tables, moto_server

SIGN_INS = 200
TARGETS = {"dynamodb": 8, "kms": 2}
APP = "bench-aws"

# Public prices (us-east-1, on-demand, November 2026). Lambda arm64 at 1024 MB.
PRICE_LAMBDA_REQUEST = 0.20 / 1e6
PRICE_LAMBDA_GB_SECOND = 0.0000133334
LAMBDA_MEMORY_GB = 1.0
PRICE_API_GATEWAY_REQUEST = 3.50 / 1e6
PRICE_DYNAMODB_READ = 0.125 / 1e6
PRICE_DYNAMODB_WRITE = 0.625 / 1e6
PRICE_KMS_REQUEST = 0.03 / 1e4
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
COST_TARGET = 0.02


def _sign_in_once(url: str, username: str, counter: RequestCounter) -> tuple[Counter, int, float]:
    browser = requests.Session()
    token = csrf_token(browser.get(f"{url}/login?app={APP}", timeout=30).text)
    counter.reset()
    started = time.perf_counter()
    signed_in = browser.post(
        f"{url}/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD, "app": APP},
        allow_redirects=False,
        timeout=30,
    )
    launch = browser.get(
        url + signed_in.headers["Location"].removeprefix(url), allow_redirects=False, timeout=30
    )
    elapsed = time.perf_counter() - started
    if "SAMLResponse" not in launch.text:
        raise RuntimeError(
            f"the sign-in did not end in a SAML Response: {launch.status_code} {launch.text[:300]}"
        )
    return counter.snapshot(), 2, elapsed  # two Lambda invocations counted: POST /login, GET launch


def run() -> dict:
    counter = RequestCounter()
    with moto_server(counter):
        tables = fresh_tables()
        accounts.create_group("bench")
        apps.create_aws_app(APP, account_id="123456789012", roles=[("BenchRole", "bench")])
        users = [f"bench{i}" for i in range(SIGN_INS)]
        for name in users:
            accounts.create_user(name, password=PASSWORD, groups=["bench"])
        with running_sso(tables, SYSTEM_CLOCK) as sso:  # type: ignore[arg-type]
            _sign_in_once(sso.url, users[0], counter)  # warm: certificate created and cached
            totals: Counter = Counter()
            invocations = 0
            seconds = 0.0
            for name in users:
                counts, calls, elapsed = _sign_in_once(sso.url, name, counter)
                totals.update(counts)
                invocations += calls
                seconds += elapsed

    per_service: Counter[str] = Counter()
    for (service, _), count in totals.items():
        per_service[service] += count
    per_sign_in = {service: count / SIGN_INS for service, count in sorted(per_service.items())}
    by_operation = {f"{s}:{op}": round(c / SIGN_INS, 2) for (s, op), c in sorted(totals.items())}
    rate = SIGN_INS / seconds

    writes = sum(c for (s, op), c in totals.items() if s == "dynamodb" and op in DYNAMODB_WRITES)
    reads = per_service["dynamodb"] - writes
    seconds_per_invocation = seconds / invocations
    cost = (
        1000
        / SIGN_INS
        * (
            invocations * (PRICE_LAMBDA_REQUEST + PRICE_API_GATEWAY_REQUEST)
            + invocations * seconds_per_invocation * LAMBDA_MEMORY_GB * PRICE_LAMBDA_GB_SECOND
            + reads * PRICE_DYNAMODB_READ
            + writes * PRICE_DYNAMODB_WRITE
            + per_service["kms"] * PRICE_KMS_REQUEST
        )
    )
    rows = [("sign-ins per second (password + SAML, local)", f"{rate:.1f}/s", "", "")]
    for service, mean in per_sign_in.items():
        target = TARGETS.get(service, 0)
        rows.append(
            (f"{service} requests per sign-in", f"{mean:.2f}", f"<= {target}", verdict(mean <= target))
        )
    rows.append(
        ("cost per 1,000 sign-ins", f"${cost:.4f}", f"<= ${COST_TARGET}", verdict(cost <= COST_TARGET))
    )
    figures = {
        "sign-ins per second": round(rate, 1),
        "requests per sign-in": per_sign_in,
        "requests per sign-in by operation": by_operation,
        "cost per 1000 sign-ins USD": round(cost, 5),
        "cost assumptions": "Lambda arm64 1024 MB billed for the measured local time, "
        "2 API Gateway REST requests, a DynamoDB read as one read unit and a write as one write unit, "
        "KMS $0.03 per 10k",
    }
    return {"figures": figures, "rows": rows}
