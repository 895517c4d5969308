"""The state file through which ``idp --local`` finds the running local stack.

The file lives in ``$IDP_STATE_DIR`` (default ``.idp`` in the current directory), is
readable only by its owner (it holds the demo passwords) and is removed when the stack
stops.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from idp_core.aws import EMBEDDED_READ_TIMEOUT_ENV
from idp_core.config import ENV_DATA_KEY_ID, Settings, Tables

ENV_STATE_DIR = "IDP_STATE_DIR"
STATE_FILE_NAME = "local.json"
CREDENTIALS_FILE_NAME = "demo-credentials.json"
REGION = "us-east-1"
# moto accepts any credentials; these make it obvious that nothing real is used.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# What every client of the embedded AWS gets besides its address: the dummy credentials and,
# as moto can be slow on a busy machine, a longer read timeout (idp_core.aws).
EMBEDDED_AWS_CLIENT_ENV = {**DUMMY_CREDENTIALS, EMBEDDED_READ_TIMEOUT_ENV: "15"}


def embedded_aws_env(endpoint_url: str, region: str) -> dict[str, str]:
    """What boto3 and PynamoDB need to reach the embedded AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **EMBEDDED_AWS_CLIENT_ENV,
    }


class StateError(Exception):
    """The local stack's state file is missing or unreadable; the message is one sentence."""


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str


@dataclass(frozen=True)
class LocalState:
    base_url: str
    aws_endpoint_url: str
    region: str
    tables: dict[str, str]
    signing_key_id: str
    data_key_id: str
    admin: DemoAccount
    user: DemoAccount
    demo_group: str
    demo_app: str
    pid: int
    settings_env: dict[str, str] = field(default_factory=dict)

    def aws_env(self) -> dict[str, str]:
        return embedded_aws_env(self.aws_endpoint_url, self.region)

    def settings(self) -> Settings:
        # A state file written before the data key was a setting still names the key.
        return Settings.from_env({ENV_DATA_KEY_ID: self.data_key_id, **self.settings_env})

    def table_names(self) -> Tables:
        return Tables(**self.tables)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LocalState:
        raw: dict[str, Any] = json.loads(text)
        raw["admin"] = DemoAccount(**raw["admin"])
        raw["user"] = DemoAccount(**raw["user"])
        return cls(**raw)


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    configured = env.get(ENV_STATE_DIR, "").strip()
    return Path(configured) if configured else Path.cwd() / ".idp"


def state_path(env: Mapping[str, str] | None = None) -> Path:
    return state_dir(env) / STATE_FILE_NAME


def write_private_file(path: Path, text: str) -> None:
    """Write atomically with mode 0600, so no reader ever sees a partial or world-readable file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_state(state: LocalState, path: Path) -> None:
    write_private_file(path, state.to_json())


def read_state(path: Path | None = None) -> LocalState:
    path = state_path() if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise StateError(
            f"The local stack is not running (no state file at {path}); "
            "start it with `idp local` or `make dev`."
        ) from exc
    except OSError as exc:
        raise StateError(f"Cannot read the local stack's state file {path}: {exc.strerror}.") from exc
    try:
        return LocalState.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(
            f"The state file {path} is damaged; stop the local stack and start it again."
        ) from exc
