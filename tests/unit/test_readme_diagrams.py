"""The README's diagrams (issue 12 point 8): the architecture drawing is what its source draws
and names what the code deploys; the dashboard's drawing reads the synthesised dashboard and is
labelled as an illustration of the sign-in funnel."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from docs.diagrams import __main__ as make_diagrams
from docs.diagrams import architecture, dashboard
from docs.diagrams.__main__ import ARCHITECTURE_SVG, DASHBOARD_SVG
from idp_core.config import Tables
from idp_core.routing import DEFAULT_FUNCTION, PATH_FUNCTIONS
from idp_core.saml.xml import parse_xml
from tests.e2e.pictures import README

SVG_TEXT = "{http://www.w3.org/2000/svg}text"
# What the text diagram names beside the functions and tables; the picture must name them too.
SERVICES = (
    "API Gateway",
    "WAF",
    "DynamoDB",
    "KMS",
    "signing key",
    "data key",
    "SES",
    "SNS",
    "EventBridge",
    "LDAP",
    "signin.aws.amazon.com/saml",
    "AWS console",
)
FUNNEL = ("SignInPasswordAccepted", "SecondFactorAccepted", "AssertionIssued")


def svg_texts(path: Path) -> list[str]:
    """The text of every <text> of an SVG file, in document order (the file must parse)."""
    root = parse_xml(path.read_bytes())
    return ["".join(element.itertext()) for element in root.iter(SVG_TEXT)]


def text_diagram() -> str:
    section = README.read_text(encoding="utf-8").split("## What runs where", 1)[1]
    return section.split("```", 2)[1]


def test_the_committed_architecture_picture_is_what_its_source_draws() -> None:
    assert ARCHITECTURE_SVG.read_text(encoding="utf-8") == architecture.render(), (
        "docs/images/architecture.svg is out of date: run make diagrams"
    )


def test_the_architecture_names_every_function_with_the_paths_the_routing_table_gives_it() -> None:
    drawn = {function.name: function for function in architecture.FUNCTIONS}
    assert set(drawn) == {DEFAULT_FUNCTION, *PATH_FUNCTIONS.values()}
    for path, function in PATH_FUNCTIONS.items():
        assert path in " ".join(drawn[function].paths).split(), f"{path} is not drawn under {function}"
    texts, diagram = svg_texts(ARCHITECTURE_SVG), text_diagram()
    for function in drawn:
        assert f'Lambda "{function}"' in texts
        assert f'Lambda "{function}"' in diagram


def test_the_picture_and_the_text_diagram_name_every_table_and_service() -> None:
    picture = " ".join(svg_texts(ARCHITECTURE_SVG))
    diagram = " ".join(text_diagram().split())  # the text diagram wraps names across lines
    tables = [field.name.replace("_", " ") for field in dataclasses.fields(Tables)]
    for name in (*tables, *SERVICES):
        assert name in picture, f"the architecture picture does not name {name!r}"
        assert name in diagram, f"the README's text diagram does not name {name!r}"


def test_the_dashboard_picture_is_a_labelled_illustration_of_the_funnel_and_latencies() -> None:
    texts = svg_texts(DASHBOARD_SVG)
    assert "layout illustration" in texts[0]
    assert any("not a screenshot, and no data" in text for text in texts)
    funnel_widget = texts.index("Sign-in funnel (totals over the time range)")
    positions = [texts.index(name, funnel_widget) for name in FUNNEL]
    assert positions == sorted(positions), "the funnel's steps are not drawn in order"
    latency = texts.index("API Gateway latency (ms)")
    assert [text for text in texts[latency:] if text.startswith("API p")][:3] == [
        "API p50",
        "API p90",
        "API p99",
    ]
    for function in architecture.FUNCTIONS:
        assert any(text.startswith(f"{function.name} function") for text in texts)


LATENCY_WIDGET = {
    "type": "metric",
    "x": 12,
    "y": 0,
    "width": 12,
    "height": 6,
    "properties": {
        "view": "timeSeries",
        "title": "Latency",
        "region": "REGION",
        "metrics": [["AWS/ApiGateway", "Latency", "ApiName", "Idp", {"label": "API p99", "stat": "p99"}]],
    },
}


def cdk_dashboard(body: dict[str, Any]) -> dict[str, Any]:
    """A template with a dashboard as CDK writes it: the body is an Fn::Join around the region's token."""
    first, *rest = json.dumps(body).split("REGION")
    parts: list[Any] = [first]
    for piece in rest:
        parts += [{"Ref": "AWS::Region"}, piece]
    properties = {"DashboardName": "Idp", "DashboardBody": {"Fn::Join": ["", parts]}}
    return {"Resources": {"Dashboard": {"Type": dashboard.DASHBOARD_TYPE, "Properties": properties}}}


def test_the_dashboard_drawing_reads_the_widgets_of_a_synthesised_template() -> None:
    body = {
        "widgets": [
            {
                "type": "metric",
                "x": 0,
                "y": 0,
                "width": 12,
                "height": 3,
                "properties": {
                    "view": "singleValue",
                    "title": "Funnel",
                    "region": "REGION",
                    "metrics": [
                        [{"label": "Password accepted", "expression": "FILL(a0, 0) + FILL(a1, 0)"}],
                        [
                            "ServerlessIdp",
                            "SignInPasswordAccepted",
                            "service",
                            "sso",
                            {"id": "a0", "visible": False, "stat": "Sum"},
                        ],
                        [
                            "ServerlessIdp",
                            "SignInPasswordAccepted",
                            "service",
                            "otp",
                            {"id": "a1", "visible": False, "stat": "Sum"},
                        ],
                    ],
                },
            },
            LATENCY_WIDGET,
        ]
    }
    name, read = dashboard.dashboard_from_template(cdk_dashboard(body))
    assert name == "Idp"
    assert read["widgets"][0]["properties"]["region"] == "${AWS::Region}"
    funnel, latency = dashboard.widgets(read)
    assert (funnel.x, funnel.y, funnel.width, funnel.height, funnel.view) == (0, 0, 12, 3, "singleValue")
    assert funnel.series == (
        dashboard.Series("Password accepted", "SignInPasswordAccepted · Sum across service"),
    )
    assert latency.series == (dashboard.Series("API p99", "AWS/ApiGateway Latency · p99"),)
    svg = dashboard.render(cdk_dashboard(body))
    assert "Password accepted" in svg and "SignInPasswordAccepted" in svg and "API p99" in svg


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ({"Resources": {}}, "the template has 0 CloudWatch dashboards, not one"),
        (
            {
                "Resources": {
                    "D": {
                        "Type": dashboard.DASHBOARD_TYPE,
                        "Properties": {"DashboardBody": '{"widgets": []}'},
                    }
                }
            },
            "the dashboard has no widgets",
        ),
        (
            {
                "Resources": {
                    "D": {
                        "Type": dashboard.DASHBOARD_TYPE,
                        "Properties": {"DashboardBody": '{"widgets": [{"type": "text", "x": 0, "y": 0}]}'},
                    }
                }
            },
            "a 'text' widget is not drawn yet; add it to this module",
        ),
    ],
)
def test_a_dashboard_that_cannot_be_drawn_is_refused_with_the_reason(
    template: dict[str, Any], reason: str
) -> None:
    with pytest.raises(dashboard.DashboardSourceError, match=f"^{re.escape(reason)}$"):
        dashboard.render(template)


def test_make_diagrams_draws_both_and_says_why_a_dashboard_cannot_be_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(make_diagrams, "ARCHITECTURE_SVG", tmp_path / "architecture.svg")
    monkeypatch.setattr(make_diagrams, "DASHBOARD_SVG", tmp_path / "dashboard.svg")
    synthesised = tmp_path / "with-dashboard.json"
    synthesised.write_text(json.dumps(cdk_dashboard({"widgets": [LATENCY_WIDGET]})), encoding="utf-8")
    assert make_diagrams.main(["--template", str(synthesised)]) == 0
    assert (tmp_path / "architecture.svg").read_text(encoding="utf-8") == architecture.render()
    assert "AWS/ApiGateway Latency · p99" in (tmp_path / "dashboard.svg").read_text(encoding="utf-8")

    (tmp_path / "dashboard.svg").unlink()
    without = tmp_path / "without-dashboard.json"
    without.write_text('{"Resources": {}}', encoding="utf-8")
    assert make_diagrams.main(["--template", str(without)]) == 2
    assert capsys.readouterr().err == (
        f"Cannot draw the dashboard from {without}: the template has 0 CloudWatch dashboards, not one.\n"
    )
    assert not (tmp_path / "dashboard.svg").exists()
    assert make_diagrams.main(["--template", str(tmp_path / "missing.json")]) == 2
    assert "run make synth first" in capsys.readouterr().err
