"""Render the README's diagrams into docs/images, rewriting a file only when its drawing changed.

    python -m docs.diagrams [--template cdk.out/ServerlessIdp.template.json]

The architecture comes from docs/diagrams/architecture.py; the dashboard's layout from the
CloudWatch dashboard in a synthesised stack template (``make diagrams`` synthesises it first).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from docs.diagrams import architecture, dashboard

IMAGES = Path(__file__).resolve().parents[1] / "images"
ARCHITECTURE_SVG = IMAGES / "architecture.svg"
DASHBOARD_SVG = IMAGES / "dashboard.svg"
DEFAULT_TEMPLATE = Path("cdk.out") / "ServerlessIdp.template.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m docs.diagrams", description="Render the README's diagrams into docs/images."
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=DEFAULT_TEMPLATE,
        help="a synthesised stack template with the dashboard (default: %(default)s, written by make synth)",
    )
    options = parser.parse_args(argv)
    try:
        template = json.loads(options.template.read_text(encoding="utf-8"))
        drawings = {ARCHITECTURE_SVG: architecture.render(), DASHBOARD_SVG: dashboard.render(template)}
    except OSError as exc:
        print(
            f"Cannot read the template {options.template}: {exc.strerror}; run make synth first.",
            file=sys.stderr,
        )
        return 2
    except (ValueError, dashboard.DashboardSourceError) as exc:
        print(f"Cannot draw the dashboard from {options.template}: {exc}.", file=sys.stderr)
        return 2
    for path, svg in drawings.items():
        if not path.exists() or path.read_text(encoding="utf-8") != svg:
            path.write_text(svg, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
