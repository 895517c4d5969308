"""`make bench`: the measurements of BENCHMARKS.md, printed as a table and written to
bench/results/latest.json. Figures are ratios against a baseline measured in the same
run, or counts that do not depend on the machine's speed."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import (
    cold_start,
    cpu,
    deployment_size,
    enumeration,
    ldap_import,
    passkey,
    passwords,
    saml_signing,
    signin,
    sp_signin,
    totp_verify,
    user_listing,
)

RESULTS = Path(__file__).parent / "results" / "latest.json"


def main() -> int:
    # The handlers run in this process here: their metrics (EMF on stdout) would drown the table.
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    started = time.time()
    sections = [
        ("cold start", cold_start.run),
        ("SAML build + sign", saml_signing.run),
        ("password verify", passwords.run),
        ("TOTP verify", totp_verify.run),
        ("full sign-in", signin.run),
        ("passkey sign-in", passkey.run),
        ("enumeration timing", enumeration.run),
        ("CPU per sign-in", cpu.run),
        ("LDAP import", ldap_import.run),
        ("deployment size", deployment_size.run),
        ("users list", user_listing.run),
        ("SP-initiated sign-in", sp_signin.run),
    ]
    results: dict[str, object] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
    rows: list[tuple[str, str, str, str]] = []
    for name, run in sections:
        print(f"... {name}", file=sys.stderr, flush=True)
        outcome = run()
        results[name] = outcome["figures"]
        rows.extend(outcome["rows"])
    results["seconds"] = round(time.time() - started, 1)
    width = [max(len(row[i]) for row in [*rows, ("what", "figure", "target", "ok")]) for i in range(4)]
    header = ("what", "figure", "target", "ok")
    for row in [header, tuple("-" * w for w in width), *rows]:
        print("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(
        f"\nwritten to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
