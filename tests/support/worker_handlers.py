"""A stand-in Lambda handler module for the worker pool's tests; the event says what to do.

Each worker imports it once, so ``INVOCATIONS`` is that execution environment's own state.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from idp_core.clock import SYSTEM_CLOCK, Clock

INVOCATIONS = 0
_clock: Clock = SYSTEM_CLOCK


def configure(settings: Any, clock: Clock = SYSTEM_CLOCK) -> None:
    global _clock
    _clock = clock


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    global INVOCATIONS
    INVOCATIONS += 1
    action = event.get("action", "answer")
    if action == "crash":
        os._exit(3)
    if action == "hang":
        threading.Event().wait()  # Never set: the worker outlasts any timeout.
    if action == "raise":
        raise RuntimeError("the handler failed on purpose")
    if action == "unsendable":
        return {"statusCode": 200, "body": threading.Lock()}
    if action == "work":
        # Real CPU work (about as long as an Argon2id verification), so overlaps can be seen.
        hashlib.pbkdf2_hmac("sha256", b"password", b"salt", event.get("rounds", 200_000))
    return {
        "statusCode": 200,
        "body": "",
        "pid": os.getpid(),
        "invocations": INVOCATIONS,
        "now": _clock.now(),
        "function": context.function_name,
        "environment": os.environ.get("WORKER_TEST_MARK"),
    }
