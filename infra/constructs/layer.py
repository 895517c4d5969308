"""The Lambda layer shared by the functions: third-party wheels plus the core package."""

from __future__ import annotations

from aws_cdk import Annotations
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.layer_build import build_layer, bytecode_note, find_bytecode_compiler

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64


class CoreLayer(Construct):
    """The layer, with bytecode for the runtime's Python when the build can compile it; the
    synth output says once when it cannot (the functions' code is built the same way)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        compiler = find_bytecode_compiler()
        if compiler is None:
            Annotations.of(self).add_info(bytecode_note(compiler))
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(build_layer(compiler=compiler))),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="idp_core and its third-party dependencies for Python 3.13 on arm64",
        )
