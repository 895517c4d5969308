"""Build the Lambda layer directory (third-party wheels + the core package) without Docker.

The layer holds the run-time dependencies of the project, as pinned in uv.lock, for the
Lambda platform (Python 3.13 on arm64), plus ``layers/core/idp_core``. Wheels are chosen
for the target platform with ``--only-binary``, so nothing is compiled on the build host
and ``cdk synth`` works on any laptop. The Lambda runtime already ships boto3 and its
dependencies; they are left out so the layer stays small and the runtime's SDK is used.

Run ``python -m infra.layer_build`` to build it by hand; the CDK app builds it on synth.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO_ROOT / "build"
LAYER_DIR = BUILD_DIR / "layer"
SITE_DIR = LAYER_DIR / "python"
CORE_PACKAGE = REPO_ROOT / "layers" / "core" / "idp_core"
HASH_FILE = BUILD_DIR / "layer-requirements.sha256"

PYTHON_VERSION = "3.13"
# Lambda's Python 3.13 runtime runs on Amazon Linux 2023 (glibc 2.34); manylinux_2_28 wheels
# are the newest tag that every dependency publishes for aarch64.
PYTHON_PLATFORM = "aarch64-manylinux_2_28"

# Provided by the Lambda Python runtime. Their own dependencies are not followed, so
# urllib3, python-dateutil and six stay out unless another package needs them too.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})

# Cython sources only matter when compiling against lxml; C headers stay because cffi
# reads its own at run time when a module is compiled on the fly.
_DROPPED_SUFFIXES = (".pyc", ".pyx", ".pxd", ".pxi")
_DROPPED_DIRS = ("__pycache__", "tests", "test")


class LayerBuildError(RuntimeError):
    """The layer could not be built; the message says which step failed."""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _run(command: list[str]) -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise LayerBuildError("the layer build needs `uv` on PATH (https://docs.astral.sh/uv/)")
    completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell.
        [uv, *command], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise LayerBuildError(f"`uv {' '.join(command)}` failed:\n{completed.stderr}")
    return completed.stdout


def layer_package_names(lock_path: Path = REPO_ROOT / "uv.lock") -> set[str]:
    """Names of the locked packages the functions need that the runtime does not provide.

    The project's dependencies are followed through the lock file's dependency graph, but
    never through a runtime-provided package: what only botocore needs is not shipped.
    """
    lock = tomllib.loads(lock_path.read_text(encoding="utf-8"))
    graph: dict[str, set[str]] = {}
    roots: set[str] = set()
    for package in lock.get("package", []):
        name = normalise(package["name"])
        deps = {normalise(dep["name"]) for dep in package.get("dependencies", [])}
        graph.setdefault(name, set()).update(deps)
        if package.get("source", {}).get("editable") == "." or package.get("source", {}).get("virtual"):
            roots.update(deps)
    if not roots:
        raise LayerBuildError(f"found no project entry in {lock_path}")
    wanted: set[str] = set()
    pending = [root for root in roots if root not in RUNTIME_PROVIDED]
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        wanted.add(name)
        pending.extend(dep for dep in graph.get(name, ()) if dep not in RUNTIME_PROVIDED)
    return wanted


def layer_requirements() -> str:
    """Pinned requirement lines (from ``uv export``) for the packages the layer ships."""
    exported = _run(["export", "--no-dev", "--no-hashes", "--no-emit-project", "--frozen", "--no-header"])
    wanted = layer_package_names()
    lines = []
    for raw in exported.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[=<>!~;\s\[]", line, maxsplit=1)[0]
        if normalise(name) in wanted:
            lines.append(line)
    return "\n".join(sorted(lines)) + "\n"


def _fingerprint(requirements: str) -> str:
    recipe = f"{PYTHON_PLATFORM}\n{PYTHON_VERSION}\n{requirements}"
    return hashlib.sha256(recipe.encode()).hexdigest()


def _install(requirements: str) -> None:
    if LAYER_DIR.exists():
        shutil.rmtree(LAYER_DIR)
    SITE_DIR.mkdir(parents=True)
    requirements_file = BUILD_DIR / "layer-requirements.txt"
    requirements_file.write_text(requirements, encoding="utf-8")
    _run(
        [
            "pip",
            "install",
            "--quiet",
            "--no-deps",  # The requirement list is already the full, locked closure.
            "--only-binary",
            ":all:",
            "--python-platform",
            PYTHON_PLATFORM,
            "--python-version",
            PYTHON_VERSION,
            "--target",
            str(SITE_DIR),
            "--requirement",
            str(requirements_file),
        ]
    )
    # Console scripts point at the build host's interpreter and are of no use in a layer.
    shutil.rmtree(SITE_DIR / "bin", ignore_errors=True)


def _prune(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _DROPPED_DIRS and ".dist-info" not in str(path):
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in _DROPPED_SUFFIXES:
            path.unlink()


def _copy_core() -> None:
    target = SITE_DIR / "idp_core"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(CORE_PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def build_layer(*, force: bool = False) -> Path:
    """Build (or refresh) the layer directory and return it; it holds ``python/``.

    The wheel install is skipped when the locked requirements and target platform are
    unchanged since the last build; the core package is copied afresh every time.
    """
    requirements = layer_requirements()
    fingerprint = _fingerprint(requirements)
    cached = HASH_FILE.exists() and HASH_FILE.read_text(encoding="utf-8").strip() == fingerprint
    if force or not cached or not SITE_DIR.is_dir():
        HASH_FILE.unlink(missing_ok=True)
        _install(requirements)
        _prune(SITE_DIR)
        HASH_FILE.write_text(fingerprint + "\n", encoding="utf-8")
    _copy_core()
    return LAYER_DIR


def directory_size(paths: Iterable[Path]) -> int:
    return sum(file.stat().st_size for path in paths for file in path.rglob("*") if file.is_file())


def main() -> None:
    layer = build_layer(force="--force" in sys.argv[1:])
    print(f"layer built in {layer} ({directory_size([layer]) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
