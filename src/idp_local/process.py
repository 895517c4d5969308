"""Run ``idp local`` as a child process: used by the integration and browser tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from urllib.error import URLError
from urllib.request import urlopen

from idp_local.state import ENV_STATE_DIR, STATE_FILE_NAME, LocalState, StateError, read_state

STARTUP_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it; the race window is tiny)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def idp_command() -> list[str]:
    """The installed ``idp`` console script next to this interpreter, or the module as a fallback."""
    script = Path(sys.executable).parent / "idp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "idp_cli.main"]


class LocalStackProcess:
    """``idp local --port PORT`` with its own state directory; a context manager that always stops it."""

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        port_from_env: bool = False,
        options: Sequence[str] = (),
    ) -> None:
        self.state_dir = state_dir
        # More options of `idp local`, e.g. --workers or --tick-seconds.
        self.options = list(options)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.env = {**os.environ, **(env or {}), ENV_STATE_DIR: str(state_dir)}
        self.cwd = cwd
        # Pass the host and port as IDP_HOST/IDP_PORT (as `make dev` users do) instead of options.
        self.port_from_env = port_from_env
        if port_from_env:
            self.env.update({"IDP_HOST": host, "IDP_PORT": str(self.port)})
        self.log_path = state_dir.parent / f"{state_dir.name}-idp-local.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.state: LocalState | None = None

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE_NAME

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, deadline_seconds: float = STARTUP_DEADLINE_SECONDS) -> LocalState:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Output goes to a file, not a pipe: an unread pipe fills up and blocks the child.
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell.
                [*idp_command(), "local", *self._listen_options(), *self.options],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
            )
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"idp local exited with {self.process.returncode}:\n{self.log()}")
            if self._healthy():
                try:
                    self.state = read_state(self.state_file)
                    return self.state
                except StateError:
                    pass  # The gateway answers a moment before the state file is written.
            time.sleep(0.1)  # Polling interval while waiting for a child process; not a test sleep.
        self.stop()
        raise RuntimeError(f"idp local did not become healthy within {deadline_seconds:.0f} s:\n{self.log()}")

    def _listen_options(self) -> list[str]:
        return [] if self.port_from_env else ["--host", self.host, "--port", str(self.port)]

    def _healthy(self) -> bool:
        try:
            with urlopen(f"{self.base_url}/_local/health", timeout=1) as response:  # noqa: S310 - loopback.
                response.read()
                return bool(response.status == HTTPStatus.OK)
        except (URLError, OSError):
            return False

    def stop(self, signum: int = signal.SIGTERM) -> int | None:
        """Send ``signum``, then wait; kill only if it does not stop in time. Returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=STOP_DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def idp(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the ``idp`` CLI against this stack, as an admin would from a terminal."""
        return subprocess.run(  # noqa: S603 - our own CLI, arguments as a list, no shell.
            [*idp_command(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.cwd,
            timeout=60,
            check=False,
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> LocalStackProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
