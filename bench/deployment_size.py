"""Unzipped size of the layer and function assets (target < 60 MB total, each function < 1 MB)."""

from __future__ import annotations

from pathlib import Path

from bench.common import verdict

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("sso", "otp", "adaptive", "provisioning")


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def run() -> dict:
    from infra.layer_build import build_layer

    layer_dir = Path(build_layer())
    layer = tree_bytes(layer_dir)
    figures = {"layer MB": round(layer / 1e6, 2)}
    rows = []
    total = layer
    for name in FUNCTIONS:
        size = tree_bytes(ROOT / "functions" / name)
        total += size
        figures[f"function {name} KB"] = round(size / 1e3, 1)
        rows.append((f"function asset {name}", f"{size / 1e3:.1f} KB", "< 1 MB", verdict(size < 1e6)))
    figures["total MB"] = round(total / 1e6, 2)
    rows.insert(
        0, ("layer + functions (unzipped)", f"{total / 1e6:.1f} MB", "< 60 MB", verdict(total < 60e6))
    )
    return {"figures": figures, "rows": rows}
