"""What the functions print while a test runs: the Powertools log lines (JSON, standard
error) and the CloudWatch EMF metric blobs (JSON, standard output), as CloudWatch Logs
would receive them from Lambda."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

from idp_core import observability


@dataclass
class Captured:
    stdout: io.StringIO = field(default_factory=io.StringIO)
    stderr: io.StringIO = field(default_factory=io.StringIO)
    # Every record of every other library's logger, formatted (when asked for).
    others: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Everything printed or logged, for scans."""
        return "\n".join([self.stdout.getvalue(), self.stderr.getvalue(), *self.others])

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.stderr.getvalue().splitlines():
            parsed = json.loads(line)  # every line is JSON: nothing else writes there
            lines.append(parsed)
        return lines

    def log_line(self, message_start: str) -> dict[str, Any]:
        """The one log line whose message starts with ``message_start``."""
        found = [line for line in self.log_lines() if str(line.get("message", "")).startswith(message_start)]
        assert len(found) == 1, (message_start, [line.get("message") for line in self.log_lines()])
        return found[0]

    def emf_blobs(self) -> list[dict[str, Any]]:
        blobs = []
        for line in self.stdout.getvalue().splitlines():
            parsed = json.loads(line)
            assert "_aws" in parsed, line
            blobs.append(parsed)
        return blobs

    def metrics(self, service: str | None = None) -> Counter[str]:
        """The metrics the blobs carry, summed (of one service if given)."""
        totals: Counter[str] = Counter()
        for blob in self.emf_blobs():
            if service is not None and blob.get("service") != service:
                continue
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    totals[metric["Name"]] += int(sum(_values(blob[metric["Name"]])))
        return totals


def _values(value: Any) -> list[float]:
    return [float(v) for v in value] if isinstance(value, list) else [float(value)]


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record))


@contextmanager
def capture(level: str = "INFO", *, every_library: bool = False) -> Iterator[Captured]:
    """Capture what the functions print (in any thread) with their logger at ``level``;
    ``every_library`` also captures every other logger of the process at DEBUG."""
    captured = Captured()
    previous = observability.logger.log_level
    observability.logger.setLevel(level)
    root = logging.getLogger()
    collect = _Collect(captured.others)
    root_level = root.level
    if every_library:
        root.addHandler(collect)
        root.setLevel(logging.DEBUG)
    try:
        with redirect_stdout(captured.stdout), redirect_stderr(captured.stderr):
            yield captured
    finally:
        observability.logger.setLevel(previous)
        root.removeHandler(collect)
        root.setLevel(root_level)
