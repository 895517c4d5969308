"""The options of ``idp directory add-ldap`` and ``idp directory update``, and the directory
settings they name."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from idp_cli.terminal import UsageError
from idp_core.directories.settings import GROUP_LOOKUPS, KINDS, SWITCHES, AttributeMap, DirectorySettings

# A CA bundle of a few certificates; anything bigger is not one.
MAX_CA_CERT_BYTES = 256 * 1024
# The help of each switch's --x/--no-x option (idp_core.directories.settings.SWITCHES).
SWITCH_HELP = {
    "activate": "sign users in by binding to the directory with their password",
    "sync_users": "create a user who signs in through the directory and is not yet known",
    "backup_auth": "try the local password when the directory refuses or cannot be reached",
    "allow_password_change": "write users' new passwords to the directory",
    "admin_login": "console admins authenticate against the directory",
    "show_to_users": "let users pick this directory on the sign-in page",
    "send_configured_attributes": "put only the mapped attributes into assertions",
    "auto_register": "create users found by imports",
    "welcome_emails": "e-mail users created from the directory",
    "allow_cleartext": "allow ldap:// without StartTLS: passwords cross the network unencrypted",
}


def add_settings_options(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    parser.add_argument(
        "--type", choices=KINDS, required=adding, help="Active Directory, OpenLDAP or other LDAP"
    )
    parser.add_argument(
        "--url",
        action="append",
        required=adding,
        metavar="URL",
        help="ldap://host[:port] or ldaps://host[:port], tried in order (repeat; replaces the list)",
    )
    parser.add_argument("--bind-dn", required=adding, metavar="DN", help="the service account that searches")
    parser.add_argument(
        "--bind-password-stdin",
        action="store_true",
        required=adding,
        help="read the service account's password from standard input (stored encrypted)",
    )
    parser.add_argument(
        "--base",
        action="append",
        required=adding,
        metavar="DN",
        help="a search base (repeat; replaces the list)",
    )
    parser.add_argument(
        "--filter",
        metavar="FILTER",
        help="uid, sAMAccountName, userPrincipalName, mail, or a filter with {username}",
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=ATTRIBUTE",
        help="the attribute of a field: username, email, phone, first_name, last_name, display_name, groups",
    )
    parser.add_argument(
        "--ca-cert", metavar="FILE", help="PEM CA certificate(s) the servers' certificates chain to"
    )
    parser.add_argument(
        "--starttls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="secure ldap:// URLs with StartTLS",
    )
    parser.add_argument("--display-name", metavar="TEXT", help="the name users and admins see")
    parser.add_argument(
        "--group-lookup", choices=GROUP_LOOKUPS, help="groups from memberOf, or by a group search"
    )
    parser.add_argument("--group-base", metavar="DN", help="where the group search looks")
    parser.add_argument(
        "--group-member-attribute", metavar="A", help="the group attribute listing members' DNs"
    )
    for switch in SWITCHES:
        parser.add_argument(
            f"--{switch.replace('_', '-')}",
            dest=switch,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=SWITCH_HELP[switch],
        )
    parser.add_argument(
        "--schedule", metavar="EXPR", help="when imports run: rate(1 hour), cron(0 2 * * ? *), or none"
    )


# Options that set the setting they name whenever given, on add and on update: (option, setting).
_GIVEN_OPTIONS = (
    ("starttls", "start_tls"),
    ("group_lookup", "group_lookup"),
    ("group_base", "group_base"),
    ("group_member_attribute", "group_member_attribute"),
    *((switch, switch) for switch in SWITCHES),
)
# Options that add reads itself (they are required there) and update changes when given.
_UPDATE_OPTIONS = (("display_name", "display_name"), ("type", "kind"), ("bind_dn", "bind_dn"))


def settings_changes(a: argparse.Namespace, current: DirectorySettings | None) -> dict[str, Any]:
    """The settings the options name; ``current`` (None on add) supplies the attribute
    mapping that ``--map`` changes field by field."""
    changes = _connection_changes(a) if current is not None else {}
    kind = changes.get("kind", current.kind if current is not None else a.type)
    changes |= _type_dependent_changes(a, current, kind)
    changes |= _given(a, _GIVEN_OPTIONS)
    if a.ca_cert is not None:
        changes["ca_cert_pem"] = _read_ca_cert(a.ca_cert)
    if a.schedule is not None:
        changes["schedule"] = None if a.schedule.strip().lower() == "none" else a.schedule
    return changes


def _given(a: argparse.Namespace, options: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The settings of the ``(option, setting)`` pairs whose option was given."""
    return {name: getattr(a, option) for option, name in options if getattr(a, option) is not None}


def _connection_changes(a: argparse.Namespace) -> dict[str, Any]:
    """On update: the name, type, service account, URLs and bases given."""
    changes = _given(a, _UPDATE_OPTIONS)
    if a.url:
        changes["urls"] = tuple(a.url)
    if a.base:
        changes["bases"] = tuple(a.base)
    return changes


def _type_dependent_changes(
    a: argparse.Namespace, current: DirectorySettings | None, kind: str
) -> dict[str, Any]:
    """The attribute map and user filter: those given, and the new type's defaults in place of
    the old type's when the type changes."""
    changes: dict[str, Any] = {}
    mapping = current.mapping.as_dict() if current is not None else {}
    if (
        current is not None
        and kind != current.kind
        and current.mapping == AttributeMap.for_kind(current.kind)
    ):
        # The old type's defaults follow the type; a mapping the admin chose stays.
        mapping = {}
    if a.map or current is None or mapping == {}:
        changes["attribute_map"] = AttributeMap.for_kind(kind, {**mapping, **_attribute_overrides(a.map)})
    if a.filter is not None:
        changes["user_filter"] = a.filter
    elif current is not None and kind != current.kind and current.user_filter in ("uid", "sAMAccountName"):
        changes["user_filter"] = None  # the new type's usual filter
    return changes


def _attribute_overrides(raw: Sequence[str]) -> dict[str, str]:
    """``--map email=mail --map phone=mobile`` -> {"email": "mail", "phone": "mobile"}; the
    field names and attribute names are checked by ``AttributeMap``."""
    overrides: dict[str, str] = {}
    for item in raw:
        field, separator, attribute = item.partition("=")
        if not separator or not field.strip() or not attribute.strip():
            raise UsageError(f"--map expects FIELD=ATTRIBUTE, e.g. --map email=mail, got {item!r}.")
        overrides[field.strip().replace("-", "_")] = attribute.strip()
    return overrides


def _read_ca_cert(path: str) -> str:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_CA_CERT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the CA certificate {path!r}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CA_CERT_BYTES:
        raise UsageError(f"the CA certificate {path!r} is larger than {MAX_CA_CERT_BYTES // 1024} KiB.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"the CA certificate {path!r} is not PEM text.") from exc
