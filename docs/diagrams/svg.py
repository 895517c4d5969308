"""A small SVG drawing: boxes with a title and lines of text, lines, arrows and labels.

The README's diagrams are drawn by hand-placed coordinates rather than by a layout engine
(Graphviz and the like), so that the output is the same bytes on every machine and a test can
check the committed file against its source; SVG is built with ElementTree, never by string
templates, so every text is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "Helvetica, Arial, 'Liberation Sans', sans-serif"
MONO_FONT = "Menlo, Consolas, 'DejaVu Sans Mono', monospace"

# Colours of the AWS architecture icons' categories, so each box reads as its kind of service.
KINDS = {
    "person": ("#ffffff", "#232f3e"),
    "network": ("#f4efff", "#8c4fff"),
    "security": ("#fdecee", "#dd344c"),
    "compute": ("#fff4e8", "#ed7100"),
    "database": ("#f9ecfb", "#c925d1"),
    "integration": ("#fdeaf3", "#e7157b"),
    "external": ("#eef4fb", "#147eba"),
    "widget": ("#ffffff", "#879596"),
}

STYLE = f"""
text {{ font-family: {FONT}; fill: #16191f; }}
.title {{ font-size: 13px; font-weight: bold; }}
.line {{ font-size: 11.5px; }}
.mono {{ font-family: {MONO_FONT}; font-size: 10.5px; }}
.small {{ font-size: 10.5px; fill: #545b64; }}
.label {{ font-size: 10.5px; fill: #545b64; paint-order: stroke; stroke: #ffffff; stroke-width: 4px; }}
.caption {{ font-size: 12px; font-style: italic; fill: #545b64; }}
.heading {{ font-size: 15px; font-weight: bold; }}
.edge {{ stroke: #545b64; stroke-width: 1.4; fill: none; }}
.tap {{ stroke: #545b64; stroke-width: 1.4; fill: none; }}
.frame {{ stroke: #879596; stroke-width: 1.2; stroke-dasharray: 6 4; fill: none; }}
"""


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def middle_y(self) -> float:
        return self.y + self.height / 2

    @property
    def center_x(self) -> float:
        return self.x + self.width / 2


def _number(value: float) -> str:
    """Coordinates as short, stable text (no float noise such as 12.000000001)."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


class Drawing:
    def __init__(
        self,
        width: float,
        height: float,
        *,
        title: str,
        description: str,
        extra_style: str = "",
        background: str = "#ffffff",
    ) -> None:
        self.root = ET.Element(
            "svg",
            {
                "xmlns": SVG_NS,
                "width": _number(width),
                "height": _number(height),
                "viewBox": f"0 0 {_number(width)} {_number(height)}",
                "role": "img",
                "aria-labelledby": "title desc",
            },
        )
        ET.SubElement(self.root, "title", {"id": "title"}).text = title
        ET.SubElement(self.root, "desc", {"id": "desc"}).text = description
        ET.SubElement(self.root, "style").text = STYLE + extra_style
        defs = ET.SubElement(self.root, "defs")
        marker = ET.SubElement(
            defs,
            "marker",
            {
                "id": "arrow",
                "viewBox": "0 0 10 10",
                "refX": "9",
                "refY": "5",
                "markerWidth": "7",
                "markerHeight": "7",
                "orient": "auto-start-reverse",
            },
        )
        ET.SubElement(marker, "path", {"d": "M 0 0 L 10 5 L 0 10 z", "fill": "#545b64"})
        ET.SubElement(
            self.root,
            "rect",
            {"x": "0", "y": "0", "width": _number(width), "height": _number(height), "fill": background},
        )

    def rect(self, box: Box, *, fill: str, stroke: str, radius: float = 6, dashed: bool = False) -> None:
        attributes = {
            "x": _number(box.x),
            "y": _number(box.y),
            "width": _number(box.width),
            "height": _number(box.height),
            "rx": _number(radius),
            "fill": fill,
            "stroke": stroke,
            "stroke-width": "1.4",
        }
        if dashed:
            attributes["stroke-dasharray"] = "6 4"
        ET.SubElement(self.root, "rect", attributes)

    def text(self, x: float, y: float, content: str, css_class: str, *, anchor: str = "start") -> None:
        attributes = {"x": _number(x), "y": _number(y), "class": css_class}
        if anchor != "start":
            attributes["text-anchor"] = anchor
        ET.SubElement(self.root, "text", attributes).text = content

    def box(
        self,
        box: Box,
        kind: str,
        title: str,
        lines: Sequence[str] = (),
        *,
        mono: Sequence[str] = (),
        centred: bool = False,
    ) -> Box:
        """A service as a rounded box: its name in bold, then plain lines, then monospaced ones."""
        fill, stroke = KINDS[kind]
        self.rect(box, fill=fill, stroke=stroke)
        # A coloured band on the left marks the kind, as the AWS icons' colours do.
        self.rect(Box(box.x, box.y, 5, box.height), fill=stroke, stroke=stroke, radius=2)
        x, anchor = (box.center_x, "middle") if centred else (box.x + 14, "start")
        y = box.y + 19
        self.text(x, y, title, "title", anchor=anchor)
        for line in lines:
            y += 15
            self.text(x, y, line, "line", anchor=anchor)
        for line in mono:
            y += 14
            self.text(x, y, line, "mono", anchor=anchor)
        return box

    def frame(self, box: Box) -> None:
        """A dashed boundary (an account, a shared layer); name it with ``label``."""
        ET.SubElement(
            self.root,
            "rect",
            {
                "x": _number(box.x),
                "y": _number(box.y),
                "width": _number(box.width),
                "height": _number(box.height),
                "rx": "10",
                "class": "frame",
            },
        )

    def label(self, x: float, y: float, content: str) -> None:
        """Small text haloed in white: drawn after the lines that cross it, it stays readable."""
        self.text(x, y, content, "label")

    def path(
        self, points: Iterable[tuple[float, float]], *, arrow: bool = True, css_class: str = "edge"
    ) -> None:
        coordinates = " ".join(f"{_number(x)},{_number(y)}" for x, y in points)
        attributes = {"points": coordinates, "class": css_class}
        if arrow:
            attributes["marker-end"] = "url(#arrow)"
        ET.SubElement(self.root, "polyline", attributes)

    def dot(self, x: float, y: float, colour: str = "#545b64") -> None:
        ET.SubElement(self.root, "circle", {"cx": _number(x), "cy": _number(y), "r": "3.5", "fill": colour})

    def to_svg(self) -> str:
        ET.indent(self.root, space=" ")
        return ET.tostring(self.root, encoding="unicode") + "\n"
