"""Build the Lambda layer directory (third-party wheels + the core package) and the functions'
code directories without Docker.

The layer holds the run-time dependencies of the project, as pinned in uv.lock, for the
Lambda platform (Python 3.13 on arm64), plus ``layers/core/idp_core``. Wheels are chosen
for the target platform with ``--only-binary``, so nothing is compiled on the build host
and ``cdk synth`` works on any laptop. The Lambda runtime already ships boto3 and its
dependencies; they are left out so the layer stays small and the runtime's SDK is used.

Lambda's ``/opt`` and ``/var/task`` are read-only, so Python cannot cache the bytecode it
compiles there: without ``.pyc`` files in the assets, every cold start compiles every module
it imports. Bytecode is specific to a Python minor version, so the build compiles it only
when it finds a Python of the runtime's version (``find_bytecode_compiler``); otherwise the
assets ship sources alone and still work, only their cold starts are slower.

Run ``python -m infra.layer_build`` to build it by hand; the CDK app builds it on synth.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO_ROOT / "build"
# The wheels as pip installed them (no bytecode), reused while the lock is unchanged.
WHEELS_DIR = BUILD_DIR / "layer-wheels" / "python"
HASH_FILE = BUILD_DIR / "layer-requirements.sha256"
# The code assets, one tree per bytecode variant ("cpython-313", or "source" without bytecode).
ASSETS_DIR = BUILD_DIR / "assets"
CORE_PACKAGE = REPO_ROOT / "layers" / "core" / "idp_core"
FUNCTIONS_DIR = REPO_ROOT / "functions"

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


# A Python of the runtime's version to compile the assets' bytecode with: a path, or "none" to
# ship sources only. Unset, the build looks for one (find_bytecode_compiler).
BYTECODE_PYTHON_ENV = "IDP_BYTECODE_PYTHON"
# Where Lambda mounts the layer and the function's code. The bytecode names these paths rather
# than this machine's build directory, so the compiled files (and the assets' hashes) are the
# same on every machine that compiles them.
LAYER_MOUNT = "/opt/python"
FUNCTION_MOUNT = "/var/task"
_SOURCE_ONLY = "source"
_PROBE = "import sys; print(sys.version.split()[0], sys.implementation.cache_tag)"
_PROBE_WORDS = 2  # The version and the cache tag.


class LayerBuildError(RuntimeError):
    """The layer could not be built; the message says which step failed."""


@dataclass(frozen=True)
class BytecodeCompiler:
    """A Python interpreter that compiles the assets' bytecode."""

    executable: str
    version: str
    # The interpreter's bytecode tag (``cpython-313``): the name its ``.pyc`` files carry in
    # ``__pycache__`` and the only interpreter that reads them.
    cache_tag: str

    @classmethod
    def probe(cls, executable: str) -> BytecodeCompiler | None:
        """The interpreter at ``executable``, or None when it does not run (a pyenv shim of
        a version that is not selected exits with an error)."""
        try:
            completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell.
                [executable, "-I", "-c", _PROBE],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except OSError:
            return None
        words = completed.stdout.split()
        if completed.returncode != 0 or len(words) != _PROBE_WORDS:
            return None
        return cls(executable, words[0], words[1])

    @classmethod
    def running(cls) -> BytecodeCompiler:
        """The interpreter running this code (the benchmarks and the tests compile with it)."""
        return cls(sys.executable, sys.version.split()[0], str(sys.implementation.cache_tag))

    def compile_tree(self, tree: Path, *, mounted_at: str) -> None:
        """Write ``__pycache__/<module>.<tag>.pyc`` beside every module under ``tree``.

        ``unchecked-hash`` pyc files are used without looking at the source's modification
        time, which a zip file does not keep faithfully, nor at its hash (the assets never
        change once built). Python reads such files on a read-only file system and writes
        nothing. ``-I`` keeps the environment out: PYTHONPYCACHEPREFIX would send the files
        elsewhere.
        """
        completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell.
            [
                self.executable,
                "-I",
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                "-d",
                mounted_at,
                str(tree),
            ],
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"},
            check=False,
        )
        if completed.returncode != 0:
            raise LayerBuildError(
                f"Python {self.version} ({self.executable}) could not compile {tree}:\n"
                f"{completed.stdout}{completed.stderr}"
            )


def runtime_cache_tag() -> str:
    """The bytecode tag of the Lambda runtime's Python (``cpython-313``)."""
    return "cpython-" + PYTHON_VERSION.replace(".", "")


def find_bytecode_compiler(environ: Mapping[str, str] | None = None) -> BytecodeCompiler | None:
    """A Python of the runtime's version to compile with, or None to ship sources only.

    ``IDP_BYTECODE_PYTHON`` names one (or "none"); a named interpreter of another version is
    an error, not a silent fallback. Unset, the first that runs and has the runtime's version
    among: ``python3.13`` on PATH, the interpreter running the build, one that uv has
    installed (uv is not allowed to download one), and pyenv's versions.
    """
    environ = os.environ if environ is None else environ
    return _find_bytecode_compiler(
        environ.get(BYTECODE_PYTHON_ENV, "").strip(),
        environ.get("PATH", ""),
        environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv"),
    )


@functools.lru_cache(maxsize=8)
def _find_bytecode_compiler(configured: str, path: str, pyenv_root: str) -> BytecodeCompiler | None:
    wanted = runtime_cache_tag()
    if configured.lower() == "none":
        return None
    if configured:
        compiler = BytecodeCompiler.probe(configured)
        if compiler is None or compiler.cache_tag != wanted:
            found = f"Python {compiler.version}" if compiler else "nothing that runs"
            raise LayerBuildError(
                f"{BYTECODE_PYTHON_ENV}={configured} is {found}; it must name a Python {PYTHON_VERSION} "
                f"interpreter (bytecode is specific to the runtime's version), or be 'none'"
            )
        return compiler
    for candidate in _compiler_candidates(path, pyenv_root):
        compiler = BytecodeCompiler.probe(candidate)
        if compiler is not None and compiler.cache_tag == wanted:
            return compiler
    return None


def _compiler_candidates(path: str, pyenv_root: str) -> Iterable[str]:
    on_path = shutil.which(f"python{PYTHON_VERSION}", path=path)
    if on_path:
        yield on_path
    yield sys.executable
    uv = shutil.which("uv", path=path)
    if uv:
        completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell.
            [uv, "python", "find", "--no-python-downloads", "--no-project", PYTHON_VERSION],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode == 0 and completed.stdout.strip():
            yield completed.stdout.strip()
    yield from sorted(str(path) for path in Path(pyenv_root).glob(f"versions/{PYTHON_VERSION}*/bin/python3"))


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


def layer_package_names(
    lock_path: Path = REPO_ROOT / "uv.lock", *, runtime_provided: frozenset[str] = RUNTIME_PROVIDED
) -> set[str]:
    """Names of the locked packages the functions need that the runtime does not provide.

    The project's dependencies are followed through the lock file's dependency graph, but
    never through a runtime-provided package: what only botocore needs is not shipped. With
    ``runtime_provided`` empty, every package the functions import on Lambda is named.
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
    pending = [root for root in roots if root not in runtime_provided]
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        wanted.add(name)
        pending.extend(dep for dep in graph.get(name, ()) if dep not in runtime_provided)
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
    if WHEELS_DIR.exists():
        shutil.rmtree(WHEELS_DIR)
    WHEELS_DIR.mkdir(parents=True)
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
            str(WHEELS_DIR),
            "--requirement",
            str(requirements_file),
        ]
    )
    # Console scripts point at the build host's interpreter and are of no use in a layer.
    shutil.rmtree(WHEELS_DIR / "bin", ignore_errors=True)


def _prune(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _DROPPED_DIRS and ".dist-info" not in str(path):
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in _DROPPED_SUFFIXES:
            path.unlink()


_UNCOMPILED = shutil.ignore_patterns("__pycache__", "*.pyc")


def _variant(compiler: BytecodeCompiler | None) -> str:
    return compiler.cache_tag if compiler else _SOURCE_ONLY


def _wheels(force: bool) -> str:
    """Install the locked wheels unless the last install had the same recipe; its fingerprint."""
    requirements = layer_requirements()
    fingerprint = _fingerprint(requirements)
    cached = HASH_FILE.exists() and HASH_FILE.read_text(encoding="utf-8").strip() == fingerprint
    if force or not cached or not WHEELS_DIR.is_dir():
        HASH_FILE.unlink(missing_ok=True)
        _install(requirements)
        _prune(WHEELS_DIR)
        HASH_FILE.write_text(fingerprint + "\n", encoding="utf-8")
    return fingerprint


def build_layer(*, force: bool = False, compiler: BytecodeCompiler | None = None) -> Path:
    """Build (or refresh) the layer directory and return it; it holds ``python/``.

    With a ``compiler`` (of the runtime's version: ``find_bytecode_compiler``) every module
    ships with its bytecode. The wheel install and their bytecode are reused while the locked
    requirements, target platform and compiler are unchanged; the core package is copied
    (and compiled) afresh every time.
    """
    fingerprint = _wheels(force)
    layer = ASSETS_DIR / _variant(compiler) / "layer"
    site = layer / "python"
    # Beside the layer, not in it: the stamp is no part of what Lambda mounts.
    stamp = layer.with_name("layer.sha256")
    recipe = f"{fingerprint} {compiler.version if compiler else _SOURCE_ONLY}"
    if force or not stamp.is_file() or stamp.read_text(encoding="utf-8").strip() != recipe:
        shutil.rmtree(layer, ignore_errors=True)
        shutil.copytree(WHEELS_DIR, site)
        if compiler is not None:
            compiler.compile_tree(site, mounted_at=LAYER_MOUNT)
        stamp.write_text(recipe + "\n", encoding="utf-8")
    core = site / CORE_PACKAGE.name
    shutil.rmtree(core, ignore_errors=True)
    shutil.copytree(CORE_PACKAGE, core, ignore=_UNCOMPILED)
    if compiler is not None:
        compiler.compile_tree(core, mounted_at=f"{LAYER_MOUNT}/{CORE_PACKAGE.name}")
    return layer


def build_function(source: Path, *, compiler: BytecodeCompiler | None = None) -> Path:
    """The code directory of the function whose modules are in ``source`` (``functions/<name>``),
    with their bytecode when a ``compiler`` is given. It keeps the repository's package layout,
    ``functions/<name>/``, so Lambda imports ``functions.<name>.handler`` as the tests and the
    local stack do (``function_handler``)."""
    if not (source / "handler.py").is_file():
        raise LayerBuildError(f"{source} has no handler.py")
    target = ASSETS_DIR / _variant(compiler) / "functions" / source.name
    shutil.rmtree(target, ignore_errors=True)
    copy_function(source, target)
    if compiler is not None:
        compiler.compile_tree(target, mounted_at=FUNCTION_MOUNT)
    return target


def copy_function(source: Path, task: Path) -> None:
    """Copy the function in ``source`` (``functions/<name>``) into ``task`` as its package,
    ``task/functions/<name>/``, without bytecode."""
    package = task / FUNCTIONS_DIR.name
    package.mkdir(parents=True)
    shutil.copyfile(FUNCTIONS_DIR / "__init__.py", package / "__init__.py")
    shutil.copytree(source, package / source.name, ignore=_UNCOMPILED)


def handler_module(name: str) -> str:
    """The module Lambda imports for function ``name``, as the tests and the local stack do."""
    return f"{FUNCTIONS_DIR.name}.{name}.handler"


def function_handler(name: str) -> str:
    """Lambda's handler setting for function ``name``."""
    return f"{handler_module(name)}.lambda_handler"


def directory_size(paths: Iterable[Path]) -> int:
    return sum(file.stat().st_size for path in paths for file in path.rglob("*") if file.is_file())


def main() -> None:
    compiler = find_bytecode_compiler()
    layer = build_layer(force="--force" in sys.argv[1:], compiler=compiler)
    print(f"layer built in {layer} ({directory_size([layer]) / 1e6:.1f} MB)")
    print(bytecode_note(compiler))


def bytecode_note(compiler: BytecodeCompiler | None) -> str:
    """One sentence on the bytecode the assets ship, for the synth output."""
    if compiler is not None:
        return (
            f"The layer and function assets ship bytecode compiled by Python {compiler.version} "
            f"({compiler.executable})."
        )
    return (
        f"No Python {PYTHON_VERSION} was found to compile bytecode with (set {BYTECODE_PYTHON_ENV} "
        f"to one, or put python{PYTHON_VERSION} on PATH): the layer and function assets ship sources "
        "only, so each cold start on Lambda compiles every module it imports."
    )


if __name__ == "__main__":
    main()
