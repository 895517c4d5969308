"""CPU per sign-in in the processes that run the handlers (issue 13): not the embedded AWS.

The functions run in worker processes (one per function, as `idp local` runs them, here with
a pool of one so each request lands in a warmed worker) while moto answers in this process;
the CPU time the workers spend on 200 sign-ins (user + system, from /proc) divided by 200 is
the figure, password only and password + TOTP. Argon2id is in it, as it is in a real
sign-in. A cProfile of the same sign-ins run in-process names where the rest goes.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import requests

from bench.common import verdict
from idp_core import accounts, apps
from idp_core.clock import SYSTEM_CLOCK
from idp_core.mfa import policy
from tests.helpers.mfa import give_totp
from tests.helpers.sso import PASSWORD, Sso, csrf_token, running_sso
from tests.support.aws import fresh_tables, moto_server

SIGN_INS = int(os.environ.get("BENCH_CPU_SIGN_INS", "200"))
PROFILED = 50
TARGETS_MS = {"password only": 45.0, "password + TOTP": 55.0}
MFA_APP, OPEN_APP = "bench-cpu-mfa", "bench-cpu-open"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        with Path(f"/proc/{pid}/stat").open() as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


def _password_only(url: str, username: str, _: str) -> None:
    browser = requests.Session()
    token = csrf_token(browser.get(f"{url}/login?app={OPEN_APP}", timeout=30).text)
    answer = browser.post(
        f"{url}/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD, "app": OPEN_APP},
        allow_redirects=False,
        timeout=30,
    )
    # Nothing more owed, the answer to the password is the page that posts the assertion.
    if "SAMLResponse" not in answer.text:
        raise RuntimeError(f"no SAMLResponse after the password: {answer.status_code} {answer.text[:300]}")


def _with_totp(url: str, username: str, secret: str) -> None:
    from bench.signin import _sign_in_once
    from idp_local.request_count import RequestCounter

    _sign_in_once(url, username, secret, RequestCounter(), app=MFA_APP)


def _users(sso: Sso, count: int, prefix: str) -> list[tuple[str, str]]:
    users = []
    for i in range(count):
        name = f"{prefix}{i}"
        accounts.create_user(accounts.NewUser(name, password=PASSWORD, groups=["bench"]))
        users.append((name, give_totp(sso, name)))
    return users


def _measure(sso: Sso, sign_in: Callable[[str, str, str], None], users: list[tuple[str, str]]) -> float:
    """CPU milliseconds per sign-in in the worker processes."""
    pids = [pid for pool in sso.pools.values() for pid in pool.pids]
    before = _cpu_seconds(pids)
    for name, secret in users:
        sign_in(sso.url, name, secret)
    return (_cpu_seconds(pids) - before) * 1000 / len(users)


def _profile(sso: Sso, users: list[tuple[str, str]]) -> list[str]:
    """The top entries (own CPU time) of a cProfile of the handlers of in-process sign-ins
    with TOTP: every function's entry point runs under the one profiler (the gateway calls
    them one at a time here, from its request threads)."""
    from idp_core.web.function import PageFunction

    # CPU time of the thread that runs the handler, so waiting for moto's answers is not in it.
    profiler = cProfile.Profile(time.thread_time)
    original = PageFunction.handle

    def profiled(self: PageFunction, event: dict, context: object) -> dict:
        return profiler.runcall(original, self, event, context)

    _with_totp(sso.url, *users[0])  # warm: the container's first request loads code
    PageFunction.handle = profiled  # type: ignore[method-assign]
    try:
        for name, secret in users[1:]:
            _with_totp(sso.url, name, secret)
    finally:
        PageFunction.handle = original  # type: ignore[method-assign]
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
    stats.print_stats(12)
    lines = [line for line in out.getvalue().splitlines() if line.strip() and "{" not in line[:8]]
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return [" ".join(line.split()) for line in lines[start + 1 : start + 13]]


def run() -> dict:
    with moto_server():
        tables = fresh_tables()
        accounts.create_group("bench")
        for name, mfa in ((MFA_APP, True), (OPEN_APP, False)):
            apps.create_aws_app(
                name, apps.AwsAppChoices(account_id="123456789012", roles=[("BenchRole", "bench")])
            )
            policy.set_app_policy(name, mfa_required=mfa)
        with running_sso(tables, SYSTEM_CLOCK, workers=1) as sso:  # type: ignore[arg-type]
            users = _users(sso, 2 * SIGN_INS + 2, "cpu")
            warm = users.pop()
            _with_totp(sso.url, *warm)  # the workers' first requests load code and make clients
            _password_only(sso.url, *users.pop())
            figures = {
                "password only": _measure(sso, _password_only, users[:SIGN_INS]),
                # The authenticator codes of the first batch are a step old by now.
                "password + TOTP": _measure(sso, _with_totp, users[SIGN_INS:]),
            }
        with running_sso(tables, SYSTEM_CLOCK) as in_process:  # type: ignore[arg-type]
            top = _profile(in_process, _users(in_process, PROFILED + 1, "profiled"))
    rows = [
        (
            f"CPU per sign-in in the handler processes, {kind} (ms)",
            f"{value:.1f}",
            f"<= {TARGETS_MS[kind]:.0f}",
            verdict(value <= TARGETS_MS[kind]),
        )
        for kind, value in figures.items()
    ]
    return {
        "figures": {
            "cpu ms per sign-in": {kind: round(value, 1) for kind, value in figures.items()},
            "profile top (own time, in-process, password + TOTP)": top,
        },
        "rows": rows,
    }
