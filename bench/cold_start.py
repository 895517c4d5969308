"""Cold import of each handler, against `import boto3` in the same run (median of 5)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from bench.common import median_of, verdict
from idp_core.config import Tables

RUNS = 5
HANDLERS = (
    "functions.sso.handler",
    "functions.otp.handler",
    "functions.adaptive.handler",
    "functions.provisioning.handler",
)
TARGET_RATIO = 1.5
_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)")

# Dummy settings so the handler's cold-start validation passes without AWS.
_ENV = {
    **Tables.with_prefix("bench-").to_env(),
    "SIGNING_KEY_ID": "key",
    "DATA_KEY_ID": "data-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "bench",
}


def import_ms(module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter, in milliseconds."""
    env = {**os.environ, **_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    for line in reversed(completed.stderr.splitlines()):
        match = _IMPORT_LINE.search(line)
        if match and match.group(3) == module:
            return int(match.group(2)) / 1000
    raise RuntimeError(f"no import time reported for {module}")


def run() -> dict:
    baseline = median_of(RUNS, lambda: import_ms("boto3"))
    figures: dict[str, float] = {"import boto3 ms": round(baseline, 1)}
    rows = [("import boto3 (baseline)", f"{baseline:.0f} ms", "", "")]
    for module in HANDLERS:
        handler = median_of(RUNS, lambda: import_ms(module))  # noqa: B023 - called before the loop moves on
        ratio = handler / baseline
        figures[f"{module} ms"] = round(handler, 1)
        figures[f"{module} ratio"] = round(ratio, 2)
        rows.append(
            (
                f"cold import {module}",
                f"{handler:.0f} ms = {ratio:.2f}x boto3",
                f"<= {TARGET_RATIO}x",
                verdict(ratio <= TARGET_RATIO),
            )
        )
    return {"figures": figures, "rows": rows}
