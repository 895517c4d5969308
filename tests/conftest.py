"""What kind each test is, and how the suite is spread over pytest-xdist workers.

Each test is marked with the directory it lives in (``unit``, ``integration``, ``e2e``,
``infra``, ``setup``: registered in pyproject.toml), so ``make unit`` and the other targets
select with ``-m`` and a test cannot sit in one directory and claim another kind.

`make test` runs the suite in pytest-xdist workers (``-n``). Each worker is a process of its
own with its own session fixtures: an embedded AWS (moto on a free port,
``tests/integration/conftest.py``), a slapd, browsers, temporary directories. Work is handed
out by directory:

- ``tests/infra`` runs on one worker: it synthesises the CDK app once per session and
  builds the layer into the repository's ``build/`` directory, which two workers must not
  rewrite at the same time;
- ``tests/e2e`` runs on one worker: one local stack and one Chromium per session;
- ``tests/integration`` is handed out a module at a time, so that a module-scoped fixture
  (a local stack of its own, a TLS slapd, a moto server) starts once and the module's tests
  see it as they do in a serial run;
- ``tests/unit`` and ``tests/setup`` are handed out a test at a time: they share nothing
  but what is cheap to make again (a unit module's fixture is rebuilt by each worker that
  runs one of its tests).

The longest start first, so that no worker begins one when the others are done. xdist's own
``--dist loadgroup`` cannot express this and does not group at all with pytest 9.2, whose
items keep their id where xdist 3.8 writes the group (pytest-dev/pytest-xdist#1386), hence
this scheduler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

TESTS = Path(__file__).resolve().parent

# The kinds of tests, one directory each.
KINDS = ("unit", "integration", "e2e", "infra", "setup")
# Directories whose tests share session fixtures (or files) and so run on one worker.
_ONE_WORKER = ("infra", "e2e")
# Directories whose tests are handed out one by one.
_EACH_ALONE = ("unit", "setup")
# The order work is handed out in: what takes longest to run starts first.
_FIRST = ("infra", "e2e", "setup")


def _kind(item: pytest.Item) -> str:
    return item.path.relative_to(TESTS).parts[0]


class _KindScheduling(LoadScopeScheduling):
    """xdist's scheduling by scope, with the directories' rules above, in collection order."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        # Collection order (longest first, see pytest_collection_modifyitems), not xdist's
        # order by the number of tests in a scope.
        config.option.loadscopereorder = False

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        parts = module.split("/")
        kind = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
        if kind in _ONE_WORKER:
            return kind
        if kind in _EACH_ALONE:
            return nodeid
        return module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling:
    return _KindScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        kind = _kind(item)
        if kind not in KINDS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in one of tests/{{{','.join(KINDS)}}}")
        item.add_marker(getattr(pytest.mark, kind))
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: _FIRST.index(_kind(item)) if _kind(item) in _FIRST else len(_FIRST))
