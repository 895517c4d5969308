"""``idp mfa settings``: the second-factor methods users may enrol, and where SMS may go."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, cast

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands, UsageError, add_noun, details, print_json
from idp_core.mfa import methods as registry
from idp_core.mfa import policy

# ISO 3166-1 alpha-2: two letters.
COUNTRY_CODE_LENGTH = 2


def add_parser(commands: Subcommands) -> None:
    mfa = add_noun(commands, "mfa", "second-factor settings")
    settings = add_command(mfa, "settings", "show or change the MFA settings", mfa_settings, with_json=True)
    settings.add_argument("--default", metavar="METHOD", help="the method offered first")
    settings.add_argument("--allowed", metavar="M,...", help="the methods users may enrol")
    settings.add_argument(
        "--enrol-at-sign-in",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="users without a factor must enrol at their next sign-in",
    )
    settings.add_argument("--sms-countries", metavar="CC,...", help="countries SMS codes may be sent to")
    settings.add_argument(
        "--webauthn-user-verification",
        choices=policy.USER_VERIFICATION_CHOICES,
        help="whether a security key must check it is its owner (PIN, biometrics) as a second factor",
    )
    settings.add_argument(
        "--webauthn-models",
        metavar="AAGUID,...",
        help="the security key models allowed (they must then attest their model); none: any model",
    )


def mfa_settings(cmd: OnStack) -> None:
    a = cmd.args
    current = policy.load_settings()
    changes: dict[str, Any] = {}
    if a.default is not None:
        chosen = parse_methods(a.default, "--default")
        if len(chosen) != 1:
            raise UsageError("--default takes one method, e.g. --default totp.")
        changes["default_method"] = chosen[0]
    if a.allowed is not None:
        changes["allowed_methods"] = parse_methods(a.allowed, "--allowed")
    if a.enrol_at_sign_in is not None:
        changes["enrol_at_sign_in"] = a.enrol_at_sign_in
    if a.sms_countries is not None:
        changes["sms"] = dataclasses.replace(current.sms, allowed_countries=_countries(a.sms_countries))
    if a.webauthn_user_verification is not None:
        changes["webauthn_user_verification"] = a.webauthn_user_verification
    if a.webauthn_models is not None:
        models = a.webauthn_models.strip().lower()
        changes["webauthn_models"] = (
            () if models == "none" else tuple(m.strip() for m in models.split(",") if m.strip())
        )
    if changes:
        current = policy.save_settings(dataclasses.replace(current, **changes), context=cmd.context)
    shown = _settings_dict(current)
    if a.json:
        print_json(cmd.out, shown)
        return
    sms = cast(dict[str, object], shown.pop("sms", {}))
    details(cmd.out, {**shown, **{f"sms.{name}": value for name, value in sms.items()}})


def parse_methods(raw: str, option: str) -> tuple[str, ...]:
    """``totp,sms`` -> ("totp", "sms"), checked against the known methods."""
    known = registry.kinds()
    methods = tuple(dict.fromkeys(item.strip().lower() for item in raw.split(",") if item.strip()))
    if not methods:
        raise UsageError(f"{option} expects a comma-separated list of methods: {', '.join(known)}.")
    unknown = [method for method in methods if method not in known]
    if unknown:
        raise UsageError(f"{option}: unknown method {unknown[0]!r}; choose from {', '.join(known)}.")
    return methods


def _countries(raw: str) -> tuple[str, ...]:
    codes = tuple(dict.fromkeys(item.strip().upper() for item in raw.split(",") if item.strip()))
    bad = [
        code for code in codes if len(code) != COUNTRY_CODE_LENGTH or not code.isascii() or not code.isalpha()
    ]
    if not codes or bad:
        raise UsageError(
            "--sms-countries expects two-letter country codes such as US,GB"
            + (f"; got {bad[0]!r}." if bad else ".")
        )
    return codes


def _settings_dict(settings: Any) -> dict[str, object]:
    raw = dataclasses.asdict(settings)
    return {name: list(value) if isinstance(value, tuple) else value for name, value in raw.items()}
