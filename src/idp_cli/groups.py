"""``idp group add|list|disable|enable``."""

from __future__ import annotations

from typing import Any

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands, add_noun, print_listing, timestamp
from idp_core import accounts


def add_parser(commands: Subcommands) -> None:
    group = add_noun(commands, "group", "manage groups")
    add = add_command(group, "add", "create a group", add_group)
    add.add_argument("name")
    add.add_argument("--description")
    add_command(group, "list", "list groups", list_groups, with_json=True)
    add_command(group, "disable", "disable a group", disable_group).add_argument("name")
    add_command(group, "enable", "enable a group", enable_group).add_argument("name")


def add_group(cmd: OnStack) -> None:
    group = accounts.create_group(cmd.args.name, description=cmd.args.description, context=cmd.context)
    cmd.out.write(f"Created group {group.display_name}.\n")


def list_groups(cmd: OnStack) -> None:
    print_listing(
        cmd,
        [_group_dict(group) for group in accounts.list_groups()],
        {"NAME": "name", "DISABLED": "disabled", "SOURCE": "source", "DESCRIPTION": "description"},
    )


def disable_group(cmd: OnStack) -> None:
    group = accounts.set_group_disabled(cmd.args.name, True, context=cmd.context)
    cmd.out.write(f"Disabled group {group.display_name}; it no longer grants app roles.\n")


def enable_group(cmd: OnStack) -> None:
    group = accounts.set_group_disabled(cmd.args.name, False, context=cmd.context)
    cmd.out.write(f"Enabled group {group.display_name}.\n")


def _group_dict(group: Any) -> dict[str, object]:
    return {
        "name": group.display_name,
        "key": group.name,
        "description": group.description,
        "disabled": bool(group.disabled),
        "source": group.source,
        "created_at": timestamp(group.created_at),
    }
