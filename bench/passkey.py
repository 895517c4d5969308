"""A passkey-only sign-in through the local gateway against moto: "Sign in with a passkey"
for an app that requires MFA, answered with the signed SAMLResponse, by a software ES256 key
(tests/helpers/soft_key.py, no browser). Reports its AWS requests by service and by step
beside those of password + TOTP measured in the same run (BENCHMARKS.md: no more DynamoDB
requests than password + TOTP, and no KMS Decrypt)."""

from __future__ import annotations

import os
from collections import Counter
from http import HTTPStatus

import requests

from bench.common import verdict
from bench.signin import _sign_in_once, _users_with_authenticators, bench_stack
from idp_core import accounts
from idp_local.request_count import RequestCounter
from tests.helpers.security_keys import register_key, soft_key_for
from tests.helpers.soft_key import SoftKey
from tests.helpers.sso import PASSWORD, Sso, csrf_token

SIGN_INS = int(os.environ.get("BENCH_PASSKEY_SIGN_INS", "50"))
APP = "bench-passkey"
STEPS = ("POST /login/passkey/options", "POST /login/passkey")


def _users_with_passkeys(sso: Sso, count: int) -> list[SoftKey]:
    keys = []
    for index in range(count):
        name = f"passkey{index}"
        accounts.create_user(accounts.NewUser(name, password=PASSWORD, groups=["bench"]))
        browser = sso.browser()
        sso.sign_in(browser, name)  # made to enrol: the key is the first factor
        key = soft_key_for(sso)
        registered = register_key(sso, browser, key)
        if registered.status_code != HTTPStatus.SEE_OTHER:
            raise RuntimeError(f"the passkey was not registered: {registered.text[:300]}")
        keys.append(key)
    return keys


def _passkey_sign_in(sso: Sso, key: SoftKey, counter: RequestCounter) -> tuple[Counter, dict[str, int]]:
    browser = requests.Session()
    token = csrf_token(browser.get(f"{sso.url}/login?app={APP}", timeout=30).text)
    counter.reset()
    total: Counter = Counter()
    per_step: dict[str, int] = {}

    def step(name: str, response: requests.Response) -> requests.Response:
        counts = counter.snapshot()
        per_step[name] = sum(c for (service, _), c in counts.items() if service == "dynamodb")
        total.update(counts)
        counter.reset()
        if response.status_code != HTTPStatus.OK:
            raise RuntimeError(f"{name} answered {response.status_code}: {response.text[:300]}")
        return response

    options = step(
        STEPS[0], browser.post(f"{sso.url}/login/passkey/options", data={"csrf_token": token}, timeout=30)
    )
    answer = {"csrf_token": token, "credential": key.get(options.text), "app": APP}
    response = step(
        STEPS[1], browser.post(f"{sso.url}/login/passkey", data=answer, allow_redirects=False, timeout=30)
    )
    if "SAMLResponse" not in response.text:
        raise RuntimeError(f"the passkey sign-in did not end in a SAML Response: {response.text[:300]}")
    return total, per_step


def run() -> dict:
    with bench_stack(APP) as (sso, counter):
        warm, *keys = _users_with_passkeys(sso, SIGN_INS + 1)
        _passkey_sign_in(sso, warm, counter)  # warm: certificate created and cached
        passkey: Counter = Counter()
        steps: Counter[str] = Counter()
        for key in keys:
            counts, per_step = _passkey_sign_in(sso, key, counter)
            passkey.update(counts)
            steps.update(per_step)
        baseline: Counter = Counter()
        totp_warm, *totp_users = _users_with_authenticators(sso, SIGN_INS + 1, prefix="totp")
        _sign_in_once(sso.url, *totp_warm, counter, app=APP)
        for name, secret in totp_users:
            baseline.update(_sign_in_once(sso.url, name, secret, counter, app=APP)[0])

    def per_sign_in(counts: Counter, service: str, operation: str | None = None) -> float:
        return sum(c for (s, op), c in counts.items() if s == service and operation in (None, op)) / SIGN_INS

    dynamodb, totp_dynamodb = per_sign_in(passkey, "dynamodb"), per_sign_in(baseline, "dynamodb")
    decrypts = per_sign_in(passkey, "kms", "Decrypt")
    rows = [
        (
            "passkey sign-in: dynamodb requests",
            f"{dynamodb:.2f}",
            f"<= {totp_dynamodb:.2f} (password + TOTP)",
            verdict(dynamodb <= totp_dynamodb),
        ),
        ("passkey sign-in: kms Decrypt requests", f"{decrypts:.2f}", "0", verdict(decrypts == 0)),
        ("passkey sign-in: kms requests (signing)", f"{per_sign_in(passkey, 'kms'):.2f}", "", ""),
    ]
    figures = {
        "requests per sign-in by operation": {
            f"{s}:{op}": round(c / SIGN_INS, 2) for (s, op), c in sorted(passkey.items())
        },
        "dynamodb requests per step": {name: steps[name] / SIGN_INS for name in STEPS},
        "password + totp dynamodb requests per sign-in, same run": totp_dynamodb,
    }
    return {"figures": figures, "rows": rows}
