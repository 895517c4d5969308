"""Writing the README's pictures without churn: a file is rewritten only when its bytes change."""

from __future__ import annotations

import os
from pathlib import Path


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write ``content`` unless the file holds it already; a reader never sees half a file."""
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(content)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return True
