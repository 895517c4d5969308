"""``idp adaptive create|update|list|show|delete``: adaptive authentication policies (IP
allow and deny lists, the device limit, new devices, trusted devices)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands, add_noun, details, print_json, print_listing
from idp_core.adaptive import policies
from idp_core.adaptive.policies import ACTIONS, EXCEED_ACTIONS


def add_parser(commands: Subcommands) -> None:
    adaptive = add_noun(commands, "adaptive", "adaptive authentication policies (IP lists, devices)")
    for action, text, command in (
        ("create", "create a policy", create_policy),
        ("update", "change a policy; other options stay", update_policy),
    ):
        saving = add_command(adaptive, action, text, command, with_json=True)
        saving.add_argument("name")
        _add_policy_options(saving)
    add_command(adaptive, "list", "list the policies", list_policies, with_json=True)
    add_command(adaptive, "show", "show one policy", show_policy, with_json=True).add_argument("name")
    add_command(adaptive, "delete", "delete a policy", delete_policy).add_argument("name")


def _add_policy_options(parser: argparse.ArgumentParser) -> None:
    for option, text in (
        ("--allow-cidr", "an allowed network (repeat the option; replaces the list)"),
        ("--deny-cidr", "a network always refused (repeat the option; replaces the list)"),
    ):
        parser.add_argument(option, action="append", metavar="CIDR", help=text)
    for option, text in (
        ("--register-devices", "register the devices users sign in from"),
        ("--alert-user", "e-mail the user when the device limit is exceeded"),
        ("--notify-new-sign-in", "e-mail the user about a sign-in from a new device or address"),
    ):
        parser.add_argument(option, action=argparse.BooleanOptionalAction, default=None, help=text)
    parser.add_argument("--outside-allow", choices=ACTIONS, help="the action outside the allow list")
    parser.add_argument("--max-devices", type=int, metavar="N", help="devices allowed per user (1-100)")
    parser.add_argument("--on-exceed", choices=EXCEED_ACTIONS, help="the action beyond the device limit")
    parser.add_argument("--alert-email", metavar="ADDRESS", help="also e-mail this address")
    parser.add_argument("--on-new-device", choices=ACTIONS, help="the action for a new device or address")
    parser.add_argument(
        "--trust-days",
        type=int,
        metavar="N",
        help="days a device stays trusted after a second factor (0-365, 0: off; needs --register-devices)",
    )


def create_policy(cmd: OnStack) -> None:
    _save(cmd, create=True)


def update_policy(cmd: OnStack) -> None:
    _save(cmd, create=False)


def _save(cmd: OnStack, *, create: bool) -> None:
    """``adaptive create`` and ``adaptive update``: options left out keep their value."""
    a = cmd.args
    current = policies.AdaptivePolicy(a.name) if create else policies.get_policy(a.name)
    options = {
        "allow_cidrs": a.allow_cidr,
        "deny_cidrs": a.deny_cidr,
        "outside_allow": a.outside_allow,
        "register_devices": a.register_devices,
        "max_devices": a.max_devices,
        "on_exceed": a.on_exceed,
        "alert_user": a.alert_user,
        "alert_email": a.alert_email,
        "on_new_device": a.on_new_device,
        "notify_new_sign_in": a.notify_new_sign_in,
        "trust_days": a.trust_days,
    }
    changes = {name: value for name, value in options.items() if value is not None}
    saved = policies.save_policy(dataclasses.replace(current, **changes), create=create, context=cmd.context)
    _show(cmd, saved)


def show_policy(cmd: OnStack) -> None:
    _show(cmd, policies.get_policy(cmd.args.name))


def list_policies(cmd: OnStack) -> None:
    print_listing(
        cmd,
        [dataclasses.asdict(policy) for policy in policies.list_policies()],
        {
            "NAME": "name",
            "ALLOW": lambda p: p["allow_cidrs"] or "-",
            "DENY": lambda p: p["deny_cidrs"] or "-",
            "OUTSIDE ALLOW": "outside_allow",
            "DEVICES": lambda p: p["max_devices"] if p["register_devices"] else "not registered",
            "ON EXCEED": "on_exceed",
            "NEW DEVICE": "on_new_device",
            "NOTIFY": "notify_new_sign_in",
            "TRUST DAYS": lambda p: p["trust_days"] or "off",
        },
    )


def delete_policy(cmd: OnStack) -> None:
    policies.delete_policy(cmd.args.name, context=cmd.context)
    cmd.out.write(f"Deleted the adaptive policy {cmd.args.name!r}.\n")


def _show(cmd: OnStack, policy: Any) -> None:
    payload = dataclasses.asdict(policy)
    if cmd.args.json:
        print_json(cmd.out, payload)
        return
    details(cmd.out, {name.replace("_", " "): value for name, value in payload.items()})
