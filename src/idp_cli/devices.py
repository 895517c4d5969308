"""``idp device list|remove|untrust``: the devices users sign in from."""

from __future__ import annotations

from typing import Any

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands, add_noun, print_listing, timestamp
from idp_core import accounts
from idp_core.adaptive import devices
from idp_core.clock import SYSTEM_CLOCK


def add_parser(commands: Subcommands) -> None:
    device = add_noun(commands, "device", "the devices users sign in from")
    add_command(device, "list", "list a user's devices", list_devices, with_json=True).add_argument(
        "username"
    )
    for action, text, command in (
        ("remove", "forget a device; it frees a place under the device limit", remove_device),
        ("untrust", "end a device's trust; it no longer skips the second factor", untrust_device),
    ):
        parser = add_command(device, action, text, command)
        parser.add_argument("username")
        parser.add_argument("device_id", metavar="DEVICE_ID")


def list_devices(cmd: OnStack) -> None:
    user = accounts.get_user(cmd.args.username)
    now = SYSTEM_CLOCK.now()
    print_listing(
        cmd,
        [_device_dict(device, user, now) for device in devices.list_devices(user.username)],
        {
            "ID": "id",
            "NAME": "name",
            "BROWSER": "browser",
            "OS": "os",
            "FIRST SEEN": "first_seen",
            "LAST SEEN": "last_seen",
            "LAST IP": "last_ip",
            "TRUSTED UNTIL": "trusted_until",
        },
    )


def remove_device(cmd: OnStack) -> None:
    user = accounts.get_user(cmd.args.username)
    device = devices.remove(user.username, cmd.args.device_id, context=cmd.context)
    cmd.out.write(
        f"Removed device {device.device_id} ({device.name}) of {user.display_username}; "
        "it no longer counts against the device limit.\n"
    )


def untrust_device(cmd: OnStack) -> None:
    user = accounts.get_user(cmd.args.username)
    device = devices.untrust(user.username, cmd.args.device_id, context=cmd.context)
    cmd.out.write(
        f"Device {device.device_id} ({device.name}) of {user.display_username} is no longer trusted.\n"
    )


def _device_dict(device: Any, user: Any, now: float) -> dict[str, object]:
    return {
        "id": device.device_id,
        "name": device.name,
        "browser": device.browser,
        "os": device.os,
        "first_seen": timestamp(device.first_seen_at),
        "last_seen": timestamp(device.last_seen_at),
        "last_ip": device.last_ip,
        # A trust that a factor change or a disabling ended is no trust, whatever its end date.
        "trusted_until": timestamp(device.trusted_until) if devices.is_trusted(device, user, now) else None,
    }
