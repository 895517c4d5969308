"""The ``idp`` command: every admin action, against the local stack or a deployed stack.

Each noun (``idp user``, ``idp directory``, ...) is one module that registers its parser next
to its commands; each command's parser sets the function that runs it. The commands call the
same core functions as the admin console (``idp_core.accounts``, ``idp_core.apps``); they never
talk to DynamoDB directly. Bad input ends with one readable line on stderr and exit status 2,
never a traceback; an operation that fails ends with one line and exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from pynamodb.exceptions import PynamoDBException

from idp_cli import (
    adaptive,
    apps,
    audit,
    aws,
    devices,
    directories,
    doctor,
    groups,
    local,
    metadata,
    mfa,
    policy,
    signing_keys,
    tokens,
    users,
)
from idp_cli.terminal import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Invocation, Parser, UsageError
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import ConfigurationError
from idp_core.errors import IdpError

# The nouns in the order `idp --help` lists them.
NOUNS = (
    local,
    users,
    groups,
    apps,
    policy,
    mfa,
    tokens,
    adaptive,
    devices,
    directories,
    metadata,
    signing_keys,
    audit,
    doctor,
    aws,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="idp", description="Administer the serverless IdP.")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--local", action="store_true", help="act on the running local stack (idp local)")
    target.add_argument("--stack", metavar="NAME", help="act on the deployed CloudFormation stack NAME")
    parser.add_argument(
        "--region",
        metavar="REGION",
        help="the AWS region of --stack (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for noun in NOUNS:
        noun.add_parser(commands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
    clock: Clock | None = None,
    wait: Callable[[float], None] | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    stdin = stdin or sys.stdin
    try:
        return _run(
            argv,
            Invocation(
                argparse.Namespace(), out, err, stdin, clock=clock or SYSTEM_CLOCK, wait=wait or time.sleep
            ),
        )
    except UsageError as exc:
        err.write(f"idp: {exc}\n")
        return EXIT_USAGE
    except IdpError as exc:
        err.write(f"idp: {exc.message}\n")
        return EXIT_USAGE
    except ConfigurationError as exc:
        err.write(f"idp: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("idp: interrupted\n")
        return 130
    except Exception as exc:
        err.write(f"idp: {_describe_failure(exc)}\n")
        return EXIT_FAILURE


def _run(argv: Sequence[str] | None, terminal: Invocation) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help and --version exit through argparse.
        return int(exc.code or 0)
    status = args.run(dataclasses.replace(terminal, args=args))
    return EXIT_OK if status is None else int(status)


def _describe_failure(exc: Exception) -> str:
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found; configure a profile or use --local."
    if isinstance(exc, ClientError):
        return f"AWS refused the request: {exc.response['Error'].get('Message', exc)}"
    if isinstance(exc, BotoCoreError):
        return f"cannot reach AWS: {exc}"
    if isinstance(exc, PynamoDBException):
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return f"the database call failed: {cause}"
    return f"unexpected error ({type(exc).__name__}): {exc}"


if __name__ == "__main__":
    sys.exit(main())
