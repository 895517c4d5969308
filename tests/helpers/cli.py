"""Steps for tests of the `idp` CLI run in this process against the state file of
`idp --local` (the fixtures ``local_state``, ``bound`` and ``with_data_key`` of
tests/integration/conftest.py make one): run a command, insist that it succeeded, read a
``--json`` listing."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from idp_cli.main import main


def no_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """What the CLI tests' gateway answers: it serves /_local/health and nothing else."""
    return {"statusCode": 404, "body": ""}


def idp(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    code = main(["--local", *args], stdin=io.StringIO(stdin))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> str:
    code, out, err = idp(capsys, *args, stdin=stdin)
    assert (code, err) == (0, ""), f"idp {' '.join(args)} failed: {err}"
    return out


def listing(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    return json.loads(ok(capsys, *args, "--json"))
