"""The `idp` CLI's commands and options, compared with the list in cli_surface.json.

The list was taken from the CLI before it was split into one module per noun, so the split
provably lost no command, option, default, choice or help text, and neither may a later
change by accident. After a deliberate change to the CLI, regenerate the list with
`uv run python -m tests.unit.test_cli_surface` and review its diff.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from idp_cli.main import build_parser
from idp_core.directories.settings import SWITCHES

SURFACE_FILE = Path(__file__).with_name("cli_surface.json")


def surface(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Every command of ``parser``, its sub-commands in order, by its full name ("idp user add")."""
    commands: dict[str, Any] = {}
    _walk(parser, commands)
    return commands


def _walk(parser: argparse.ArgumentParser, commands: dict[str, Any]) -> None:
    entry: dict[str, Any] = {
        "description": parser.description,
        "options": [],
        "exclusive_groups": [
            {"required": group.required, "options": [_name(action) for action in group._group_actions]}
            for group in parser._mutually_exclusive_groups
        ],
    }
    commands[parser.prog] = entry
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue  # argparse's own -h on every command
        if isinstance(action, argparse._SubParsersAction):
            entry["command_required"] = action.required
            entry["commands"] = {choice.dest: choice.help for choice in action._choices_actions}
            # Only a command listed with its help is listed in --help; none may be hidden.
            assert list(entry["commands"]) == list(action.choices)
            for subparser in action.choices.values():
                _walk(subparser, commands)
            continue
        entry["options"].append(_option(action))


def _option(action: argparse.Action) -> dict[str, Any]:
    described = {
        "name": _name(action),
        "dest": action.dest,
        "action": type(action).__name__,
        "required": action.required,
        "nargs": action.nargs,
        "const": _plain(action.const),
        "default": _plain(action.default),
        "type": getattr(action.type, "__name__", None),
        "choices": None if action.choices is None else [_plain(choice) for choice in action.choices],
        "metavar": action.metavar,
        "help": action.help,
    }
    # What is unset is left out, so that the list stays readable.
    return {key: value for key, value in described.items() if value is not None and value is not False}


def _name(action: argparse.Action) -> str:
    return "|".join(action.option_strings) or action.dest


def _plain(value: object) -> object:
    # Values JSON holds as they are; anything else (none today) by its repr.
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return repr(value)


def test_the_cli_offers_the_same_commands_and_options_as_before_the_split() -> None:
    expected = json.loads(SURFACE_FILE.read_text(encoding="utf-8"))
    actual = surface(build_parser())

    assert list(actual) == list(expected), "commands were added, removed or reordered"
    for command, shape in expected.items():
        assert actual[command] == shape, f"`{command}` changed"


def test_every_command_sets_the_function_that_runs_it() -> None:
    leaves = [parser for parser in _parsers(build_parser()) if not parser._subparsers]

    assert len(leaves) > 40
    for parser in leaves:
        run = parser.get_default("run")
        assert callable(run), f"`{parser.prog}` runs {run!r}, not a function"


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                found += _parsers(subparser)
    return found


def test_the_directory_commands_offer_an_on_and_off_flag_for_every_directory_switch() -> None:
    commands = surface(build_parser())

    for command in ("idp directory add-ldap", "idp directory update"):
        options = {option["name"]: option for option in commands[command]["options"]}
        for switch in SWITCHES:
            flag = options.get(f"--{switch.replace('_', '-')}|--no-{switch.replace('_', '-')}")
            assert flag is not None, f"`{command}` has no flag for the switch {switch}"
            # Left out, a switch keeps its value: the flag's default is None (left out of
            # the list), not off.
            assert flag["dest"] == switch and flag["action"] == "BooleanOptionalAction"
            assert "default" not in flag
            assert flag["help"], f"the flag of {switch} has no help"


def _listing(commands: dict[str, Any]) -> str:
    """JSON with one line per option and per sub-command, so that a change is a one-line diff."""

    def line(value: object) -> str:
        return json.dumps(value, ensure_ascii=False)

    blocks = []
    for command, entry in commands.items():
        fields = []
        for key, value in entry.items():
            if isinstance(value, list) and value:
                items = ",\n".join(f"   {line(item)}" for item in value)
                fields.append(f"  {line(key)}: [\n{items}\n  ]")
            elif isinstance(value, dict):
                items = ",\n".join(f"   {line(name)}: {line(item)}" for name, item in value.items())
                fields.append(f"  {line(key)}: {{\n{items}\n  }}")
            else:
                fields.append(f"  {line(key)}: {line(value)}")
        blocks.append(f" {line(command)}: {{\n" + ",\n".join(fields) + "\n }")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


if __name__ == "__main__":
    SURFACE_FILE.write_text(_listing(surface(build_parser())), encoding="utf-8")
    print(f"wrote {SURFACE_FILE}")
