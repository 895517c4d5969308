"""The CDK app: ``cdk synth`` / ``cdk deploy`` run ``python -m infra.app`` from the repo root."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.settings import DeploymentSettings
from infra.stack import IdpStack


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, IdpStack]:
    """Create the app and its stack; the tests call this in-process with their own context."""
    app = App(context=dict(context) if context is not None else None, outdir=outdir)
    settings = DeploymentSettings.from_context(app.node)
    stack = IdpStack(
        app,
        settings.stack_name,
        settings=settings,
        stack_name=settings.stack_name,
        description="Serverless SAML identity provider",
        env=Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    # cdk-nag 3 is a policy-validation plugin: synthesis fails on any finding that is not
    # acknowledged, and the acknowledgement reasons are copied into the template metadata.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
