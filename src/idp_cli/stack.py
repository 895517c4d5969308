"""Which stack a command acts on, in which AWS region, and as whom.

``--local`` is the running local stack, found through the state file that ``idp local`` (or
``make dev``) writes; its embedded AWS's endpoint and keys enter the environment. ``--stack
NAME`` is a deployed stack, found by its CloudFormation outputs in the region ``region.py``
chooses. With neither, the settings come from the environment (as a function's do), or the
command says to choose.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.error import URLError
from urllib.request import urlopen

from botocore.exceptions import BotoCoreError, ClientError

from idp_cli.region import RegionChoice, choose_region
from idp_cli.terminal import Command, Invocation, Subcommands, UsageError, add_json_option
from idp_core.audit import AuditContext
from idp_core.config import (
    ENV_DATA_KEY_ID,
    ENV_NEXT_SIGNING_KEY_ID,
    ENV_PUBLIC_BASE_URL,
    ENV_SIGNING_KEY_ID,
    ConfigurationError,
    Settings,
    Tables,
)
from idp_core.models import bind_tables
from idp_local.state import StateError, read_state

# CloudFormation outputs of the deployed stack, and the setting each one provides.
STACK_OUTPUTS = {
    "ApiUrl": ENV_PUBLIC_BASE_URL,
    "SigningKeyId": ENV_SIGNING_KEY_ID,
    **{Tables.output_name(concern): Tables.env_name(concern) for concern in Tables.concerns()},
}
# Only the token commands need the data key; a stack without the output still serves the rest.
OPTIONAL_STACK_OUTPUTS = {"DataKeyId": ENV_DATA_KEY_ID, "NextSigningKeyId": ENV_NEXT_SIGNING_KEY_ID}


@dataclass(frozen=True)
class OnStack(Invocation):
    """An invocation whose stack is found and whose tables are bound."""

    settings: Settings
    # Who the audit events of the command name: the operating-system user running it.
    context: AuditContext

    def data_key_id(self) -> str:
        key_id = self.settings.data_key_id
        if not key_id:
            raise UsageError(
                "The data key is not known: redeploy the stack so that it has the DataKeyId output."
            )
        return key_id


# A command that acts on the stack's tables; ``None`` means success.
StackCommand = Callable[[OnStack], int | None]


def on_stack(command: StackCommand) -> Command:
    """``command``, run once the region is chosen, the stack found and its tables bound."""

    def run(invocation: Invocation) -> int | None:
        apply_region(invocation.args)
        settings = settings_for(invocation.args)
        bind_tables(settings.tables)
        context = AuditContext(actor=f"cli:{_os_user()}")
        return command(
            OnStack(
                args=invocation.args,
                out=invocation.out,
                err=invocation.err,
                stdin=invocation.stdin,
                settings=settings,
                context=context,
            )
        )

    return run


def add_command(
    actions: Subcommands,
    name: str,
    help: str,
    command: StackCommand,
    *,
    with_json: bool = False,
) -> argparse.ArgumentParser:
    """The parser of ``idp NOUN name``, which runs ``command`` on the stack."""
    parser = actions.add_parser(name, help=help)
    if with_json:
        add_json_option(parser)
    parser.set_defaults(run=on_stack(command))
    return parser


def apply_region(args: argparse.Namespace) -> RegionChoice:
    """The region ``--region`` or the AWS configuration chooses, made boto3's for this process."""
    if args.region is not None and args.local:
        raise UsageError("--region chooses where --stack is; the local stack's region is in its state file.")
    choice = choose_region(args.region)
    choice.apply(os.environ)
    return choice


def settings_for(args: argparse.Namespace) -> Settings:
    if args.local:
        return use_local()
    if args.stack:
        return use_stack(args.stack)
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise UsageError(
            "Choose where to act: --local for the local stack, or --stack NAME for a deployed stack."
        ) from exc


def use_local() -> Settings:
    try:
        state = read_state()
    except StateError as exc:
        raise UsageError(str(exc)) from exc
    _check_local_alive(state.base_url)
    os.environ.update(state.aws_env())
    return state.settings()


def _check_local_alive(base_url: str) -> None:
    try:
        with urlopen(f"{base_url}/_local/health", timeout=5):  # noqa: S310 - the loopback URL from the state file.
            return
    except (URLError, OSError, ValueError) as exc:
        raise UsageError(
            f"The local stack at {base_url} does not answer; start it with `idp local` or `make dev`."
        ) from exc


def use_stack(name: str) -> Settings:
    # boto3 (not only botocore) loads for --stack alone: it is a tenth of a second of every start.
    import boto3

    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        raise UsageError(
            f"Cannot read the CloudFormation stack {name!r}: {exc.response['Error']['Message']}"
        ) from exc
    except BotoCoreError as exc:
        raise UsageError(f"Cannot reach CloudFormation to read the stack {name!r}: {exc}") from exc
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}
    return settings_from_outputs(name, outputs)


def settings_from_outputs(name: str, outputs: Mapping[str, str]) -> Settings:
    """The settings of the stack ``name`` from its CloudFormation outputs."""
    missing = sorted(key for key in STACK_OUTPUTS if key not in outputs)
    if missing:
        raise UsageError(f"The stack {name!r} has no output {missing[0]}; is it a serverless-idp stack?")
    known = {**STACK_OUTPUTS, **OPTIONAL_STACK_OUTPUTS}
    return Settings.from_env({setting: outputs[key] for key, setting in known.items() if key in outputs})


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
