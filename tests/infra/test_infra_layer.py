"""The layer holds Linux arm64 / CPython 3.13 builds of the compiled dependencies, and
the code assets stay well under Lambda's size limits."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.layer_build import (
    REPO_ROOT,
    RUNTIME_PROVIDED,
    directory_size,
    layer_package_names,
    normalise,
    runtime_cache_tag,
)
from tests.infra.conftest import Synthesis

ELF_MAGIC = b"\x7fELF"
EM_AARCH64 = 183
COMPILED_DISTRIBUTIONS = ("lxml", "cryptography", "argon2_cffi_bindings", "cffi")
MAX_TOTAL_BYTES = 60 * 1024 * 1024
MAX_FUNCTION_BYTES = 1024 * 1024


def _layer_site(synthesis: Synthesis) -> Path:
    (layer_id,) = synthesis.resources("AWS::Lambda::LayerVersion")
    return synthesis.asset_dir(layer_id) / "python"


def _dist_info(site: Path, distribution: str) -> Path:
    matches = [
        path
        for path in site.glob("*.dist-info")
        if normalise(path.name.split("-")[0]) == normalise(distribution)
    ]
    assert len(matches) == 1, f"expected one {distribution} distribution in the layer, found {matches}"
    return matches[0]


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == ELF_MAGIC, f"{path.name} is not an ELF file"
    byte_order = "<" if header[5] == 1 else ">"
    return int(struct.unpack(f"{byte_order}H", header[18:20])[0])


@pytest.mark.parametrize("distribution", COMPILED_DISTRIBUTIONS)
def test_compiled_wheels_are_for_cpython_3_13_on_linux_arm64(synthesis: Synthesis, distribution: str) -> None:
    site = _layer_site(synthesis)
    dist_info = _dist_info(site, distribution)
    tags = [
        line.split(":", 1)[1].strip()
        for line in (dist_info / "WHEEL").read_text().splitlines()
        if line.startswith("Tag:")
    ]
    assert tags
    for tag in tags:
        python_tag, abi_tag, platform_tag = tag.split("-")
        assert platform_tag.endswith("_aarch64") and platform_tag.startswith("manylinux"), tag
        assert python_tag == "cp313" or abi_tag == "abi3", tag

    shared_objects = [
        site / line.split(",")[0]
        for line in (dist_info / "RECORD").read_text().splitlines()
        if line.split(",")[0].endswith(".so") or ".so." in line.split(",")[0]
    ]
    assert shared_objects, f"{distribution} is expected to ship compiled extensions"
    for shared_object in shared_objects:
        assert _elf_machine(shared_object) == EM_AARCH64, f"{shared_object.name} is not built for AArch64"


def test_layer_ships_the_core_package_without_test_suites(synthesis: Synthesis) -> None:
    site = _layer_site(synthesis)
    assert (site / "idp_core" / "config.py").is_file()
    assert (site / "idp_core" / "models.py").is_file()
    # Bytecode only of the runtime's Python, if any (tests/infra/test_infra_cold_start.py).
    assert {path.name.split(".")[-2] for path in site.rglob("*.pyc")} <= {runtime_cache_tag()}
    assert not [path for path in site.rglob("tests") if path.is_dir()]


def test_layer_leaves_out_what_the_lambda_runtime_provides(synthesis: Synthesis) -> None:
    shipped = {normalise(path.name.split("-")[0]) for path in _layer_site(synthesis).glob("*.dist-info")}
    assert shipped == layer_package_names()
    assert not shipped & (RUNTIME_PROVIDED | {"urllib3", "python-dateutil", "six"})
    assert {
        "lxml",
        "cryptography",
        "argon2-cffi",
        "signxml",
        "pynamodb",
        "aws-lambda-powertools",
        "jinja2",
    } <= shipped


def test_layer_ships_the_second_factor_libraries(synthesis: Synthesis) -> None:
    site = _layer_site(synthesis)
    # Pure Python: one wheel serves every platform, so nothing needs an aarch64 build.
    for distribution, module in (
        ("pyotp", "pyotp"),
        ("segno", "segno"),
        ("phonenumberslite", "phonenumbers"),
    ):
        dist_info = _dist_info(site, distribution)
        assert "Root-Is-Purelib: true" in (dist_info / "WHEEL").read_text()
        assert (site / module / "__init__.py").is_file()


def test_layer_ships_the_directory_client(synthesis: Synthesis) -> None:
    """ldap3 (and its pyasn1) are pure Python, so directories need no aarch64 build either."""
    site = _layer_site(synthesis)
    for distribution, module in (("ldap3", "ldap3"), ("pyasn1", "pyasn1")):
        dist_info = _dist_info(site, distribution)
        assert "Root-Is-Purelib: true" in (dist_info / "WHEEL").read_text()
        assert (site / module / "__init__.py").is_file()


def test_code_assets_stay_small(synthesis: Synthesis, record_property: Callable[[str, object], None]) -> None:
    functions = synthesis.resources("AWS::Lambda::Function")
    services = {
        f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for f in functions.values()
    }
    assert services == {"sso", "otp", "adaptive", "provisioning"}
    (layer_id,) = synthesis.resources("AWS::Lambda::LayerVersion")
    layer_bytes = directory_size([synthesis.asset_dir(layer_id)])
    record_property("layer_asset_bytes", layer_bytes)
    for function_id, function in functions.items():
        service = function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        function_bytes = directory_size([synthesis.asset_dir(function_id)])
        record_property(f"{service}_function_asset_bytes", function_bytes)
        size = f"{function_bytes / 1024:.1f} KiB, layer: {layer_bytes / 1024**2:.1f} MiB"
        print(f"\n{service} function asset: {size}")
        assert (synthesis.asset_dir(function_id) / "functions" / service / "handler.py").is_file()
        assert function_bytes < MAX_FUNCTION_BYTES, service
        assert function_bytes + layer_bytes < MAX_TOTAL_BYTES, service
        assert {path.name.split(".")[-2] for path in synthesis.asset_dir(function_id).rglob("*.pyc")} <= {
            runtime_cache_tag()
        }, service


def test_each_function_asset_imports_as_lambda_loads_it(synthesis: Synthesis) -> None:
    """Lambda imports the module the handler setting names (``functions.<name>.handler``) from
    the asset, with the layer's code on the path, as the tests and the local stack import it."""
    for function_id, function in synthesis.resources("AWS::Lambda::Function").items():
        properties = function["Properties"]
        module, _, entry = properties["Handler"].rpartition(".")
        # Tokens (table names, key ids) become placeholders: the cold start only checks them.
        variables = {
            name: value if isinstance(value, str) else f"placeholder-{name.lower()}"
            for name, value in properties["Environment"]["Variables"].items()
        }
        asset = synthesis.asset_dir(function_id)
        result = subprocess.run(
            [sys.executable, "-c", f"import {module}; assert callable({module}.{entry})"],
            cwd=asset,
            env={
                **variables,
                "PATH": os.environ.get("PATH", ""),
                "PYTHONPATH": os.pathsep.join([str(asset), str(REPO_ROOT / "layers" / "core")]),
                "AWS_DEFAULT_REGION": "eu-west-1",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{variables['POWERTOOLS_SERVICE_NAME']}: {result.stderr[-2000:]}"
