"""A picture of the CloudWatch dashboard's layout, drawn from the dashboard body in the synthesised
stack template: the same widgets, places, titles and metrics as the deployed dashboard, and no data.

There is no CloudWatch here to take a screenshot of, so the picture says plainly that it is a
layout illustration; the values are left empty rather than invented.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from docs.diagrams.svg import Box, Drawing

DASHBOARD_TYPE = "AWS::CloudWatch::Dashboard"
GRID_COLUMNS = 24  # CloudWatch's dashboard grid is 24 units wide
COLUMN, ROW, MARGIN, HEADER = 40, 44, 20, 78
# CloudWatch's default colours for a graph's first series, in order.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
DEFAULT_STAT = "Average"
TITLE_CHARACTER_WIDTH = 6.4  # a generous average for 13px bold Helvetica or Arial, so titles never overflow


class DashboardSourceError(Exception):
    """The template holds no dashboard this module can draw; the message says what is missing."""


@dataclass(frozen=True)
class Series:
    label: str
    source: str  # the metric behind the line or number, as an operator would look it up


@dataclass(frozen=True)
class Widget:
    x: int
    y: int
    width: int
    height: int
    view: str
    title: str
    series: tuple[Series, ...]


def _token_placeholder(token: Mapping[str, Any]) -> str:
    """A CloudFormation function (the region, a function's name) as text such as ${AWS::Region}."""
    if "Ref" in token:
        return f"${{{token['Ref']}}}"
    if "Fn::GetAtt" in token:
        return "${" + ".".join(str(part) for part in token["Fn::GetAtt"]) + "}"
    raise DashboardSourceError(f"the dashboard body uses {sorted(token)}, which cannot be read here")


def dashboard_from_template(template: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one dashboard of a synthesised template: its name and its body (tokens as placeholders)."""
    dashboards = [
        resource["Properties"]
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == DASHBOARD_TYPE
    ]
    if len(dashboards) != 1:
        raise DashboardSourceError(f"the template has {len(dashboards)} CloudWatch dashboards, not one")
    properties = dashboards[0]
    body = properties["DashboardBody"]
    if isinstance(body, Mapping):
        separator, parts = body["Fn::Join"]
        body = separator.join(part if isinstance(part, str) else _token_placeholder(part) for part in parts)
    name = properties.get("DashboardName")
    return (name if isinstance(name, str) else "the stack's dashboard"), json.loads(body)


def _metric_parts(entry: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    if entry and isinstance(entry[-1], Mapping):
        return list(entry[:-1]), dict(entry[-1])
    return list(entry), {}


def _series(properties: Mapping[str, Any]) -> tuple[Series, ...]:
    metrics: dict[str, tuple[str, dict[str, str], str]] = {}
    visible: list[tuple[list[Any], dict[str, Any]]] = []
    default_stat = str(properties.get("stat", DEFAULT_STAT))
    for entry in properties.get("metrics", []):
        parts, options = _metric_parts(entry)
        if "..." in parts or "." in parts:
            raise DashboardSourceError("the dashboard uses CloudWatch's repeat shorthand, which is not drawn")
        if parts:
            _namespace, name, *dimensions = parts
            stat = str(options.get("stat", default_stat))
            metrics[str(options.get("id", f"m{len(metrics)}"))] = (
                str(name),
                dict(zip(dimensions[::2], dimensions[1::2], strict=True)),
                stat,
            )
        if options.get("visible", True):
            visible.append((parts, options))
    series = []
    for parts, options in visible:
        if parts:
            namespace, name = parts[0], parts[1]
            stat = options.get("stat", default_stat)
            series.append(Series(str(options.get("label", name)), f"{namespace} {name} · {stat}"))
            continue
        expression = str(options["expression"])
        used = [metrics[term] for term in re.findall(r"\b\w+\b", expression) if term in metrics]
        if not used:
            raise DashboardSourceError(f"the expression {expression!r} names no metric of its widget")
        names = list(dict.fromkeys(name for name, _, _ in used))
        stats = list(dict.fromkeys(stat for _, _, stat in used))
        varying = sorted(
            {key for _, dims, _ in used for key in dims if len({d.get(key) for _, d, _ in used}) > 1}
        )
        across = f" across {', '.join(varying)}" if varying else ""
        series.append(
            Series(str(options.get("label", expression)), f"{' + '.join(names)} · {'/'.join(stats)}{across}")
        )
    return tuple(series)


def widgets(body: Mapping[str, Any]) -> list[Widget]:
    drawn = []
    for widget in body.get("widgets", []):
        if widget.get("type") != "metric":
            raise DashboardSourceError(
                f"a {widget.get('type')!r} widget is not drawn yet; add it to this module"
            )
        properties = widget["properties"]
        drawn.append(
            Widget(
                x=int(widget["x"]),
                y=int(widget["y"]),
                width=int(widget["width"]),
                height=int(widget["height"]),
                view=str(properties.get("view", "timeSeries")),
                title=str(properties.get("title", "")),
                series=_series(properties),
            )
        )
    if not drawn:
        raise DashboardSourceError("the dashboard has no widgets")
    return drawn


def _widget_box(widget: Widget) -> Box:
    return Box(
        MARGIN + widget.x * COLUMN,
        HEADER + widget.y * ROW,
        widget.width * COLUMN - 8,
        widget.height * ROW - 8,
    )


def _title(drawing: Drawing, widget: Widget, box: Box) -> float:
    """The widget's title, wrapped when the widget is too narrow for it; returns where it ends."""
    lines = textwrap.wrap(widget.title, width=max(int((box.width - 28) / TITLE_CHARACTER_WIDTH), 10))
    for index, line in enumerate(lines):
        drawing.text(box.x + 14, box.y + 20 + 16 * index, line, "title")
    return box.y + 20 + 16 * (len(lines) - 1)


def _single_value(drawing: Drawing, widget: Widget, box: Box, top: float) -> None:
    cell = box.width / max(len(widget.series), 1)
    for index, series in enumerate(widget.series):
        x = box.x + index * cell + 14
        drawing.text(x, top + 24, series.label, "line")
        drawing.text(x, top + 56, "\N{EM DASH}", "value")  # a number's place, left empty
        for number, part in enumerate(series.source.split(" · ")):
            drawing.text(x, top + 78 + 13 * number, part, "small")


def _graph(drawing: Drawing, widget: Widget, box: Box, top: float) -> None:
    legend_top = box.bottom - 10 - 26 * len(widget.series)
    plot = Box(box.x + 14, top + 14, box.width - 28, legend_top - top - 24)
    for step in range(4):
        y = plot.y + step * plot.height / 3
        drawing.path([(plot.x, y), (plot.right, y)], arrow=False, css_class="grid")
    drawing.path(
        [(plot.x, plot.y), (plot.x, plot.bottom), (plot.right, plot.bottom)], arrow=False, css_class="axis"
    )
    drawing.text(
        plot.center_x, plot.middle_y + 4, "no data in this illustration", "placeholder", anchor="middle"
    )
    for index, series in enumerate(widget.series):
        y = legend_top + 26 * index
        drawing.rect(
            Box(box.x + 14, y + 3, 10, 10), fill=PALETTE[index % len(PALETTE)], stroke="none", radius=1
        )
        drawing.text(box.x + 30, y + 12, series.label, "line")
        drawing.text(box.x + 30, y + 24, series.source, "small")


def render(template: Mapping[str, Any]) -> str:
    name, body = dashboard_from_template(template)
    drawn = widgets(body)
    rows = max(widget.y + widget.height for widget in drawn)
    width = 2 * MARGIN + GRID_COLUMNS * COLUMN
    height = HEADER + rows * ROW + MARGIN
    titles = "; ".join(widget.title for widget in drawn)
    drawing = Drawing(
        width,
        height,
        title=f"Layout illustration of the CloudWatch dashboard {name}",
        description=(
            "A layout illustration, not a screenshot: the dashboard's widgets in their places with their "
            f"titles and metrics, drawn from the synthesised stack template, without data. Widgets: {titles}."
        ),
        extra_style=DASHBOARD_STYLE,
        background="#f2f3f3",
    )
    drawing.text(MARGIN, 30, f"CloudWatch dashboard “{name}”: layout illustration", "heading")
    start = body.get("start")
    drawing.text(
        MARGIN,
        52,
        "Drawn from the widgets of the synthesised stack template; not a screenshot, and no data: "
        "CloudWatch fills in the numbers and lines.",
        "caption",
    )
    if isinstance(start, str):
        drawing.text(MARGIN, 68, f"Default time range: {start} (ISO 8601, back from now).", "small")
    for widget in drawn:
        box = _widget_box(widget)
        drawing.rect(box, fill="#ffffff", stroke="#d5dbdb", radius=2)
        top = _title(drawing, widget, box)
        if widget.view == "singleValue":
            _single_value(drawing, widget, box, top)
        else:
            _graph(drawing, widget, box, top)
    return drawing.to_svg()


DASHBOARD_STYLE = """
.value { font-size: 28px; fill: #879596; }
.grid { stroke: #eaeded; stroke-width: 1; fill: none; }
.axis { stroke: #aab7b8; stroke-width: 1; fill: none; }
.placeholder { font-size: 11px; fill: #aab7b8; font-style: italic; }
"""
