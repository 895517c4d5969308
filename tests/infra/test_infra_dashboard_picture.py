"""The README's picture of the CloudWatch dashboard is drawn from the dashboard the stack
synthesises (issue 12 point 8), so a change to its widgets fails here until it is redrawn."""

from __future__ import annotations

from docs.diagrams import dashboard
from docs.diagrams.__main__ import DASHBOARD_SVG
from tests.infra.conftest import Synthesis


def test_the_readme_dashboard_picture_is_drawn_from_the_synthesised_dashboard(synthesis: Synthesis) -> None:
    assert DASHBOARD_SVG.read_text(encoding="utf-8") == dashboard.render(synthesis.template), (
        "docs/images/dashboard.svg does not show the stack's dashboard: run make diagrams"
    )
