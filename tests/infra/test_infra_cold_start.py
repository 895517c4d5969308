"""The cold start as Lambda runs it: bytecode for the runtime's Python in the layer and the
function assets when the build can compile it (and a note in the synth output when it
cannot), and Lambda SnapStart behind the ``snapStart`` switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.constructs.function import LIVE_ALIAS
from infra.layer_build import (
    BYTECODE_PYTHON_ENV,
    FUNCTIONS_DIR,
    REPO_ROOT,
    BytecodeCompiler,
    LayerBuildError,
    build_function,
    build_layer,
    find_bytecode_compiler,
    runtime_cache_tag,
)
from infra.settings import InfraConfigurationError
from tests.infra.conftest import Synthesis, synthesise
from tests.infra.template import function_of, settings_from

SERVICES = ("sso", "otp", "adaptive", "provisioning")
# A pyc header's flags (PEP 552): bit 0 says the file is checked by the source's hash rather
# than its modification time, bit 1 that the hash is checked at all. Neither time nor hash:
UNCHECKED_HASH = 0b01
SOURCE_ONLY_NOTE = "ship sources only"
SSO_MODULES = ("__init__", "handler", "admin_routes", "password_routes")


def _asset_dirs(synthesis: Synthesis) -> dict[str, Path]:
    (layer_id,) = synthesis.resources("AWS::Lambda::LayerVersion")
    dirs = {"layer": synthesis.asset_dir(layer_id) / "python"}
    for service in SERVICES:
        function_id, _ = function_of(synthesis, service)
        dirs[service] = synthesis.asset_dir(function_id)
    return dirs


def _modules_and_bytecode(root: Path) -> tuple[list[Path], list[Path]]:
    return sorted(root.rglob("*.py")), sorted(root.rglob("*.pyc"))


def _magic_number(compiler: BytecodeCompiler) -> bytes:
    completed = subprocess.run(
        [
            compiler.executable,
            "-I",
            "-c",
            "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return bytes.fromhex(completed.stdout)


def assert_every_module_has_unchecked_bytecode(root: Path, compiler: BytecodeCompiler) -> None:
    modules, compiled = _modules_and_bytecode(root)
    assert modules
    expected = {
        module.parent / "__pycache__" / f"{module.stem}.{compiler.cache_tag}.pyc" for module in modules
    }
    assert set(compiled) == expected, f"{root}: bytecode missing for {sorted(expected - set(compiled))[:5]}"
    magic = _magic_number(compiler)
    for pyc in compiled:
        header = pyc.read_bytes()[:8]
        assert header[:4] == magic, pyc
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH, pyc


def _info_messages(synthesis: Synthesis) -> list[str]:
    """The info annotations that `cdk synth` prints (kept beside the template)."""
    metadata = json.loads((synthesis.outdir / f"{synthesis.stack_name}.metadata.json").read_text())
    return [
        entry["data"] for entries in metadata.values() for entry in entries if entry["type"] == "aws:cdk:info"
    ]


# ---------------------------------------------------------------- bytecode in the assets


def test_the_assets_ship_bytecode_for_the_runtime_exactly_when_the_build_has_its_python(
    synthesis: Synthesis,
) -> None:
    compiler = find_bytecode_compiler()
    for name, root in _asset_dirs(synthesis).items():
        if compiler is None:
            assert _modules_and_bytecode(root)[1] == [], name
        else:
            assert compiler.cache_tag == runtime_cache_tag() == "cpython-313"
            assert_every_module_has_unchecked_bytecode(root, compiler)
    notes = [message for message in _info_messages(synthesis) if SOURCE_ONLY_NOTE in message]
    assert len(notes) == (0 if compiler else 1), notes


@pytest.fixture(scope="module")
def source_only_synthesis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesis]:
    """A build that is told to compile nothing, as one without a Python 3.13 does."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BYTECODE_PYTHON_ENV, "none")
        yield synthesise(tmp_path_factory.mktemp("cdk-out-source"))


def test_without_a_python_of_the_runtime_the_assets_ship_sources_and_the_synth_says_so_once(
    source_only_synthesis: Synthesis,
) -> None:
    for name, root in _asset_dirs(source_only_synthesis).items():
        modules, compiled = _modules_and_bytecode(root)
        assert modules and compiled == [], name
    (note,) = [message for message in _info_messages(source_only_synthesis) if SOURCE_ONLY_NOTE in message]
    assert BYTECODE_PYTHON_ENV in note and "python3.13" in note
    assert source_only_synthesis.validation_error is None


def test_the_build_compiles_bytecode_that_its_interpreter_then_loads_without_writing() -> None:
    """With the interpreter running the tests as the build's compiler, the function's asset gets
    that interpreter's pyc files, and importing from it reads them (``-v`` says so) even after
    the sources' modification times change, as they do in a zip file."""
    compiler = BytecodeCompiler.running()
    asset = build_function(FUNCTIONS_DIR / "sso", compiler=compiler)
    assert_every_module_has_unchecked_bytecode(asset, compiler)
    for module in asset.rglob("*.py"):
        os.utime(module, (1, 1))
    before = {path: path.stat().st_mtime_ns for path in asset.rglob("*.pyc")}
    path = os.pathsep.join([str(asset), str(REPO_ROOT / "layers" / "core")])
    loaded = _verbose_import(
        sys.executable,
        "import functions.sso.handler",
        cwd=asset,
        env={**_handler_environment(), "PYTHONPATH": path},
    )
    for package, name in (("functions", "__init__"), *(("functions/sso", name) for name in SSO_MODULES)):
        pyc = asset / package / "__pycache__" / f"{name}.{compiler.cache_tag}.pyc"
        assert f"code object from '{pyc}'" in loaded, name
    assert {path: path.stat().st_mtime_ns for path in asset.rglob("*.pyc")} == before


def test_the_runtime_python_reads_the_layer_bytecode_the_build_made() -> None:
    """The layer's pure-Python modules load from their cpython-313 files in Python 3.13 itself
    (the layer's compiled extensions are for arm64, so only pure modules can be imported here).
    Without a Python 3.13 the build made no bytecode, which is checked instead."""
    compiler = find_bytecode_compiler()
    layer = build_layer(compiler=compiler) / "python"
    if compiler is None:
        assert _modules_and_bytecode(layer)[1] == []
        return
    loaded = _verbose_import(
        compiler.executable,
        f"import sys; sys.path.insert(0, {str(layer)!r}); import jinja2, idp_core.clock",
        cwd=layer,
        env={"PATH": os.environ.get("PATH", "")},
    )
    for module in ("jinja2/__init__", "markupsafe/__init__", "idp_core/clock"):
        source = layer / f"{module}.py"
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        assert f"{pyc} matches {source}" in loaded, module


def test_a_configured_compiler_of_another_python_stops_the_build_with_the_reason(tmp_path: Path) -> None:
    """The runtime ignores bytecode of another version: the build refuses to make it instead
    of shipping files that only cost space."""
    python_3_12 = tmp_path / "python3.12"
    python_3_12.write_text("#!/bin/sh\necho 3.12.1 cpython-312\n")
    python_3_12.chmod(0o755)
    with pytest.raises(
        LayerBuildError, match=rf"{BYTECODE_PYTHON_ENV}=.*is Python 3\.12\.1.*must name a Python 3\.13"
    ):
        find_bytecode_compiler({BYTECODE_PYTHON_ENV: str(python_3_12), "PATH": ""})
    with pytest.raises(LayerBuildError, match="nothing that runs"):
        find_bytecode_compiler({BYTECODE_PYTHON_ENV: "/nonexistent/python3.13", "PATH": ""})
    assert find_bytecode_compiler({BYTECODE_PYTHON_ENV: "none"}) is None


def _verbose_import(python: str, code: str, *, cwd: Path, env: dict[str, str]) -> str:
    """What ``python -v`` says while it runs ``code``: where each module's code came from.
    ``-B``: nothing may be written, as on Lambda's read-only file system."""
    completed = subprocess.run(
        [python, "-B", "-v", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stderr


def _handler_environment() -> dict[str, str]:
    from idp_core.config import Settings, Tables

    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "eu-west-1",
        **Settings(tables=Tables.with_prefix("infra-"), signing_key_id="unused").to_env(),
    }


# ---------------------------------------------------------------- SnapStart


def _integration_targets(synthesis: Synthesis) -> list[str]:
    return [
        json.dumps(method["Properties"]["Integration"]["Uri"])
        for method in synthesis.resources("AWS::ApiGateway::Method").values()
    ]


def test_snap_start_is_off_by_default_and_the_api_invokes_the_functions(synthesis: Synthesis) -> None:
    for function in synthesis.resources("AWS::Lambda::Function").values():
        assert "SnapStart" not in function["Properties"]
    assert not synthesis.resources("AWS::Lambda::Version")
    assert not synthesis.resources("AWS::Lambda::Alias")
    function_ids = set(synthesis.resources("AWS::Lambda::Function"))
    for uri in _integration_targets(synthesis):
        assert any(f'"{function_id}", "Arn"' in uri for function_id in function_ids), uri


def _alias_of(synthesis: Synthesis, function_id: str) -> tuple[str, dict[str, Any]]:
    (alias,) = [
        (alias_id, alias)
        for alias_id, alias in synthesis.resources("AWS::Lambda::Alias").items()
        if alias["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return alias


def test_snap_start_true_publishes_every_function_and_everything_invokes_its_alias(
    switches_on_synthesis: Synthesis,
) -> None:
    synthesis = switches_on_synthesis
    versions = synthesis.resources("AWS::Lambda::Version")
    alias_ids = set()
    for service in SERVICES:
        function_id, function = function_of(synthesis, service)
        assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}, service
        (version_id,) = [
            version_id
            for version_id, version in versions.items()
            if version["Properties"]["FunctionName"] == {"Ref": function_id}
        ]
        # The version a deployment replaces goes, and with it the snapshot that is billed.
        assert versions[version_id]["DeletionPolicy"] == "Delete"
        alias_id, alias = _alias_of(synthesis, function_id)
        assert alias["Properties"]["Name"] == LIVE_ALIAS
        assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
        alias_ids.add(alias_id)
    # API Gateway invokes the aliases only, and may invoke nothing else.
    for uri in _integration_targets(synthesis):
        assert any(f'{{"Ref": "{alias_id}"}}' in uri for alias_id in alias_ids), uri
    for permission in synthesis.resources("AWS::Lambda::Permission").values():
        assert permission["Properties"]["FunctionName"] in [{"Ref": alias_id} for alias_id in alias_ids]
    # The scheduled tick too, with its no-retry setting on the alias it invokes.
    provisioning_id, _ = function_of(synthesis, "provisioning")
    provisioning_alias, _ = _alias_of(synthesis, provisioning_id)
    ((_, rule),) = synthesis.resources("AWS::Events::Rule").items()
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": provisioning_alias}
    (invoke_config,) = synthesis.resources("AWS::Lambda::EventInvokeConfig").values()
    # The alias's name, taken from its ARN.
    assert invoke_config["Properties"]["Qualifier"] == {
        "Fn::Select": [7, {"Fn::Split": [":", {"Ref": provisioning_alias}]}]
    }
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 0


def test_snap_start_takes_true_or_false_only() -> None:
    assert settings_from(snapStart="true").operations.snap_start is True
    assert settings_from(snapStart=False).operations.snap_start is False
    assert settings_from().operations.snap_start is False
    with pytest.raises(InfraConfigurationError, match="snapStart must be true or false"):
        settings_from(snapStart="on")
