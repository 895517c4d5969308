"""``idp app add-aws|update|list|show|delete``: the SAML apps users sign in to."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from idp_cli import saml_apps
from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import (
    Subcommands,
    UsageError,
    add_noun,
    details,
    print_json,
    print_listing,
    table,
    timestamp,
)
from idp_core import apps


def add_parser(commands: Subcommands) -> None:
    app = add_noun(commands, "app", "manage SAML apps")
    aws = add_command(app, "add-aws", "add an AWS console app (one account or several)", add_aws_app)
    aws.add_argument("name")
    aws.add_argument("--account-id", required=True)
    aws.add_argument(
        "--role",
        action="append",
        required=True,
        metavar="[ACCOUNT:]ROLE_NAME=GROUP",
        help="a role for a group, in the app's account or in ACCOUNT (repeatable)",
    )
    aws.add_argument("--session-duration", type=int, default=3600, metavar="SECONDS")
    _add_app_options(aws)
    add_command(app, "list", "list apps", list_apps, with_json=True)
    add_command(app, "show", "show one app", show_app, with_json=True).add_argument("name")
    add_command(app, "delete", "delete an app", delete_app).add_argument("name")
    update = add_command(app, "update", "change an app (only the options given)", update_app)
    update.add_argument("name")
    update.add_argument("--account-id")
    update.add_argument(
        "--role",
        action="append",
        metavar="[ACCOUNT:]ROLE_NAME=GROUP",
        help="the new role mappings, in the app's account or in ACCOUNT (repeatable)",
    )
    update.add_argument("--session-duration", type=int, metavar="SECONDS")
    _add_app_options(update)
    status = update.add_mutually_exclusive_group()
    status.add_argument(
        "--disable", dest="disabled", action="store_true", default=None, help="refuse launches"
    )
    status.add_argument(
        "--enable", dest="disabled", action="store_false", default=None, help="allow launches again"
    )
    saml_apps.add_parsers(app)


def add_aws_app(cmd: OnStack) -> None:
    a = cmd.args
    app = apps.create_aws_app(a.name, _choices(a), context=cmd.context)
    accounts = ", ".join(apps.accounts_of(app))
    cmd.out.write(
        f"Created AWS app {app.name}. In each of its accounts ({accounts}), create the IAM SAML provider "
        f"{app.provider_name!r} from the IdP metadata and the roles that trust it "
        f"(`idp aws member-template --app {app.name}` prints a CloudFormation template for that).\n"
    )


def _add_app_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relay-state", metavar="URL")
    parser.add_argument("--provider-name", metavar="NAME")
    parser.add_argument("--acs-url", metavar="URL")
    parser.add_argument("--display-name")


def _choices(a: argparse.Namespace) -> apps.AwsAppChoices:
    """The app options given (None for one not given: a default, or no change)."""
    return apps.AwsAppChoices(
        account_id=a.account_id,
        roles=_role_mappings(a.role) if a.role else None,
        session_duration=a.session_duration,
        relay_state=a.relay_state,
        provider_name=a.provider_name,
        acs_url=a.acs_url,
        display_name=a.display_name,
    )


def update_app(cmd: OnStack) -> None:
    a = cmd.args
    before = _app_dict(apps.get_app(a.name))
    app = apps.update_aws_app(a.name, _choices(a), disabled=a.disabled, context=cmd.context)
    after = _app_dict(apps.get_app(app.name))
    changed = [field for field in after if after[field] != before[field]]
    if not changed:
        cmd.out.write(f"App {app.name} already had these settings; nothing changed.\n")
        return
    cmd.out.write(f"Updated app {app.name}: {', '.join(changed)}.\n")


def list_apps(cmd: OnStack) -> None:
    print_listing(
        cmd,
        [_app_dict(app) for app in apps.list_apps()],
        {
            "NAME": "name",
            "KIND": "kind",
            "ACCOUNT": "account_id",
            "DISABLED": "disabled",
            "ROLES": lambda app: [f"{r['account_id']}:{r['role']}={r['group']}" for r in app["roles"]],
        },
    )


def show_app(cmd: OnStack) -> None:
    app = _app_dict(apps.get_app(cmd.args.name))
    if cmd.args.json:
        print_json(cmd.out, app)
        return
    roles = app.pop("roles")
    sp = app.pop("sp")
    if sp is not None:
        app["sp_entity_id"] = sp["entity_id"]
        app["sp_acs_urls"] = [endpoint["url"] for endpoint in sp["acs"]]
        app["name_id"] = f"{sp['name_id_format']} from {sp['name_id_source']}"
        app["attributes"] = [f"{a['name']}={a['source']}" for a in sp["attributes"]]
    details(cmd.out, app)
    table(
        cmd.out,
        ["ACCOUNT", "ROLE", "GROUP", "ROLE ARN"],
        [[r["account_id"], r["role"], r["group"], r["role_arn"]] for r in roles],
    )


def delete_app(cmd: OnStack) -> None:
    app = apps.get_app(cmd.args.name)
    apps.delete_app(cmd.args.name, context=cmd.context)
    cmd.out.write(f"Deleted app {app.name}.\n")


def _role_mappings(raw: Sequence[str]) -> list[tuple[str, str]]:
    mappings = []
    for item in raw:
        # Role names may contain "=" but group names may not, so the last "=" separates them.
        role, separator, group = item.rpartition("=")
        if not separator or not role.strip() or not group.strip():
            raise UsageError(
                f"--role expects ROLE_NAME=GROUP, ACCOUNT:ROLE_NAME=GROUP or ROLE_ARN=GROUP, got {item!r}."
            )
        mappings.append((role.strip(), group.strip()))
    return mappings


def _app_dict(app: Any) -> dict[str, Any]:
    return {
        "name": app.name,
        "display_name": app.display_name,
        "kind": app.kind,
        "account_id": app.account_id,
        "provider_name": app.provider_name,
        "provider_arn": apps.provider_arn(app),
        "roles": apps.role_table(app),
        "session_duration": int(app.session_duration),
        "relay_state": app.relay_state,
        "acs_url": app.acs_url,
        "audience": app.audience,
        "disabled": bool(app.disabled),
        "adaptive_policy": app.adaptive_policy,
        "created_at": timestamp(app.created_at),
        # A SAML app's SP: entity id, endpoints, certificates, NameID, attributes, signing.
        "sp": _sp_dict(app.sp) if app.sp else None,
    }


def _sp_dict(stored: str) -> dict[str, Any]:
    sp = json.loads(stored)
    # The salt would let anyone who reads it tell which user a persistent NameID names.
    sp.pop("name_id_salt", None)
    return dict(sp)
