"""``idp policy set|show``: whether an app asks for a second factor, which methods it
accepts, and its adaptive policy."""

from __future__ import annotations

import argparse
from typing import Any

from idp_cli.mfa import parse_methods
from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands, UsageError, add_noun, details, print_json
from idp_core import apps
from idp_core.mfa import policy


def add_parser(commands: Subcommands) -> None:
    actions = add_noun(commands, "policy", "an app's second-factor policy")
    set_policy = add_command(
        actions,
        "set",
        "an app's second factor and adaptive policy (options left out stay as they are)",
        set_app_policy,
    )
    set_policy.add_argument("app")
    set_policy.add_argument("--mfa", choices=["required", "off"], help="require a second factor, or not")
    set_policy.add_argument(
        "--methods",
        metavar="M,...",
        help="the methods the app accepts (totp,sms,email,backup,token,webauthn)",
    )
    set_policy.add_argument(
        "--phishing-resistant-only",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="accept only security keys and passkeys (WebAuthn), whatever --methods says",
    )
    set_policy.add_argument(
        "--adaptive",
        metavar="NAME",
        help="the adaptive policy of the app (idp adaptive), or none to remove it",
    )
    add_command(actions, "show", "show an app's policy", show_app_policy, with_json=True).add_argument("app")


def set_app_policy(cmd: OnStack) -> None:
    a = cmd.args
    if a.mfa is None and a.methods is None and a.adaptive is None and a.phishing_resistant_only is None:
        raise UsageError(
            "one of the arguments --mfa --methods --adaptive --phishing-resistant-only is required "
            "(see `idp policy set --help`)"
        )
    methods = parse_methods(a.methods, "--methods") if a.methods is not None else None
    app = policy.set_app_policy(
        a.app,
        mfa_required=None if a.mfa is None else a.mfa == "required",
        methods=methods,
        adaptive=a.adaptive,
        phishing_resistant_only=a.phishing_resistant_only,
        context=cmd.context,
    )
    _show(cmd, app, as_json=False)


def show_app_policy(cmd: OnStack) -> None:
    _show(cmd, apps.get_app(cmd.args.app), as_json=cmd.args.json)


def _show(cmd: OnStack, app: Any, *, as_json: bool) -> None:
    accepted = policy.app_methods(app, policy.load_settings())
    payload = {
        "app": app.name,
        "mfa_required": bool(app.mfa_required),
        "methods": sorted(app.mfa_methods) if app.mfa_methods else None,
        "accepted_methods": list(accepted),
        "adaptive_policy": app.adaptive_policy,
        "phishing_resistant_only": bool(app.phishing_resistant_only),
    }
    if as_json:
        print_json(cmd.out, payload)
        return
    details(
        cmd.out,
        {
            "app": payload["app"],
            "mfa": "required" if payload["mfa_required"] else "off",
            "methods": payload["methods"] or "(every method the MFA settings allow)",
            "accepted now": payload["accepted_methods"],
            "adaptive policy": payload["adaptive_policy"] or "none",
            "phishing-resistant only": "yes" if payload["phishing_resistant_only"] else "no",
        },
    )
