"""Code run in a fresh interpreter that sees the repository's functions and core package and
only the environment given (with PATH and a region): a cold start as Lambda makes it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_in_fresh_python(code: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={
            **env,
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "layers" / "core")]),
            "AWS_DEFAULT_REGION": "eu-west-1",
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
