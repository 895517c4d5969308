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
from docs.diagrams.output import write_if_changed

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
    # The architecture needs no template: it is redrawn even when the dashboard cannot be.
    write(ARCHITECTURE_SVG, architecture.render())
    try:
        template = json.loads(options.template.read_text(encoding="utf-8"))
        write(DASHBOARD_SVG, dashboard.render(template))
    except OSError as exc:
        print(
            f"Cannot read the template {options.template}: {exc.strerror}; run make synth first.",
            file=sys.stderr,
        )
        return 2
    except (ValueError, dashboard.DashboardSourceError) as exc:
        print(f"Cannot draw the dashboard from {options.template}: {exc}.", file=sys.stderr)
        return 2
    return 0


def write(path: Path, svg: str) -> None:
    if write_if_changed(path, svg.encode("utf-8")):
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
