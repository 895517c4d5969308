"""The CDK app command of ``cdk.json``: sets up what synthesis needs, then runs ``infra.app``.

``npx cdk bootstrap``, ``npx cdk synth`` and ``npx cdk deploy`` run this from a fresh clone
as well as ``make``: it installs the pinned uv (``get_uv``), syncs the deploy environment
(the run-time packages and the ``deploy`` group: the CDK libraries and cdk-nag, none of the
test tools) without removing what a developer's full environment has, and runs the app in
it. Standard library only, valid on Python 3.8+.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from get_uv import REPO_ROOT, SetupError, install

# `--inexact` keeps the test packages of a developer's environment; UV_FROZEN-like
# `--frozen` installs exactly what uv.lock says and never re-resolves.
DEPLOY_SYNC = ["sync", "--frozen", "--no-dev", "--group", "deploy", "--inexact", "--quiet"]


def deploy_environment() -> dict[str, str]:
    """The environment for uv and the app: the private uv and the pinned Node first on PATH
    (the layer build calls uv; jsii starts the Node it finds)."""
    env = dict(os.environ)
    first = [str(REPO_ROOT / ".tools" / "bin"), str(REPO_ROOT / "node_modules" / ".bin")]
    env["PATH"] = os.pathsep.join([*first, env.get("PATH", "")])
    return env


def main(argv: list[str]) -> int:
    """``--setup-only``: prepare the environment and stop (``make synth``/``deploy`` do this
    before the CDK CLI runs the app, so the CLI's output is not mixed with uv's)."""
    try:
        uv = install()
    except SetupError as exc:
        print(f"cdk_app: {exc}", file=sys.stderr)
        return 1
    env = deploy_environment()
    synced = subprocess.run([str(uv), *DEPLOY_SYNC], cwd=REPO_ROOT, env=env, check=False)  # noqa: S603
    if synced.returncode != 0:
        print("cdk_app: `uv sync` of the deploy environment failed (see above)", file=sys.stderr)
        return synced.returncode
    if "--setup-only" in argv:
        return 0
    run_app = [str(uv), "run", "--frozen", "--no-sync", "python", "-m", "infra.app"]
    app = subprocess.run(run_app, cwd=REPO_ROOT, env=env, check=False)  # noqa: S603 - our own uv.
    return app.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
