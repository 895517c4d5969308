"""``idp token import|list|assign|unassign``: hardware OATH tokens, their secrets sealed with the data key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands, UsageError, add_noun, cell, print_listing, timestamp
from idp_core import accounts, aws
from idp_core.mfa import tokens

# An OATH token file is a few lines per token; anything bigger is not one.
MAX_TOKEN_FILE_BYTES = 1024 * 1024


def add_parser(commands: Subcommands) -> None:
    token = add_noun(commands, "token", "hardware OATH tokens")
    add_command(token, "import", "import tokens from a CSV file", import_tokens).add_argument(
        "file", metavar="FILE", help="CSV: serial, base32 secret, totp|hotp, digits, period"
    )
    add_command(token, "list", "list imported tokens", list_tokens, with_json=True)
    assign = add_command(token, "assign", "assign a token to a user", assign_token)
    assign.add_argument("serial")
    assign.add_argument("username")
    unassign = add_command(token, "unassign", "take a token back from its user", unassign_token)
    unassign.add_argument("serial")
    unassign.add_argument("username")


def import_tokens(cmd: OnStack) -> None:
    text = _read_token_file(cmd.args.file)
    serials = tokens.import_csv(text, kms=aws.client("kms"), key_id=cmd.data_key_id())
    cmd.out.write(f"Imported {len(serials)} token(s): {cell(serials)}\n")


def list_tokens(cmd: OnStack) -> None:
    print_listing(
        cmd,
        [_token_dict(token) for token in tokens.list_tokens()],
        {
            "SERIAL": "serial",
            "KIND": "kind",
            "DIGITS": "digits",
            "PERIOD": "period",
            "ASSIGNED TO": "assigned_to",
            "IMPORTED": "imported_at",
        },
    )


def assign_token(cmd: OnStack) -> None:
    user = accounts.get_user(cmd.args.username)
    factor = tokens.assign(
        cmd.args.serial,
        user.username,
        kms=aws.client("kms"),
        key_id=cmd.data_key_id(),
        context=cmd.context,
    )
    cmd.out.write(
        f"Assigned token {cmd.args.serial} to {user.display_username} as factor {factor.factor_id}.\n"
    )


def unassign_token(cmd: OnStack) -> None:
    user = accounts.get_user(cmd.args.username)
    tokens.unassign(cmd.args.serial, user.username, context=cmd.context)
    cmd.out.write(
        f"Took token {cmd.args.serial} back from {user.display_username}; it is free to assign again.\n"
    )


def _read_token_file(path: str) -> str:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"Cannot read the token file {path}: {exc.strerror}.") from exc
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise UsageError(f"The token file {path} is larger than 1 MB; split it into smaller files.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"The token file {path} is not UTF-8 text.") from exc


def _token_dict(token: Any) -> dict[str, object]:
    return {
        "serial": token.serial,
        "kind": token.kind,
        "digits": int(token.digits),
        "period": int(token.period) if token.kind == "totp" else None,
        "assigned_to": token.assigned_to,
        "imported_at": timestamp(token.imported_at),
    }
