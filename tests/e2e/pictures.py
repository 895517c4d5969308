"""Pictures of pages for the README, taken by the browser tests so that a changed page changes its picture."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "docs" / "images"
README = REPO / "README.md"  # where the pictures are shown
VIEWPORT: ViewportSize = {"width": 1000, "height": 700}
# Times on the pages (readable_utc's format) are shown as this one, so a picture taken a
# minute later is the same picture and re-running the tests leaves the files alone.
PINNED_TIME = "2026-01-15 09:30 UTC"
PAGE_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PictureChanged(UserWarning):
    """A README picture was rewritten because its page looks different now."""


_PIN_TIMES = """([pattern, pinned]) => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        node.nodeValue = node.nodeValue.replace(new RegExp(pattern, "g"), pinned);
    }
}"""


def picture_context(browser: Browser) -> BrowserContext:
    """A fresh browser profile with the pictures' fixed window size, scale, language and colours."""
    context = browser.new_context(
        viewport=VIEWPORT,
        device_scale_factor=1,
        locale="en-GB",
        timezone_id="UTC",
        color_scheme="light",
        reduced_motion="reduce",
    )
    context.set_default_timeout(15_000)
    return context


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's header chunk (IHDR, the first one after the signature)."""
    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write ``content`` unless the file holds it already; a reader never sees half a file."""
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return True


def capture(page: Page, name: str) -> Path:
    """Take the window as docs/images/NAME, with the page's times pinned; fails if no picture comes."""
    page.evaluate(_PIN_TIMES, [PAGE_TIME, PINNED_TIME])
    png = page.screenshot(type="png", animations="disabled", caret="hide")
    size = png_size(png)
    if size != (VIEWPORT["width"], VIEWPORT["height"]):
        raise AssertionError(f"the picture of {page.url} is {size[0]}x{size[1]}, not the window's size")
    path = IMAGES / name
    if write_if_changed(path, png):
        warnings.warn(
            PictureChanged(f"{path.relative_to(REPO)} changed: commit it with the page"), stacklevel=2
        )
    return path
