"""What every ``idp`` command shares at the terminal: its parser, its output (tables, JSON,
details), secrets read from standard input, and the exit codes.

Bad input is a ``UsageError``: one sentence on stderr and exit 2, never a traceback. A
failure of the operation itself (AWS refused, a directory import already running) exits 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO, TypeAlias

from idp_core.clock import SYSTEM_CLOCK, Clock

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# The sub-command list of a parser (``parser.add_subparsers()``); a generic only to typeshed.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UsageError(Exception):
    """Bad command-line input; the message is one sentence for the user."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (not the usage block) and never exits by itself."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


@dataclass(frozen=True)
class Invocation:
    """One run of a command: its parsed arguments and the terminal it talks to."""

    args: argparse.Namespace
    out: TextIO
    err: TextIO
    stdin: TextIO
    # What "now" is for a command that judges time itself (tests move it; see idp_core.clock).
    clock: Clock = field(default=SYSTEM_CLOCK, kw_only=True)
    # How a command that polls waits between two tries (tests move their clock instead).
    wait: Callable[[float], None] = field(default=time.sleep, kw_only=True)


# What each command's parser sets as ``run``; ``None`` means success.
Command = Callable[[Invocation], int | None]


def add_noun(commands: Subcommands, name: str, help: str) -> Subcommands:
    """``idp NAME ACTION``: a command whose actions are sub-commands, one of which is required."""
    actions: Subcommands = commands.add_parser(name, help=help).add_subparsers(
        dest="action", metavar="ACTION", parser_class=Parser
    )
    actions.required = True
    return actions


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


# ---------------------------------------------------------------- output


def table(out: TextIO, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    text_rows = [[cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in text_rows:
        widths = [max(width, len(text)) for width, text in zip(widths, row, strict=True)]
    for row in [list(headers), *text_rows]:
        out.write(
            "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )
    if not text_rows:
        out.write("(none)\n")


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(item) for item in value) or "-"
    return str(value)


def timestamp(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def print_json(out: TextIO, payload: object) -> None:
    out.write(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# A column of ``print_listing``: the key of the items' field, or a function of the item.
Column: TypeAlias = str | Callable[[Mapping[str, Any]], object]


def print_listing(
    invocation: Invocation, items: Sequence[Mapping[str, Any]], columns: Mapping[str, Column]
) -> None:
    """The items as JSON with ``--json``, else as a table of these columns (by their header)."""
    if invocation.args.json:
        print_json(invocation.out, items)
        return
    table(
        invocation.out,
        list(columns),
        [
            [column(item) if callable(column) else item[column] for column in columns.values()]
            for item in items
        ],
    )


def details(out: TextIO, fields: Mapping[str, object]) -> None:
    width = max(len(name) for name in fields)
    for name, value in fields.items():
        out.write(f"{name.ljust(width)}  {cell(value)}\n")


# ---------------------------------------------------------------- input


def read_secret(invocation: Invocation, option: str = "--password-stdin", prompt: str = "Password") -> str:
    """The secret from standard input: a prompt without echo on a terminal, else the first line."""
    if invocation.stdin.isatty():
        return getpass.getpass(f"{prompt}: ", stream=invocation.err)
    text = invocation.stdin.read()
    # Only the line break a shell or ``echo`` adds is removed; other whitespace is part of the password.
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if "\n" in text:
        raise UsageError(f"{option} expects a single line on standard input.")
    if not text:
        raise UsageError(f"{option} read an empty password from standard input.")
    return text
