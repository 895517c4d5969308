"""Pictures of pages for the README, taken by the browser tests so that a changed page changes its picture."""

from __future__ import annotations

import base64
import struct
import warnings
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from docs.diagrams.output import write_if_changed

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "docs" / "images"
README = REPO / "README.md"  # where the pictures are shown
VIEWPORT: ViewportSize = {"width": 1000, "height": 700}
# Times on the pages (readable_utc's format) are shown as this one, so a picture taken a
# minute later is the same picture and re-running the tests leaves the files alone.
PINNED_TIME = "2026-01-15 09:30 UTC"
PAGE_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chromium's anti-aliasing of the same page differs from run to run by a unit or two in a few
# pixels; a picture that differs by no more than this is the same picture and is not rewritten.
RENDERING_NOISE = 2


class PictureChanged(UserWarning):
    """A README picture was rewritten because its page looks different now."""


_PIN_TIMES = """([pattern, pinned]) => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        node.nodeValue = node.nodeValue.replace(new RegExp(pattern, "g"), pinned);
    }
}"""


# The largest difference of any colour channel of any pixel of two PNG images, decoded by
# Chromium itself (255 when their sizes differ).
_LARGEST_DIFFERENCE = """async ([first, second]) => {
    const pixels = async (base64) => {
        const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
        const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
        const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
        const drawing = canvas.getContext("2d");
        drawing.drawImage(bitmap, 0, 0);
        return drawing.getImageData(0, 0, bitmap.width, bitmap.height).data;
    };
    const [a, b] = await Promise.all([pixels(first), pixels(second)]);
    if (a.length !== b.length) return 255;
    let largest = 0;
    for (let index = 0; index < a.length; index += 1) {
        largest = Math.max(largest, Math.abs(a[index] - b[index]));
    }
    return largest;
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


def largest_difference(context: BrowserContext, first: bytes, second: bytes) -> int:
    """How far apart two PNG pictures are: the largest change of one colour channel of one pixel."""
    if first == second:
        return 0
    blank = context.new_page()  # about:blank, out of reach of the pages' Content-Security-Policy
    try:
        encoded = [base64.b64encode(picture).decode("ascii") for picture in (first, second)]
        return int(blank.evaluate(_LARGEST_DIFFERENCE, encoded))
    finally:
        blank.close()


def capture(page: Page, name: str) -> Path:
    """Take the window as docs/images/NAME, with the page's times pinned; fails if no picture comes."""
    page.evaluate(_PIN_TIMES, [PAGE_TIME, PINNED_TIME])
    png = page.screenshot(type="png", animations="disabled", caret="hide")
    size = png_size(png)
    if size != (VIEWPORT["width"], VIEWPORT["height"]):
        raise AssertionError(f"the picture of {page.url} is {size[0]}x{size[1]}, not the window's size")
    path = IMAGES / name
    if path.exists() and largest_difference(page.context, path.read_bytes(), png) <= RENDERING_NOISE:
        return path
    if write_if_changed(path, png):
        warnings.warn(PictureChanged(f"{path} changed: commit it with the page"), stacklevel=2)
    return path
