"""TOTP verify time: the server's check of one code (±1 step, constant-time compares) against
pyotp's own ``TOTP.verify(valid_window=1)`` in the same run. The KMS decrypt and the
conditional write that follow are counted as requests by the full sign-in benchmark."""

from __future__ import annotations

import time

import pyotp

from bench.common import median_of, verdict
from idp_core.mfa import totp

VERIFIES = 20_000
TARGET_RATIO = 1.5


def _per_call(check: object, runs: int = VERIFIES) -> float:
    assert callable(check)
    started = time.perf_counter()
    for _ in range(runs):
        check()
    return (time.perf_counter() - started) / runs


def run() -> dict:
    secret = totp.new_secret()
    now = time.time()
    # The worst case for the window: the code of the last step checked.
    code = totp.totp_at(secret, now + totp.PERIOD_SECONDS)
    reference = pyotp.TOTP(totp.secret_base32(secret))
    assert reference.verify(code, for_time=now, valid_window=1)
    assert totp.matching_step(secret, code, now=now, digits=6, period=30) is not None
    ours = median_of(
        5, lambda: _per_call(lambda: totp.matching_step(secret, code, now=now, digits=6, period=30))
    )
    baseline = median_of(5, lambda: _per_call(lambda: reference.verify(code, for_time=now, valid_window=1)))
    ratio = ours / baseline
    return {
        "figures": {
            "totp verify microseconds": round(ours * 1e6, 1),
            "pyotp verify microseconds": round(baseline * 1e6, 1),
            "ratio": round(ratio, 2),
        },
        "rows": [
            (
                "TOTP verify (±1 step) vs pyotp TOTP.verify",
                f"{ours * 1e6:.1f} us = {ratio:.2f}x",
                f"<= {TARGET_RATIO}x",
                verdict(ratio <= TARGET_RATIO),
            )
        ],
    }
