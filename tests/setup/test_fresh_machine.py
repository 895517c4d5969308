"""A fresh clone on a machine without uv: the README's commands and the deploy path set
themselves up the first time (issue 12, point 1).

Each test copies the repository's files (tracked and new, nothing ignored: no .venv,
node_modules or .tools) into a scratch directory and runs the setup there with every
directory that holds a `uv` removed from PATH and HOME pointed at an empty directory, so
neither a uv on PATH nor anything under the real home can help. Only the package caches
are shared (UV_CACHE_DIR, npm's cache) to keep the downloads off the network's back.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from get_uv import UV_VERSION  # noqa: E402 - found through the line above.

SETUP_TIMEOUT = 300
# The standard-library scripts run before any environment exists, on whatever python3 the
# machine has: macOS and Amazon Linux (CloudShell) ship 3.9.
OLDEST_SYSTEM_PYTHON = (3, 9)


def _path_without_uv() -> str:
    kept = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "uv").exists()]
    return os.pathsep.join(kept)


def _uv_cache() -> str:
    found = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=False)
    return found.stdout.strip() if found.returncode == 0 else str(Path.home() / ".cache" / "uv")


def _npm_cache() -> str:
    found = subprocess.run(
        ["npm", "config", "get", "cache"], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    return found.stdout.strip() if found.returncode == 0 else str(Path.home() / ".npm")


@pytest.fixture(scope="module")
def fresh_environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    env = {
        **os.environ,
        "PATH": _path_without_uv(),
        "HOME": str(home),
        "UV_CACHE_DIR": _uv_cache(),
        "npm_config_cache": _npm_cache(),
    }
    # Nothing of the session's own environment may point uv or the tests elsewhere.
    for name in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "CDK_DEFAULT_ACCOUNT"):
        env.pop(name, None)
    assert shutil.which("uv", path=env["PATH"]) is None
    assert shutil.which("python3", path=env["PATH"]) is not None, "the setup needs a python3 on PATH"
    return env


def fresh_clone(target: Path) -> Path:
    """The repository's files as a clone would have them, plus files not yet committed."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for absent in (".venv", ".tools", "node_modules", "cdk.out", "build"):
        assert not (target / absent).exists()
    return target


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    completed = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=SETUP_TIMEOUT
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{command} exited {completed.returncode}:\n{output[-4000:]}"
    return output


def venv_has(clone: Path, module: str) -> bool:
    probe = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", probe], check=False).returncode == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_health(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"`make dev` exited with {process.returncode} before it answered")
        try:
            with urlopen(url, timeout=2):
                return
        except (URLError, OSError):
            time.sleep(0.5)
    raise AssertionError(f"`make dev` did not answer {url} in time")


def test_make_dev_and_make_test_set_up_uv_and_the_full_environment_themselves(
    tmp_path: Path, fresh_environment: dict[str, str]
) -> None:
    """The shared setup of `make dev` and `make test` (`make setup`), then `make dev` itself
    until the local stack answers."""
    clone = fresh_clone(tmp_path)
    run(["make", "setup"], clone, fresh_environment)

    uv = clone / ".tools" / "bin" / "uv"
    assert run([str(uv), "--version"], clone, fresh_environment).split()[1] == UV_VERSION
    for module in ("pytest", "moto", "playwright", "aws_cdk", "cdk_nag", "idp_core", "idp_cli"):
        assert venv_has(clone, module), f"make setup left {module} out of the environment"
    assert (clone / "node_modules" / ".bin" / "cdk").exists()

    port = _free_port()
    env = {**fresh_environment, "IDP_HOST": "127.0.0.1", "IDP_PORT": str(port)}
    process = subprocess.Popen(
        ["make", "dev"],
        cwd=clone,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_health(f"http://127.0.0.1:{port}/_local/health", process, time.monotonic() + 120)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_cdk_from_a_fresh_clone_sets_up_only_the_deploy_environment(
    tmp_path: Path, fresh_environment: dict[str, str]
) -> None:
    """`npx cdk ...` (what `cdk bootstrap` and `cdk deploy` run first) works without `make`:
    the app command of cdk.json gets uv and the deploy packages, and no test tool."""
    clone = fresh_clone(tmp_path)
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], clone, fresh_environment)
    run(["npx", "--no-install", "cdk", "synth", "--quiet"], clone, fresh_environment)

    assert (clone / "cdk.out" / "ServerlessIdp.template.json").is_file()
    assert run([str(clone / ".tools" / "bin" / "uv"), "--version"], clone, fresh_environment).split()[1] == (
        UV_VERSION
    )
    for module in ("aws_cdk", "cdk_nag", "constructs", "idp_core"):
        assert venv_has(clone, module), f"the deploy environment lacks {module}"
    for module in ("pytest", "moto", "playwright", "cfnlint", "saml2"):
        assert not venv_has(clone, module), f"the deploy environment should not install {module}"


def test_the_deploy_targets_set_up_without_the_test_tools(
    tmp_path: Path, fresh_environment: dict[str, str]
) -> None:
    """`make synth`, `make deploy` and `make bootstrap` share the `deploy-env` step (the CDK
    CLI then runs the app command the test above runs); it needs only python3 and npm."""
    clone = fresh_clone(tmp_path)
    output = run(["make", "deploy-env"], clone, fresh_environment)
    assert "Installed uv" in output
    assert (clone / "node_modules" / ".bin" / "cdk").exists()
    assert (clone / "node_modules" / ".bin" / "node").exists()
    assert venv_has(clone, "aws_cdk")
    assert not venv_has(clone, "pytest")
    for target in ("synth", "deploy", "bootstrap"):
        planned = run(["make", "--dry-run", target], clone, fresh_environment)
        assert "scripts/cdk_app.py --setup-only" in planned
        assert f"cdk {target}" in planned


@pytest.mark.parametrize("script", ["get_uv.py", "cdk_app.py"])
def test_setup_scripts_parse_as_the_oldest_system_python(script: str) -> None:
    """They run on the machine's own python3 before any environment exists."""
    source = (REPO_ROOT / "scripts" / script).read_text()
    ast.parse(source, feature_version=OLDEST_SYSTEM_PYTHON)


def test_attack_a_tampered_uv_wheel_is_refused_and_nothing_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror (or anyone between) that serves another file under the pinned wheel's name
    gets nothing run: the pinned SHA-256 does not match."""
    import get_uv

    filename, _ = get_uv.WHEELS[get_uv.platform_key()]
    page = tmp_path / "simple" / "uv"
    page.mkdir(parents=True)
    (page / filename).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip that is not uv
    (page / "index.html").write_text(f'<a href="{filename}#sha256=00">{filename}</a>')
    monkeypatch.setenv("UV_DEFAULT_INDEX", (tmp_path / "simple").as_uri())
    bin_dir = tmp_path / "bin"

    with pytest.raises(get_uv.SetupError, match="SHA-256"):
        get_uv.install(bin_dir)
    assert not bin_dir.exists()
