"""Cold import of each function's handler as Lambda imports it, with and without bytecode,
against `import boto3` measured the same way in the same run (median of 5).

Lambda puts the function's code (``/var/task``) and the layer (``/opt/python``) on the path
and imports ``functions.<name>.handler``. Both are read-only, so Python cannot cache what it compiles there:
unless the assets ship ``.pyc`` files, every cold start compiles every module it imports.
This benchmark lays out the same: a copy of each function's code and one of every package
the functions import on Lambda (the layer's and the runtime's boto3, from this environment,
for this machine's platform), once as sources only and once compiled as the build compiles
them (``infra.layer_build``). Python runs with ``-S`` (nothing else of this environment on
the path: test tools such as pyOpenSSL would change what botocore imports) and ``-B``.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.common import verdict
from idp_core.config import Tables
from infra.layer_build import (
    CORE_PACKAGE,
    FUNCTIONS_DIR,
    BytecodeCompiler,
    bytecode_note,
    copy_function,
    find_bytecode_compiler,
    handler_module,
    layer_package_names,
)

RUNS = 5
FUNCTIONS = ("sso", "otp", "adaptive", "provisioning")
BASELINE = "boto3"
CACHED_TARGET = 1.5
UNCACHED_TARGET = 2.0
_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)")

# Dummy settings so the handler's cold-start validation passes without AWS.
_ENV = {
    **Tables.with_prefix("bench-").to_env(),
    "SIGNING_KEY_ID": "key",
    "DATA_KEY_ID": "data-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "bench",
}


@dataclass(frozen=True)
class LambdaTree:
    """The directories Lambda would put on the path: the packages (``opt``) and each
    function's code (``task/<name>``)."""

    root: Path

    @property
    def opt(self) -> Path:
        return self.root / "opt" / "python"

    def task(self, function: str) -> Path:
        return self.root / "task" / function

    def handler_file(self, function: str) -> Path:
        """Where the function's handler module is in its code directory."""
        return self.task(function).joinpath(*handler_module(function).split(".")).with_suffix(".py")

    def pyc_files(self) -> list[Path]:
        return list(self.root.rglob("*.pyc"))

    def import_ms(self, module: str, function: str = FUNCTIONS[0]) -> float:
        """Cumulative import time of ``module`` in a fresh interpreter, in milliseconds."""
        completed = subprocess.run(
            [sys.executable, "-S", "-B", "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            env=self.environment(),
            cwd=self.task(function),
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"import {module} failed:\n{completed.stderr[-3000:]}")
        for line in reversed(completed.stderr.splitlines()):
            match = _IMPORT_LINE.search(line)
            if match and match.group(3) == module:
                return int(match.group(2)) / 1000
        raise RuntimeError(f"no import time reported for {module}")

    def environment(self) -> dict[str, str]:
        # Only what Lambda would set: none of this shell's PYTHON* variables (a
        # PYTHONPYCACHEPREFIX would hide or supply bytecode).
        return {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(self.opt),
            "PYTHONDONTWRITEBYTECODE": "1",
            **_ENV,
        }


def lambda_packages() -> list[str]:
    """Every distribution the functions import on Lambda: the layer's and the runtime's."""
    return sorted(layer_package_names(runtime_provided=frozenset()))


def lay_out(root: Path, *, compiler: BytecodeCompiler | None) -> LambdaTree:
    """Copy the functions, the core package and the installed distributions into ``root``,
    without any bytecode, and compile them with ``compiler`` when one is given."""
    tree = LambdaTree(root)
    tree.opt.mkdir(parents=True)
    for name in lambda_packages():
        distribution = metadata.distribution(name)
        for file in distribution.files or ():
            if "__pycache__" in file.parts or file.suffix == ".pyc" or ".." in file.parts:
                continue
            source = Path(str(distribution.locate_file(file)))
            if source.is_file():
                target = tree.opt / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    uncompiled = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(CORE_PACKAGE, tree.opt / CORE_PACKAGE.name, ignore=uncompiled)
    for function in FUNCTIONS:
        copy_function(FUNCTIONS_DIR / function, tree.task(function))
    if compiler is not None:
        compiler.compile_tree(tree.root, mounted_at="/")
    return tree


def measure(
    trees: dict[str, LambdaTree], functions: Sequence[str] = FUNCTIONS, runs: int = RUNS
) -> dict[str, dict[str, float]]:
    """Median import times (ms) per tree of the baseline and of each function's handler,
    every measurement interleaved with the others so that noise hits them alike."""
    samples: dict[str, dict[str, list[float]]] = {
        kind: {name: [] for name in (BASELINE, *functions)} for kind in trees
    }
    for _ in range(runs):
        for kind, tree in trees.items():
            samples[kind][BASELINE].append(tree.import_ms(BASELINE))
            for function in functions:
                samples[kind][function].append(tree.import_ms(handler_module(function), function))
    return {
        kind: {name: statistics.median(values) for name, values in by_name.items()}
        for kind, by_name in samples.items()
    }


def run(functions: Sequence[str] = FUNCTIONS, runs: int = RUNS) -> dict:
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        trees = {
            "bytecode": lay_out(Path(scratch) / "bytecode", compiler=BytecodeCompiler.running()),
            "no bytecode": lay_out(Path(scratch) / "sources", compiler=None),
        }
        medians = measure(trees, functions, runs)
    cached, uncached = medians["bytecode"], medians["no bytecode"]
    figures: dict[str, object] = {
        "import boto3 ms": round(cached[BASELINE], 1),
        "import boto3 without bytecode ms": round(uncached[BASELINE], 1),
    }
    rows = [
        ("import boto3 (baseline)", f"{cached[BASELINE]:.0f} ms", "", ""),
        ("import boto3 without bytecode (baseline)", f"{uncached[BASELINE]:.0f} ms", "", ""),
    ]
    for function in functions:
        ratio = cached[function] / cached[BASELINE]
        lambda_ratio = uncached[function] / uncached[BASELINE]
        gap = uncached[function] - cached[function]
        figures |= {
            f"{function} ms": round(cached[function], 1),
            f"{function} ratio": round(ratio, 2),
            f"{function} without bytecode ms": round(uncached[function], 1),
            f"{function} without bytecode ratio": round(lambda_ratio, 2),
            f"{function} gap ms": round(gap, 1),
        }
        rows += [
            (
                f"cold import {function} handler",
                f"{cached[function]:.0f} ms = {ratio:.2f}x boto3",
                f"<= {CACHED_TARGET}x",
                verdict(ratio <= CACHED_TARGET),
            ),
            (
                f"cold import {function} handler without bytecode",
                f"{uncached[function]:.0f} ms = {lambda_ratio:.2f}x boto3 without bytecode",
                f"<= {UNCACHED_TARGET}x",
                verdict(lambda_ratio <= UNCACHED_TARGET),
            ),
            (
                f"  gap without bytecode {function}",
                f"+{gap:.0f} ms ({uncached[function] / cached[function]:.2f}x the cached import)",
                "report",
                "",
            ),
        ]
    compiler = find_bytecode_compiler()
    figures["assets ship bytecode"] = compiler.cache_tag if compiler else None
    rows.append(("bytecode in the built assets", compiler.cache_tag if compiler else "none", "", ""))
    print(bytecode_note(compiler), file=sys.stderr)
    return {"figures": figures, "rows": rows}
