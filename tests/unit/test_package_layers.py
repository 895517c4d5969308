"""idp_core's packages form layers: no import cycle between its packages and top modules, every
import of idp_core made at the top of its module, and the web layer below everything that
knows users, factors, directories or devices (issue 14).

The graph is read from the sources with ``ast``, so it counts every import: those made inside
functions (where a cycle used to hide) and those under ``if TYPE_CHECKING``. The latter run only
for the type checker, but an annotation that names a higher package's type is a dependency of
the design all the same, and a cycle through one breaks as soon as the name is needed at run
time; so they are edges too.
"""

from __future__ import annotations

import ast
import graphlib
import itertools
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "layers" / "core" / "idp_core"

# Function-local imports of idp_core that are needed, with the reason; everything else is
# imported at the top of its module, so a module's dependencies are all in one place.
ALLOWED_LOCAL_IMPORTS: dict[tuple[str, str], str] = {
    ("idp_core.directories.scheduling", "idp_core.directories.imports"): (
        "a tick of the import schedule that finds no directory due, the provisioning function's "
        "usual cold start, needs none of the import code (the directory client, the entries' "
        "mapping, the sign-in's collision records): it loads when a run starts"
    ),
}

# The web layer (requests, cookies, forms, responses, templates) is below everything that
# knows who a user is; the guard (idp_core.guard) is where sessions, second factors,
# directories and devices meet a request.
ABOVE_WEB = (
    "accounts",
    "adaptive",
    "apps",
    "directories",
    "guard",
    "launch",
    "mfa",
    "session_guard",
    "signin",
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. idp_core.web.auth
    target: str  # the imported module (or the package a name is imported from)
    names: tuple[str, ...]  # the names of a ``from`` import
    line: int
    local: bool  # made inside a function

    @property
    def where(self) -> str:
        return f"{self.module}:{self.line}"


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every import in ``source`` with whether a function makes it; relative imports resolved."""
    found: list[Import] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend(Import(module, alias.name, (), child.lineno, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                target = child.module or ""
                if child.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    base = package[: len(package) - (child.level - 1)]
                    target = ".".join([*base, *([target] if target else [])])
                names = tuple(alias.name for alias in child.names)
                found.append(Import(module, target, names, child.lineno, inside))
            visit(child, inside)

    visit(ast.parse(source), False)
    return found


def core_imports() -> list[Import]:
    found = []
    for path in sorted(CORE.rglob("*.py")):
        found += imports_of(path.read_text(), module_name(path), is_package=path.name == "__init__.py")
    return [imp for imp in found if imp.target == "idp_core" or imp.target.startswith("idp_core.")]


def unit(module: str) -> str:
    """The package or top module of idp_core that ``module`` belongs to, e.g. ``mfa``."""
    return module.split(".")[1]


def edges(imports: list[Import]) -> dict[tuple[str, str], list[Import]]:
    """(importing unit, imported unit) -> the imports that make the edge."""
    graph: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in imports:
        # ``from idp_core import aws, clock`` imports the units it names.
        targets = imp.names if imp.target == "idp_core" else (unit(imp.target),)
        for target in targets:
            if target != unit(imp.module):
                graph[(unit(imp.module), target)].append(imp)
    return graph


def cycle_in(graph: dict[tuple[str, str], list[Import]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None when it is acyclic."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for source, target in graph:
        sorter.add(source, target)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # graphlib lists a cycle against the direction of ``add``'s dependencies.
        return list(reversed(exc.args[1]))
    return None


def tangles(graph: dict[tuple[str, str], list[Import]]) -> list[list[str]]:
    """The groups of units that all reach each other (strongly connected, two or more)."""
    targets: dict[str, set[str]] = defaultdict(set)
    for source, target in graph:
        targets[source].add(target)

    def reached_from(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for target in targets[todo.pop()] - seen:
                seen.add(target)
                todo.append(target)
        return seen

    reached = {unit: reached_from(unit) for unit in list(targets)}
    groups = {
        frozenset({unit} | {other for other in reached[unit] if unit in reached.get(other, ())})
        for unit in reached
    }
    return sorted(sorted(group) for group in groups if len(group) > 1)


def describe(cycle: list[str], graph: dict[tuple[str, str], list[Import]]) -> str:
    lines = [" -> ".join(cycle)]
    for source, target in itertools.pairwise(cycle):
        made_by = ", ".join(f"{imp.where} ({imp.target})" for imp in graph[(source, target)])
        lines.append(f"  {source} -> {target}: {made_by}")
    lines += [f"tangled together: {', '.join(group)}" for group in tangles(graph)]
    return "\n".join(lines)


def test_idp_core_packages_import_each_other_without_a_cycle() -> None:
    graph = edges(core_imports())
    cycle = cycle_in(graph)
    assert cycle is None, "idp_core's packages import each other in a cycle:\n" + describe(cycle, graph)


def test_idp_core_is_imported_at_the_top_of_every_module() -> None:
    local = {
        imp.where: imp.target
        for imp in core_imports()
        if imp.local and (imp.module, imp.target) not in ALLOWED_LOCAL_IMPORTS
    }
    assert local == {}, "import these at the top of the module (or allow one with its reason)"


def test_the_allowed_local_imports_are_still_made() -> None:
    """An allowance outlives its reason unnoticed otherwise."""
    made = {(imp.module, imp.target) for imp in core_imports() if imp.local}
    assert set(ALLOWED_LOCAL_IMPORTS) <= made


def test_the_web_layer_knows_no_users_factors_directories_or_devices() -> None:
    upward = {
        imp.where: imp.target
        for (source, target), made_by in edges(core_imports()).items()
        if source == "web" and target in ABOVE_WEB
        for imp in made_by
    }
    assert upward == {}


# ------------------------------------------------------------------ the checks themselves


def test_the_collector_sees_local_type_checking_and_relative_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from idp_core import audit, clock\n"
        "if TYPE_CHECKING:\n"
        "    from idp_core.mfa.flow import AfterPassword\n"
        "def f():\n"
        "    from idp_core.directories import store\n"
        "    return lambda: __import__('x')\n"
        "class C:\n"
        "    def m(self):\n"
        "        import idp_core.adaptive.devices\n"
        "from .forms import Field\n"
    )
    found = imports_of(source, "idp_core.web.auth")
    assert [(imp.target, imp.local) for imp in found] == [
        ("typing", False),
        ("idp_core", False),
        ("idp_core.mfa.flow", False),
        ("idp_core.directories", True),
        ("idp_core.adaptive.devices", True),
        ("idp_core.web.forms", False),
    ]
    graph = edges([imp for imp in found if imp.target.startswith("idp_core")])
    assert set(graph) == {
        ("web", "audit"),
        ("web", "clock"),
        ("web", "mfa"),
        ("web", "directories"),
        ("web", "adaptive"),
    }


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("a", "b"), ("b", "c")], None),
        ([("a", "b"), ("b", "c"), ("c", "a")], ["a", "b", "c", "a"]),
    ],
)
def test_the_cycle_finder_names_the_cycle(pairs: list[tuple[str, str]], expected: list[str] | None) -> None:
    graph: dict[tuple[str, str], list[Import]] = {pair: [] for pair in pairs}
    cycle = cycle_in(graph)
    if expected is None:
        assert cycle is None
    else:
        assert cycle is not None
        # The same cycle, whichever node graphlib starts it from.
        start = cycle.index("a")
        assert cycle[start:-1] + cycle[:start] + ["a"] == expected


def test_the_tangles_are_the_units_that_reach_each_other() -> None:
    pairs = [("a", "b"), ("b", "a"), ("b", "c"), ("c", "d"), ("d", "c"), ("e", "a")]
    graph: dict[tuple[str, str], list[Import]] = {pair: [] for pair in pairs}
    assert tangles(graph) == [["a", "b"], ["c", "d"]]


def test_every_module_of_idp_core_imports_on_its_own() -> None:
    """Modules of one package may import each other (the second-factor registry and the methods'
    implementations do); whichever a function imports first, the others must be ready for it.
    Each module is imported first in turn, with idp_core forgotten in between."""
    names = sorted(module_name(path) for path in CORE.rglob("*.py"))
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'idp_core' or m.startswith('idp_core.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "print('\\n'.join(failed))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert ran.stdout.strip() == "", ran.stdout
