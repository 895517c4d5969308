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
from idp_core.config import Settings


def no_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """What the CLI tests' gateway answers: it serves /_local/health and nothing else."""
    return {"statusCode": 404, "body": ""}


def idp(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    return _run(capsys, ["--local", *args], stdin)


def ok(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> str:
    code, out, err = idp(capsys, *args, stdin=stdin)
    assert (code, err) == (0, ""), f"idp {' '.join(args)} failed: {err}"
    return out


def listing(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    return json.loads(ok(capsys, *args, "--json"))


def idp_from_env(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`idp` without --local or --stack: it acts on the stack the environment's settings name,
    as a function reads them (a test sets them to its running functions'). What the functions
    printed before (their metrics) is left out of the command's output."""
    capsys.readouterr()
    return _run(capsys, list(args), "")


def act_on(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `idp_from_env` act on the stack of ``settings`` (a test's running functions)."""
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)


def _run(capsys: pytest.CaptureFixture[str], argv: list[str], stdin: str) -> tuple[int, str, str]:
    code = main(argv, stdin=io.StringIO(stdin))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
