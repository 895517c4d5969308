"""Unzipped size of the layer and function assets (target < 60 MB total, each function < 1 MB),
as the build makes them: with their bytecode when it finds a Python of the runtime's version."""

from __future__ import annotations

from pathlib import Path

from bench.common import verdict

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("sso", "otp", "adaptive", "provisioning")


# The targets of BENCHMARKS.md: each function asset under 1 MB, everything under 60 MB.
FUNCTION_ASSET_LIMIT_BYTES = 1e6
DEPLOYMENT_LIMIT_BYTES = 60e6


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run() -> dict:
    from infra.layer_build import build_function, build_layer, find_bytecode_compiler

    compiler = find_bytecode_compiler()
    layer_dir = Path(build_layer(compiler=compiler))
    layer = tree_bytes(layer_dir)
    figures: dict[str, object] = {
        "layer MB": round(layer / 1e6, 2),
        "bytecode": compiler.cache_tag if compiler else None,
    }
    rows = []
    total = layer
    for name in FUNCTIONS:
        size = tree_bytes(build_function(ROOT / "functions" / name, compiler=compiler))
        total += size
        figures[f"function {name} KB"] = round(size / 1e3, 1)
        rows.append(
            (
                f"function asset {name}",
                f"{size / 1e3:.1f} KB",
                "< 1 MB",
                verdict(size < FUNCTION_ASSET_LIMIT_BYTES),
            )
        )
    figures["total MB"] = round(total / 1e6, 2)
    shipped = f"with {compiler.cache_tag} bytecode" if compiler else "sources only"
    rows.insert(
        0,
        (
            f"layer + functions (unzipped, {shipped})",
            f"{total / 1e6:.1f} MB",
            "< 60 MB",
            verdict(total < DEPLOYMENT_LIMIT_BYTES),
        ),
    )
    return {"figures": figures, "rows": rows}
