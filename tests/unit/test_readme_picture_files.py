"""The README's pictures (issue 12 point 8): each one in docs/images is shown with alt text,
stays small, and is rewritten only when it changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from docs.diagrams.output import write_if_changed
from tests.e2e.pictures import IMAGES, README, VIEWPORT, png_size

README_IMAGE = re.compile(r"!\[([^\]]*)\]\((docs/images/[^)\s]+)\)")
MAX_PICTURE_BYTES = 150_000


def test_every_picture_is_in_the_readme_with_alt_text_and_every_picture_there_exists() -> None:
    embedded = {path: alt for alt, path in README_IMAGE.findall(README.read_text(encoding="utf-8"))}
    pictures = {f"docs/images/{path.name}" for path in IMAGES.iterdir() if path.suffix in {".png", ".svg"}}
    assert pictures <= set(embedded), f"not in the README: {sorted(pictures - set(embedded))}"
    assert set(embedded) <= pictures, f"the README shows missing files: {sorted(set(embedded) - pictures)}"
    assert all(len(alt.split()) >= 5 for alt in embedded.values()), (
        "every picture needs a sentence of alt text"
    )


def test_the_pictures_are_small() -> None:
    for path in IMAGES.iterdir():
        assert path.stat().st_size < MAX_PICTURE_BYTES, f"{path.name} is {path.stat().st_size} bytes"
        if path.suffix == ".png":
            assert png_size(path.read_bytes()) == (VIEWPORT["width"], VIEWPORT["height"])


def test_a_picture_file_is_rewritten_only_when_its_bytes_change(tmp_path: Path) -> None:
    picture = tmp_path / "page.png"
    assert write_if_changed(picture, b"first")
    before = picture.stat()
    assert not write_if_changed(picture, b"first")
    assert (picture.stat().st_ino, picture.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert write_if_changed(picture, b"second")
    assert picture.read_bytes() == b"second"
    assert [path.name for path in tmp_path.iterdir()] == ["page.png"]  # no temporary file left


def test_what_is_not_a_png_has_no_picture_size() -> None:
    with pytest.raises(ValueError, match="not a PNG image"):
        png_size(b"GIF89a" + bytes(32))
