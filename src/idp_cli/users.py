"""``idp user add|list|show|update|disable|enable|delete|unlock|sign-out|set-password|groups|factors|
keys|remove-key|reset-mfa|reindex``."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping
from typing import Any

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import (
    Subcommands,
    UsageError,
    add_noun,
    cell,
    details,
    print_json,
    print_listing,
    read_secret,
    timestamp,
)
from idp_core import account_deletion, accounts, user_listing
from idp_core.mail import Mailer
from idp_core.mfa import factors
from idp_core.mfa.methods import MethodKind


def add_parser(commands: Subcommands) -> None:
    user = add_noun(commands, "user", "manage users")
    add = add_command(user, "add", "create a user", add_user)
    add.add_argument("username")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--group", action="append", default=[], metavar="G", help="a group (repeatable)")
    add.add_argument("--admin", action="store_true", help="make the user an admin")
    add.add_argument("--email")
    add.add_argument("--display-name")
    listing = add_command(user, "list", "list users, a page at a time", list_users, with_json=True)
    listing.add_argument("--search", metavar="PREFIX", help="only usernames that start with PREFIX")
    listing.add_argument(
        "--limit", type=int, default=user_listing.MAX_PAGE_SIZE, metavar="N", help="users per page (1-100)"
    )
    listing.add_argument("--next", metavar="CURSOR", help="the page after the one that printed CURSOR")
    add_command(user, "show", "show one user", show_user, with_json=True).add_argument("username")
    for action, text, command in (
        ("disable", "disable a user and end their sessions", disable_user),
        ("enable", "enable a user", enable_user),
        ("delete", "delete a user", delete_user),
        ("unlock", "lift a lockout and reset failed attempts", unlock_user),
    ):
        add_command(user, action, text, command).add_argument("username")
    set_password = add_command(
        user, "set-password", "set a user's password (from standard input)", set_user_password
    )
    set_password.add_argument("username")
    set_password.add_argument("--password-stdin", action="store_true", required=True)
    groups = add_command(user, "groups", "replace a user's groups", set_user_groups)
    groups.add_argument("username")
    which = groups.add_mutually_exclusive_group(required=True)
    which.add_argument("--group", action="append", metavar="G", help="a group (repeatable)")
    which.add_argument("--clear", action="store_true", help="remove the user from every group")
    add_command(
        user, "factors", "list a user's second factors (never secrets)", list_user_factors, with_json=True
    ).add_argument("username")
    add_command(
        user, "keys", "list a user's security keys and passkeys", list_user_keys, with_json=True
    ).add_argument("username")
    remove_key = add_command(user, "remove-key", "remove one of a user's security keys", remove_user_key)
    remove_key.add_argument("username")
    remove_key.add_argument("key_id", metavar="KEY_ID", help="the key's id, as `idp user keys` lists it")
    add_command(
        user,
        "reset-mfa",
        "remove every second factor of a user, end their sessions; they set up a new one at sign-in",
        reset_user_mfa,
    ).add_argument("username")
    update = add_command(user, "update", "change a user's details (only the options given)", update_user)
    update.add_argument("username")
    update.add_argument("--email", metavar="ADDRESS", help='the e-mail address ("" removes it)')
    update.add_argument("--phone", metavar="NUMBER", help='the contact phone number ("" removes it)')
    update.add_argument("--display-name", metavar="NAME", help='the display name ("" removes it)')
    groups_choice = update.add_mutually_exclusive_group()
    groups_choice.add_argument("--group", action="append", metavar="G", help="the groups (repeatable)")
    groups_choice.add_argument("--no-groups", action="store_true", help="remove the user from every group")
    _add_switch(update, "admin", "make the user an administrator", "revoke administrator rights")
    _add_switch(update, "disabled", "disable the user and end their sessions", "enable the user")
    add_command(
        user, "sign-out", "end every session of a user (sign out everywhere)", sign_out_user
    ).add_argument("username")
    add_command(
        user, "reindex", "list users of an earlier version in the users list (once, after upgrading)", reindex
    )


def add_user(cmd: OnStack) -> None:
    a = cmd.args
    password = read_secret(cmd) if a.password_stdin else None
    user = accounts.create_user(
        accounts.NewUser(
            a.username,
            password=password,
            email=a.email,
            display_name=a.display_name,
            groups=a.group,
            is_admin=a.admin,
        ),
        context=cmd.context,
    )
    if password is None:
        cmd.out.write(
            f"Created user {user.display_username} without a password; set one with "
            f"`idp user set-password {user.display_username} --password-stdin`.\n"
        )
    else:
        cmd.out.write(f"Created user {user.display_username}.\n")


def _add_switch(parser: argparse.ArgumentParser, name: str, on_help: str, off_help: str) -> None:
    """``--admin``/``--no-admin`` (``--disable``/``--enable`` for ``disabled``): None when neither."""
    on, off = ("--disable", "--enable") if name == "disabled" else (f"--{name}", f"--no-{name}")
    switch = parser.add_mutually_exclusive_group()
    switch.add_argument(on, dest=name, action="store_true", default=None, help=on_help)
    switch.add_argument(off, dest=name, action="store_false", default=None, help=off_help)


def update_user(cmd: OnStack) -> None:
    a = cmd.args
    user = accounts.update_user(
        a.username,
        accounts.UserChanges(
            email=a.email,
            phone=a.phone,
            display_name=a.display_name,
            groups=[] if a.no_groups else a.group,
            is_admin=a.admin,
            disabled=a.disabled,
        ),
        context=cmd.context,
        mailer=Mailer.for_settings(cmd.settings),
    )
    cmd.out.write(f"Updated user {user.display_username}.\n")
    details(cmd.out, _user_dict(user))


def sign_out_user(cmd: OnStack) -> None:
    user = accounts.get_user(cmd.args.username)
    ended = accounts.sign_out_everywhere(user.username, context=cmd.context)
    cmd.out.write(f"Signed {user.display_username} out everywhere: {ended} session(s) ended.\n")


def reindex(cmd: OnStack) -> None:
    listed = user_listing.list_unlisted_users()
    cmd.out.write(f"Added {listed} user(s) to the users list; every user is in it now.\n")


def list_users(cmd: OnStack) -> None:
    a = cmd.args
    page = user_listing.users_page(a.search, limit=a.limit, cursor=a.next)
    print_listing(
        cmd,
        [_user_dict(user) for user in page.users],
        {
            "USERNAME": "username",
            "NAME": "display_name",
            "EMAIL": "email",
            "ADMIN": "admin",
            "DISABLED": "disabled",
            "LOCKED": "locked",
            "GROUPS": "groups",
        },
    )
    if page.next_cursor:
        # On standard error, so that --json output stays one JSON document.
        search = f" --search {shlex.quote(a.search)}" if a.search else ""
        cmd.err.write(f"More users: idp user list{search} --next {page.next_cursor}\n")


def show_user(cmd: OnStack) -> None:
    user = _user_dict(accounts.get_user(cmd.args.username))
    if cmd.args.json:
        print_json(cmd.out, user)
    else:
        details(cmd.out, user)


def disable_user(cmd: OnStack) -> None:
    user = accounts.set_user_disabled(cmd.args.username, True, context=cmd.context)
    cmd.out.write(f"Disabled user {user.display_username}; their sessions have ended.\n")


def enable_user(cmd: OnStack) -> None:
    user = accounts.set_user_disabled(cmd.args.username, False, context=cmd.context)
    cmd.out.write(f"Enabled user {user.display_username}.\n")


def delete_user(cmd: OnStack) -> None:
    deletion = account_deletion.delete_user(cmd.args.username, context=cmd.context)
    if deletion.user_existed:
        cmd.out.write(f"Deleted user {deletion.display_username} ({deletion.summary()}).\n")
    else:
        cmd.out.write(
            f"There was no user {deletion.display_username}; removed what an earlier deletion "
            f"left ({deletion.summary()}).\n"
        )


def unlock_user(cmd: OnStack) -> None:
    user = accounts.unlock_user(cmd.args.username, context=cmd.context)
    cmd.out.write(f"Unlocked user {user.display_username}; failed attempts reset.\n")


def set_user_password(cmd: OnStack) -> None:
    password = read_secret(cmd)
    user = accounts.reset_password(
        cmd.args.username, password, context=cmd.context, mailer=Mailer.for_settings(cmd.settings)
    )
    cmd.out.write(
        f"Set a new password for {user.display_username}; their sessions ended and their devices "
        "are no longer trusted.\n"
    )


def set_user_groups(cmd: OnStack) -> None:
    groups = [] if cmd.args.clear else cmd.args.group
    accounts.set_user_groups(cmd.args.username, groups, context=cmd.context)
    user = accounts.get_user(cmd.args.username)
    cmd.out.write(f"Groups of {user.display_username}: {cell(user.group_names())}\n")


def list_user_factors(cmd: OnStack) -> None:
    user = accounts.get_user(cmd.args.username)
    print_listing(
        cmd,
        [_factor_dict(factor) for factor in factors.list_factors(user.username)],
        {
            "ID": "id",
            "KIND": "kind",
            "LABEL": "label",
            "STATUS": "status",
            "DEFAULT": "default",
            "DETAIL": _factor_detail,
            "LAST USED": "last_used_at",
        },
    )


def list_user_keys(cmd: OnStack) -> None:
    user = accounts.get_user(cmd.args.username)
    keys = [factor for factor in factors.list_factors(user.username) if factor.kind == MethodKind.WEBAUTHN]
    print_listing(
        cmd,
        [_key_dict(key) for key in keys],
        {
            "ID": "id",
            "NAME": "name",
            "MODEL (AAGUID)": "aaguid",
            "CREATED": "created_at",
            "LAST USED": "last_used_at",
        },
    )


def remove_user_key(cmd: OnStack) -> None:
    user = accounts.get_user(cmd.args.username)
    key = factors.get_factor(user.username, cmd.args.key_id)
    if key.kind != MethodKind.WEBAUTHN:
        raise UsageError(
            f"{cmd.args.key_id!r} is not a security key of {user.display_username}; see `idp user keys`."
        )
    ended = factors.remove_factor(user.username, key.factor_id, context=cmd.context)
    cmd.out.write(
        f"Removed the security key {key.label!r} of {user.display_username}; {ended} session(s) ended.\n"
    )


def _key_dict(key: Any) -> dict[str, object]:
    return {
        "id": key.factor_id,
        "name": key.label,
        "aaguid": key.aaguid,
        "transports": sorted(key.transports or ()),
        "user_verified": key.user_verified,
        "created_at": timestamp(key.created_at),
        "last_used_at": timestamp(key.last_used_at),
    }


def reset_user_mfa(cmd: OnStack) -> None:
    reset = account_deletion.reset_second_factors(
        cmd.args.username, context=cmd.context, mailer=Mailer.for_settings(cmd.settings)
    )
    cmd.out.write(
        f"Reset the second factors of {reset.display_username} ({reset.summary()}); their devices are "
        "no longer trusted and they must set up a new second factor at their next sign-in.\n"
    )


def _user_dict(user: Any) -> dict[str, object]:
    # Never the password hash: the CLI shows what an admin may see.
    return {
        "username": user.display_username,
        "key": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "phone": user.phone,
        "admin": bool(user.is_admin),
        "disabled": bool(user.disabled),
        "deleting_since": timestamp(user.deleting_since),
        "groups": user.group_names(),
        "source": user.source,
        "has_password": user.password_hash is not None,
        "failed_attempts": user.total_failures(),
        "locked": bool(user.locked),
        "locked_until": timestamp(user.locked_until),
        "created_at": timestamp(user.created_at),
        "updated_at": timestamp(user.updated_at),
    }


def _factor_dict(factor: Any) -> dict[str, object]:
    # Never the secret or the backup code hashes: only what an admin may see.
    return {
        "id": factor.factor_id,
        "kind": factor.kind,
        "label": factor.label,
        "status": factor.status,
        "default": bool(factor.is_default),
        "phone": factor.phone,
        "email": factor.email,
        "token_serial": factor.token_serial,
        "backup_codes_left": len(factor.code_hashes or ()) if factor.kind == "backup" else None,
        "created_at": timestamp(factor.created_at),
        "confirmed_at": timestamp(factor.confirmed_at),
        "last_used_at": timestamp(factor.last_used_at),
    }


def _factor_detail(factor: Mapping[str, Any]) -> object:
    codes_left = factor["backup_codes_left"]
    return (
        factor["phone"]
        or factor["email"]
        or factor["token_serial"]
        or (None if codes_left is None else f"{codes_left} codes left")
    )
