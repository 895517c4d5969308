"""Steps for tests against `idp local` as `make dev` runs it (a child process whose functions
run in worker pools): act on its embedded AWS from the test, as the CLI does, and read which
worker ran which request from its log."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from idp_core.config import Settings
from idp_core.models import ALL_MODELS, bind_tables
from idp_local.state import LocalState
from tests.support.aws import AWS_ENV

_INVOCATION = re.compile(
    r"^(?P<client>\S+) (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) ran in worker (?P<worker>\d+) "
    r"from (?P<started>\d+\.\d+) to (?P<ended>\d+\.\d+)$",
    re.MULTILINE,
)


@contextmanager
def bound_to(state: LocalState) -> Iterator[Settings]:
    """This process's boto3 and PynamoDB clients act on the stack's embedded AWS and tables
    (as `idp --local` does) until the block ends; yields the stack's settings."""
    saved_env = {name: os.environ.get(name) for name in AWS_ENV}
    saved_tables = {concern: model.Meta.table_name for concern, model in ALL_MODELS.items()}
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update(state.aws_env())
    settings = state.settings()
    bind_tables(settings.tables)
    try:
        yield settings
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for concern, model in ALL_MODELS.items():
            model.Meta.table_name = saved_tables[concern]
            model._connection = None


@dataclass(frozen=True)
class Ran:
    """One request as the gateway logged it: which worker process ran it, and when."""

    client: str
    method: str
    path: str
    status: int
    worker: int
    started: float
    ended: float

    def overlaps(self, other: Ran) -> bool:
        return self.started < other.ended and other.started < self.ended


def invocations(log: str, client: str | None = None) -> list[Ran]:
    """The requests the stack's log shows a worker ran, from ``client`` if given."""
    found = [
        Ran(
            match["client"],
            match["method"],
            match["path"],
            int(match["status"]),
            int(match["worker"]),
            float(match["started"]),
            float(match["ended"]),
        )
        for match in _INVOCATION.finditer(log)
    ]
    return [ran for ran in found if client is None or ran.client == client]


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its parent's wait is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (its children, theirs, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii")
        except OSError:
            continue  # It ended while the listing was read.
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [child for child in found if is_alive(child)]


def still_alive_after(pids: list[int], deadline_seconds: float = 20.0) -> list[int]:
    """The processes of ``pids`` still alive once they all ended or the deadline passed."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and any(is_alive(pid) for pid in pids):
        time.sleep(0.05)  # Polling other processes' exit, not a test sleep.
    return [pid for pid in pids if is_alive(pid)]
