"""`idp local` (make dev) as a real process: it starts, seeds, serves, refuses a taken port and cleans up."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from idp_local.process import LocalStackProcess, idp_command
from idp_local.state import LocalState
from tests.helpers.local_stack import descendants, still_alive_after

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    process = LocalStackProcess(tmp_path_factory.mktemp("local") / "state", cwd=REPO)
    with process:
        yield process


def test_state_file_is_private_and_describes_the_stack(stack: LocalStackProcess) -> None:
    state = stack.state
    assert isinstance(state, LocalState)

    assert stat.S_IMODE(stack.state_file.stat().st_mode) == 0o600
    assert state.base_url == stack.base_url
    assert state.aws_endpoint_url.startswith("http://127.0.0.1:")
    assert state.tables["users"] == "idp-local-users"
    assert state.signing_key_id and state.data_key_id
    assert len(state.user.password) >= 12 and len(state.admin.password) >= 12
    assert state.user.password != state.admin.password


def test_prints_how_to_sign_in(stack: LocalStackProcess) -> None:
    state = stack.state
    assert state is not None
    log = stack.log()

    assert f"Sign in:        {stack.base_url}/login" in log
    assert f"{state.user.username:<10} password {state.user.password}" in log
    assert f"{state.admin.username:<10} password {state.admin.password}" in log


def test_seeds_demo_admin_user_group_and_aws_app(stack: LocalStackProcess) -> None:
    users = json.loads(stack.idp("--local", "user", "list", "--json").stdout)
    apps = json.loads(stack.idp("--local", "app", "list", "--json").stdout)
    groups = json.loads(stack.idp("--local", "group", "list", "--json").stdout)

    assert {(u["username"], u["admin"], tuple(u["groups"])) for u in users} == {
        ("admin", True, ("engineers",)),
        ("alice", False, ("engineers",)),
    }
    assert [g["name"] for g in groups] == ["engineers"]
    [app] = apps
    assert app["name"] == "aws-demo"
    assert app["acs_url"] == f"{stack.base_url}/_local/aws/saml"
    assert app["provider_name"] == "serverless-idp-local"
    assert [(r["role"], r["group"]) for r in app["roles"]] == [("IdpDemoEngineer", "engineers")]


def test_cli_changes_are_visible_to_the_running_stack(stack: LocalStackProcess) -> None:
    passphrase = "a long enough passphrase\n"
    added = stack.idp("--local", "user", "add", "bob", "--password-stdin", stdin=passphrase)
    shown = stack.idp("--local", "user", "show", "bob", "--json")

    assert (added.returncode, added.stderr) == (0, "")
    assert json.loads(shown.stdout)["username"] == "bob"


def test_serves_health_and_metadata(stack: LocalStackProcess) -> None:
    health = requests.get(f"{stack.base_url}/_local/health", timeout=10)
    metadata = stack.idp("--local", "metadata")

    assert health.json() == {"status": "ok"}
    assert metadata.returncode == 0, metadata.stderr
    assert f'entityID="{stack.base_url}/saml/metadata"' in metadata.stdout
    assert "X509Certificate" in metadata.stdout


def test_a_second_stack_on_the_same_port_is_refused_clearly(stack: LocalStackProcess, tmp_path: Path) -> None:
    second = subprocess.run(
        [*idp_command(), "local", "--port", str(stack.port)],
        capture_output=True,
        text=True,
        env={**stack.env, "IDP_STATE_DIR": str(tmp_path)},
        timeout=60,
        check=False,
    )

    assert second.returncode == 2
    assert f"Port {stack.port} on 127.0.0.1 is already in use" in second.stderr
    assert "Traceback" not in second.stderr
    assert not (tmp_path / "local.json").exists()


def started_workers(log: str) -> dict[str, int]:
    """The workers the stack's log says started, by function (the last of each)."""
    return {name: int(pid) for name, pid in re.findall(r"^(\w+) worker (\d+) started in ", log, re.MULTILINE)}


def test_terminating_the_stack_removes_the_state_file_and_every_process_it_started(tmp_path: Path) -> None:
    process = LocalStackProcess(tmp_path / "state", cwd=REPO, options=["--workers", "2"])
    process.start()
    assert process.state_file.exists() and process.process is not None
    # One warm worker per function, forked by the fork server (another child of the stack).
    assert sorted(started_workers(process.log())) == ["adaptive", "otp", "provisioning", "sso"]
    assert "Each function runs in up to 2 worker processes" in process.log()
    started = descendants(process.process.pid)
    assert set(started_workers(process.log()).values()) <= set(started)

    status = process.stop()

    assert status == 0
    assert still_alive_after(started) == []
    assert not process.state_file.exists()
    after = subprocess.run(
        [*idp_command(), "--local", "user", "list"],
        capture_output=True,
        text=True,
        env=process.env,
        timeout=60,
        check=False,
    )
    assert after.returncode == 2
    assert after.stderr.startswith("idp: The local stack is not running")


def test_restart_keeps_demo_passwords_env_overrides_them_and_sigint_stops(tmp_path: Path) -> None:
    first = LocalStackProcess(tmp_path / "state", cwd=REPO)
    first_state = first.start()
    first.stop()
    second = LocalStackProcess(
        tmp_path / "state",
        cwd=REPO,
        port_from_env=True,
        env={"IDP_DEMO_ADMIN_PASSWORD": "admin-override-pass"},
    )

    second_state = second.start()
    status = second.stop(signal.SIGINT)

    assert first_state.user.password == second_state.user.password
    assert second_state.admin.password == "admin-override-pass"
    assert second_state.base_url == f"http://127.0.0.1:{second.port}"
    assert status == 0
    assert not second.state_file.exists()
    assert "Stopping the local IdP." in second.log()


def test_a_bad_port_setting_is_refused_in_one_sentence(tmp_path: Path) -> None:
    result = subprocess.run(
        [*idp_command(), "local"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "IDP_STATE_DIR": str(tmp_path), "IDP_PORT": "eighty"},
    )

    assert result.returncode == 2
    assert result.stderr == "idp: IDP_PORT must be a port number, got 'eighty'.\n"


def test_a_killed_stack_leaves_no_worker_behind(tmp_path: Path) -> None:
    """kill -9 gives the stack no chance to stop its workers: each sees its pipe close and leaves."""
    process = LocalStackProcess(tmp_path / "state", cwd=REPO)
    process.start()
    assert process.process is not None
    started = descendants(process.process.pid)
    assert set(started_workers(process.log()).values()) <= set(started)

    status = process.stop(signal.SIGKILL)

    assert status == -signal.SIGKILL
    assert still_alive_after(started) == []


@pytest.mark.parametrize(
    ("args", "env", "sentence"),
    [
        ([], {"IDP_WORKERS": "many"}, "IDP_WORKERS must be a whole number from 1 to 64, got 'many'."),
        (["--workers", "0"], {}, "--workers must be from 1 to 64, got 0."),
    ],
)
def test_a_bad_worker_count_is_refused_in_one_sentence(
    tmp_path: Path, args: list[str], env: dict[str, str], sentence: str
) -> None:
    result = subprocess.run(
        [*idp_command(), "local", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "IDP_STATE_DIR": str(tmp_path), **env},
    )

    assert (result.returncode, result.stderr) == (2, f"idp: {sentence}\n")
    assert not (tmp_path / "local.json").exists()
