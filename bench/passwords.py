"""Argon2id verify time at the configured parameters (target <= 40 ms, at least OWASP's minimum)."""

from __future__ import annotations

import time

from bench.common import verdict
from idp_core import passwords

RUNS = 50
TARGET_MS = 40.0


# OWASP's minimum Argon2id parameters (BENCHMARKS.md): 19 MiB of memory, two passes.
OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2


def run() -> dict:
    stored = passwords.hash_password("correct horse battery staple")
    started = time.perf_counter()
    for _ in range(RUNS):
        passwords.verify_password(stored, "correct horse battery staple")
    per_verify = (time.perf_counter() - started) / RUNS * 1000
    params_ok = (
        passwords.ARGON2_MEMORY_KIB >= OWASP_MEMORY_KIB and passwords.ARGON2_TIME_COST >= OWASP_TIME_COST
    )
    memory_mib = passwords.ARGON2_MEMORY_KIB // 1024
    params = f"m={memory_mib} MiB, t={passwords.ARGON2_TIME_COST}, p={passwords.ARGON2_PARALLELISM}"
    return {
        "figures": {"argon2id verify ms": round(per_verify, 1), "parameters": params},
        "rows": [
            ("Argon2id parameters", params, ">= m=19 MiB, t=2", verdict(params_ok)),
            (
                "Argon2id verify",
                f"{per_verify:.1f} ms",
                f"<= {TARGET_MS:.0f} ms",
                verdict(per_verify <= TARGET_MS),
            ),
        ],
    }
