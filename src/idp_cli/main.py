"""The ``idp`` command: every admin action, against the local stack or a deployed stack.

It calls the same core functions as the admin console (``idp_core.accounts``,
``idp_core.apps``); it never talks to DynamoDB directly. Bad input ends with one
readable line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn, TextIO, cast

from idp_core.config import (
    ENV_DATA_KEY_ID,
    ENV_PUBLIC_BASE_URL,
    ENV_SIGNING_KEY_ID,
    ConfigurationError,
    Settings,
    Tables,
)
from idp_core.errors import IdpError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# An OATH token file is a few lines per token; anything bigger is not one.
MAX_TOKEN_FILE_BYTES = 1024 * 1024
# A CA bundle of a few certificates; anything bigger is not one.
MAX_CA_CERT_BYTES = 256 * 1024

# CloudFormation outputs of the deployed stack, and the setting each one provides.
STACK_OUTPUTS = {
    "ApiUrl": ENV_PUBLIC_BASE_URL,
    "SigningKeyId": ENV_SIGNING_KEY_ID,
    **{Tables.output_name(concern): Tables.env_name(concern) for concern in Tables.concerns()},
}
# Only the token commands need the data key; a stack without the output still serves the rest.
OPTIONAL_STACK_OUTPUTS = {"DataKeyId": ENV_DATA_KEY_ID}
# The switches of a directory (idp_core.directories.settings.SWITCHES), one --x/--no-x option each.
DIRECTORY_SWITCHES = (
    "activate",
    "sync_users",
    "backup_auth",
    "allow_password_change",
    "admin_login",
    "show_to_users",
    "send_configured_attributes",
    "auto_register",
    "welcome_emails",
    "allow_cleartext",
)
DIRECTORY_SWITCH_HELP = {
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


class UsageError(Exception):
    """Bad command-line input; the message is one sentence for the user."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (not the usage block) and never exits by itself."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ---------------------------------------------------------------- output helpers


def _table(out: TextIO, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    text_rows = [[_cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in text_rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    for row in [list(headers), *text_rows]:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )
    if not text_rows:
        out.write("(none)\n")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(item) for item in value) or "-"
    return str(value)


def _time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _json(out: TextIO, payload: object) -> None:
    out.write(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _details(out: TextIO, fields: Mapping[str, object]) -> None:
    width = max(len(name) for name in fields)
    for name, value in fields.items():
        out.write(f"{name.ljust(width)}  {_cell(value)}\n")


def _user_dict(user: Any) -> dict[str, object]:
    # Never the password hash: the CLI shows what an admin may see.
    return {
        "username": user.display_username,
        "key": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "admin": bool(user.is_admin),
        "disabled": bool(user.disabled),
        "deleting_since": _time(user.deleting_since),
        "groups": user.group_names(),
        "source": user.source,
        "has_password": user.password_hash is not None,
        "failed_attempts": user.total_failures(),
        "locked": bool(user.locked),
        "locked_until": _time(user.locked_until),
        "created_at": _time(user.created_at),
        "updated_at": _time(user.updated_at),
    }


def _group_dict(group: Any) -> dict[str, object]:
    return {
        "name": group.display_name,
        "key": group.name,
        "description": group.description,
        "disabled": bool(group.disabled),
        "source": group.source,
        "created_at": _time(group.created_at),
    }


def _app_dict(app: Any) -> dict[str, object]:
    from idp_core.apps import provider_arn, role_arn

    return {
        "name": app.name,
        "display_name": app.display_name,
        "kind": app.kind,
        "account_id": app.account_id,
        "provider_name": app.provider_name,
        "provider_arn": provider_arn(app),
        "roles": [
            {"role": mapping.role, "role_arn": role_arn(app.account_id, mapping.role), "group": mapping.group}
            for mapping in app.roles
        ],
        "session_duration": int(app.session_duration),
        "relay_state": app.relay_state,
        "acs_url": app.acs_url,
        "audience": app.audience,
        "disabled": bool(app.disabled),
        "adaptive_policy": app.adaptive_policy,
        "created_at": _time(app.created_at),
    }


def _directory_dict(settings: Any, item: Any) -> dict[str, object]:
    # Never the bind password or its ciphertext: only whether one is stored.
    return {
        "name": settings.name,
        "display_name": settings.display_name,
        "type": settings.kind,
        "urls": list(settings.urls),
        "start_tls": settings.start_tls,
        "connection": settings.connection_security,
        "ca_certificate": settings.ca_cert_pem is not None,
        "verify_certificates": settings.verify_certificates,
        "bind_dn": settings.bind_dn,
        "bind_password_stored": bool(item.bind_password),
        "bases": list(settings.bases),
        "user_filter": settings.user_filter,
        "search_filter": settings.search_filter,
        "attribute_map": settings.mapping.as_dict(),
        "group_lookup": settings.group_lookup,
        "group_base": settings.group_base,
        "group_member_attribute": settings.group_member_attribute,
        **{switch: getattr(settings, switch) for switch in DIRECTORY_SWITCHES},
        "schedule": settings.schedule,
        "last_import": json.loads(item.last_run) if item.last_run else None,
        "created_at": _time(item.created_at),
        "updated_at": _time(item.updated_at),
    }


def _roles(app: Mapping[str, object]) -> list[dict[str, str]]:
    return cast(list[dict[str, str]], app["roles"])


# ---------------------------------------------------------------- input helpers


def _read_password(
    stdin: TextIO, err: TextIO, option: str = "--password-stdin", prompt: str = "Password"
) -> str:
    """The secret from standard input: a prompt without echo on a terminal, else the first line."""
    if stdin.isatty():
        return getpass.getpass(f"{prompt}: ", stream=err)
    text = stdin.read()
    # Only the line break a shell or ``echo`` adds is removed; other whitespace is part of the password.
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if "\n" in text:
        raise UsageError(f"{option} expects a single line on standard input.")
    if not text:
        raise UsageError(f"{option} read an empty password from standard input.")
    return text


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
        with open(path, "rb") as handle:
            data = handle.read(MAX_CA_CERT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the CA certificate {path!r}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CA_CERT_BYTES:
        raise UsageError(f"the CA certificate {path!r} is larger than {MAX_CA_CERT_BYTES // 1024} KiB.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"the CA certificate {path!r} is not PEM text.") from exc


def _role_mappings(raw: Sequence[str]) -> list[tuple[str, str]]:
    mappings = []
    for item in raw:
        # Role names may contain "=" but group names may not, so the last "=" separates them.
        role, separator, group = item.rpartition("=")
        if not separator or not role.strip() or not group.strip():
            raise UsageError(f"--role expects ROLE_NAME=GROUP (or ROLE_ARN=GROUP), got {item!r}.")
        mappings.append((role.strip(), group.strip()))
    return mappings


def _methods(raw: str, option: str) -> tuple[str, ...]:
    """``totp,sms`` -> ("totp", "sms"), checked against the known methods."""
    from idp_core.mfa import METHODS

    methods = tuple(dict.fromkeys(item.strip().lower() for item in raw.split(",") if item.strip()))
    if not methods:
        raise UsageError(f"{option} expects a comma-separated list of methods: {', '.join(METHODS)}.")
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        raise UsageError(f"{option}: unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}.")
    return methods


def _countries(raw: str) -> tuple[str, ...]:
    codes = tuple(dict.fromkeys(item.strip().upper() for item in raw.split(",") if item.strip()))
    bad = [code for code in codes if len(code) != 2 or not code.isascii() or not code.isalpha()]
    if not codes or bad:
        raise UsageError(
            "--sms-countries expects two-letter country codes such as US,GB"
            + (f"; got {bad[0]!r}." if bad else ".")
        )
    return codes


def _read_token_file(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"Cannot read the token file {path}: {exc.strerror}.") from exc
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise UsageError(f"The token file {path} is larger than 1 MB; split it into smaller files.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"The token file {path} is not UTF-8 text.") from exc


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
        "created_at": _time(factor.created_at),
        "confirmed_at": _time(factor.confirmed_at),
        "last_used_at": _time(factor.last_used_at),
    }


def _device_dict(device: Any, user: Any, now: float) -> dict[str, object]:
    from idp_core.adaptive.devices import is_trusted

    return {
        "id": device.device_id,
        "name": device.name,
        "browser": device.browser,
        "os": device.os,
        "first_seen": _time(device.first_seen_at),
        "last_seen": _time(device.last_seen_at),
        "last_ip": device.last_ip,
        # A trust that a factor change or a disabling ended is no trust, whatever its end date.
        "trusted_until": _time(device.trusted_until) if is_trusted(device, user, now) else None,
    }


def _token_dict(token: Any) -> dict[str, object]:
    return {
        "serial": token.serial,
        "kind": token.kind,
        "digits": int(token.digits),
        "period": int(token.period) if token.kind == "totp" else None,
        "assigned_to": token.assigned_to,
        "imported_at": _time(token.imported_at),
    }


def _mfa_settings_dict(settings: Any) -> dict[str, object]:
    from dataclasses import asdict

    raw = asdict(settings)
    return {name: list(value) if isinstance(value, tuple) else value for name, value in raw.items()}


# ---------------------------------------------------------------- commands


class Cli:
    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.stdin = stdin
        from idp_core.audit import AuditContext

        self.context = AuditContext(actor=f"cli:{_os_user()}")

    # users

    def user_add(self) -> None:
        from idp_core import accounts

        a = self.args
        password = _read_password(self.stdin, self.err) if a.password_stdin else None
        user = accounts.create_user(
            a.username,
            password=password,
            email=a.email,
            display_name=a.display_name,
            groups=a.group,
            is_admin=a.admin,
            context=self.context,
        )
        if password is None:
            self.out.write(
                f"Created user {user.display_username} without a password; set one with "
                f"`idp user set-password {user.display_username} --password-stdin`.\n"
            )
        else:
            self.out.write(f"Created user {user.display_username}.\n")

    def user_list(self) -> None:
        from idp_core import accounts

        users = [_user_dict(user) for user in accounts.list_users()]
        if self.args.json:
            _json(self.out, users)
            return
        _table(
            self.out,
            ["USERNAME", "NAME", "EMAIL", "ADMIN", "DISABLED", "LOCKED", "GROUPS"],
            [
                [
                    u["username"],
                    u["display_name"],
                    u["email"],
                    u["admin"],
                    u["disabled"],
                    u["locked"],
                    u["groups"],
                ]
                for u in users
            ],
        )

    def user_show(self) -> None:
        from idp_core import accounts

        user = _user_dict(accounts.get_user(self.args.username))
        if self.args.json:
            _json(self.out, user)
        else:
            _details(self.out, user)

    def user_disable(self) -> None:
        from idp_core import accounts

        user = accounts.set_user_disabled(self.args.username, True, context=self.context)
        self.out.write(f"Disabled user {user.display_username}; their sessions have ended.\n")

    def user_enable(self) -> None:
        from idp_core import accounts

        user = accounts.set_user_disabled(self.args.username, False, context=self.context)
        self.out.write(f"Enabled user {user.display_username}.\n")

    def user_delete(self) -> None:
        from idp_core import accounts

        deletion = accounts.delete_user(self.args.username, context=self.context)
        if deletion.user_existed:
            self.out.write(f"Deleted user {deletion.display_username} ({deletion.summary()}).\n")
        else:
            self.out.write(
                f"There was no user {deletion.display_username}; removed what an earlier deletion "
                f"left ({deletion.summary()}).\n"
            )

    def user_unlock(self) -> None:
        from idp_core import accounts

        user = accounts.unlock_user(self.args.username, context=self.context)
        self.out.write(f"Unlocked user {user.display_username}; failed attempts reset.\n")

    def user_set_password(self) -> None:
        from idp_core import accounts

        password = _read_password(self.stdin, self.err)
        from idp_core.adaptive.enforce import Mailer

        user = accounts.reset_password(
            self.args.username, password, context=self.context, mailer=Mailer.for_settings(self.args.settings)
        )
        self.out.write(
            f"Set a new password for {user.display_username}; their sessions ended and their devices "
            "are no longer trusted.\n"
        )

    def user_groups(self) -> None:
        from idp_core import accounts

        groups = [] if self.args.clear else self.args.group
        accounts.set_user_groups(self.args.username, groups, context=self.context)
        user = accounts.get_user(self.args.username)
        self.out.write(f"Groups of {user.display_username}: {_cell(user.group_names())}\n")

    # groups

    def group_add(self) -> None:
        from idp_core import accounts

        group = accounts.create_group(self.args.name, description=self.args.description, context=self.context)
        self.out.write(f"Created group {group.display_name}.\n")

    def group_list(self) -> None:
        from idp_core import accounts

        groups = [_group_dict(group) for group in accounts.list_groups()]
        if self.args.json:
            _json(self.out, groups)
            return
        _table(
            self.out,
            ["NAME", "DISABLED", "SOURCE", "DESCRIPTION"],
            [[g["name"], g["disabled"], g["source"], g["description"]] for g in groups],
        )

    def group_disable(self) -> None:
        from idp_core import accounts

        group = accounts.set_group_disabled(self.args.name, True, context=self.context)
        self.out.write(f"Disabled group {group.display_name}; it no longer grants app roles.\n")

    def group_enable(self) -> None:
        from idp_core import accounts

        group = accounts.set_group_disabled(self.args.name, False, context=self.context)
        self.out.write(f"Enabled group {group.display_name}.\n")

    # apps

    def app_add_aws(self) -> None:
        from idp_core import apps

        a = self.args
        app = apps.create_aws_app(
            a.name,
            account_id=a.account_id,
            roles=_role_mappings(a.role),
            session_duration=a.session_duration,
            relay_state=a.relay_state,
            provider_name=a.provider_name,
            acs_url=a.acs_url,
            display_name=a.display_name,
            context=self.context,
        )
        self.out.write(
            f"Created AWS app {app.name}. In account {app.account_id}, create the IAM SAML provider "
            f"{app.provider_name!r} from the IdP metadata (`idp metadata`) and let each role trust it.\n"
        )

    def app_list(self) -> None:
        from idp_core import apps

        items = [_app_dict(app) for app in apps.list_apps()]
        if self.args.json:
            _json(self.out, items)
            return
        _table(
            self.out,
            ["NAME", "KIND", "ACCOUNT", "DISABLED", "ROLES"],
            [
                [
                    i["name"],
                    i["kind"],
                    i["account_id"],
                    i["disabled"],
                    [f"{r['role']}={r['group']}" for r in _roles(i)],
                ]
                for i in items
            ],
        )

    def app_show(self) -> None:
        from idp_core import apps

        app = _app_dict(apps.get_app(self.args.name))
        if self.args.json:
            _json(self.out, app)
            return
        roles = _roles(app)
        del app["roles"]
        _details(self.out, app)
        _table(
            self.out, ["ROLE", "GROUP", "ROLE ARN"], [[r["role"], r["group"], r["role_arn"]] for r in roles]
        )

    def app_delete(self) -> None:
        from idp_core import apps

        app = apps.get_app(self.args.name)
        apps.delete_app(self.args.name, context=self.context)
        self.out.write(f"Deleted app {app.name}.\n")

    # second factors

    def _data_key_id(self) -> str:
        key_id: str | None = self.args.settings.data_key_id
        if not key_id:
            raise UsageError(
                "The data key is not known: redeploy the stack so that it has the DataKeyId output."
            )
        return key_id

    def policy_set(self) -> None:
        a = self.args
        if a.mfa is None and a.methods is None and a.adaptive is None:
            raise UsageError(
                "one of the arguments --mfa --methods --adaptive is required (see `idp policy set --help`)"
            )
        methods = _methods(a.methods, "--methods") if a.methods is not None else None
        from idp_core.mfa import policy

        app = policy.set_app_policy(
            a.app,
            mfa_required=None if a.mfa is None else a.mfa == "required",
            methods=methods,
            adaptive=a.adaptive,
            context=self.context,
        )
        self._show_policy(app)

    def policy_show(self) -> None:
        from idp_core import apps

        self._show_policy(apps.get_app(self.args.app))

    def _show_policy(self, app: Any) -> None:
        from idp_core.mfa import policy

        accepted = policy.app_methods(app, policy.load_settings())
        payload = {
            "app": app.name,
            "mfa_required": bool(app.mfa_required),
            "methods": sorted(app.mfa_methods) if app.mfa_methods else None,
            "accepted_methods": list(accepted),
            "adaptive_policy": app.adaptive_policy,
        }
        if getattr(self.args, "json", False):
            _json(self.out, payload)
            return
        _details(
            self.out,
            {
                "app": payload["app"],
                "mfa": "required" if payload["mfa_required"] else "off",
                "methods": payload["methods"] or "(every method the MFA settings allow)",
                "accepted now": payload["accepted_methods"],
                "adaptive policy": payload["adaptive_policy"] or "none",
            },
        )

    # adaptive authentication

    def adaptive_save(self) -> None:
        """``adaptive create`` and ``adaptive update``: options left out keep their value."""
        import dataclasses

        from idp_core.adaptive import policies

        a = self.args
        create = a.action == "create"
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
        saved = policies.save_policy(
            dataclasses.replace(current, **changes), create=create, context=self.context
        )
        self._show_adaptive(saved)

    def adaptive_show(self) -> None:
        from idp_core.adaptive import policies

        self._show_adaptive(policies.get_policy(self.args.name))

    def adaptive_list(self) -> None:
        from idp_core.adaptive import policies

        items = [dataclasses.asdict(policy) for policy in policies.list_policies()]
        if self.args.json:
            _json(self.out, items)
            return
        _table(
            self.out,
            [
                "NAME",
                "ALLOW",
                "DENY",
                "OUTSIDE ALLOW",
                "DEVICES",
                "ON EXCEED",
                "NEW DEVICE",
                "NOTIFY",
                "TRUST DAYS",
            ],
            [
                (
                    p["name"],
                    p["allow_cidrs"] or "-",
                    p["deny_cidrs"] or "-",
                    p["outside_allow"],
                    p["max_devices"] if p["register_devices"] else "not registered",
                    p["on_exceed"],
                    p["on_new_device"],
                    p["notify_new_sign_in"],
                    p["trust_days"] or "off",
                )
                for p in items
            ],
        )

    def adaptive_delete(self) -> None:
        from idp_core.adaptive import policies

        policies.delete_policy(self.args.name, context=self.context)
        self.out.write(f"Deleted the adaptive policy {self.args.name!r}.\n")

    def _show_adaptive(self, policy: Any) -> None:
        payload = dataclasses.asdict(policy)
        if getattr(self.args, "json", False):
            _json(self.out, payload)
            return
        _details(self.out, {name.replace("_", " "): value for name, value in payload.items()})

    # devices

    def device_list(self) -> None:
        from idp_core import accounts
        from idp_core.adaptive import devices
        from idp_core.clock import SYSTEM_CLOCK

        user = accounts.get_user(self.args.username)
        now = SYSTEM_CLOCK.now()
        items = [_device_dict(device, user, now) for device in devices.list_devices(user.username)]
        if self.args.json:
            _json(self.out, items)
            return
        _table(
            self.out,
            ["ID", "NAME", "BROWSER", "OS", "FIRST SEEN", "LAST SEEN", "LAST IP", "TRUSTED UNTIL"],
            [
                [
                    i["id"],
                    i["name"],
                    i["browser"],
                    i["os"],
                    i["first_seen"],
                    i["last_seen"],
                    i["last_ip"],
                    i["trusted_until"],
                ]
                for i in items
            ],
        )

    def device_remove(self) -> None:
        from idp_core import accounts
        from idp_core.adaptive import devices

        user = accounts.get_user(self.args.username)
        device = devices.remove(user.username, self.args.device_id, context=self.context)
        self.out.write(
            f"Removed device {device.device_id} ({device.name}) of {user.display_username}; "
            "it no longer counts against the device limit.\n"
        )

    def device_untrust(self) -> None:
        from idp_core import accounts
        from idp_core.adaptive import devices

        user = accounts.get_user(self.args.username)
        device = devices.untrust(user.username, self.args.device_id, context=self.context)
        self.out.write(
            f"Device {device.device_id} ({device.name}) of {user.display_username} is no longer trusted.\n"
        )

    def mfa_settings(self) -> None:
        import dataclasses

        from idp_core.mfa import policy

        a = self.args
        current = policy.load_settings()
        changes: dict[str, Any] = {}
        if a.default is not None:
            chosen = _methods(a.default, "--default")
            if len(chosen) != 1:
                raise UsageError("--default takes one method, e.g. --default totp.")
            changes["default_method"] = chosen[0]
        if a.allowed is not None:
            changes["allowed_methods"] = _methods(a.allowed, "--allowed")
        if a.enrol_at_sign_in is not None:
            changes["enrol_at_sign_in"] = a.enrol_at_sign_in
        if a.sms_countries is not None:
            changes["sms"] = dataclasses.replace(current.sms, allowed_countries=_countries(a.sms_countries))
        if changes:
            current = policy.save_settings(dataclasses.replace(current, **changes), context=self.context)
        shown = _mfa_settings_dict(current)
        if a.json:
            _json(self.out, shown)
            return
        sms = cast(dict[str, object], shown.pop("sms", {}))
        _details(self.out, {**shown, **{f"sms.{name}": value for name, value in sms.items()}})

    def token_import(self) -> None:
        text = _read_token_file(self.args.file)
        from idp_core import aws
        from idp_core.mfa import tokens

        serials = tokens.import_csv(text, kms=aws.client("kms"), key_id=self._data_key_id())
        self.out.write(f"Imported {len(serials)} token(s): {_cell(serials)}\n")

    def token_list(self) -> None:
        from idp_core.mfa import tokens

        items = [_token_dict(token) for token in tokens.list_tokens()]
        if self.args.json:
            _json(self.out, items)
            return
        _table(
            self.out,
            ["SERIAL", "KIND", "DIGITS", "PERIOD", "ASSIGNED TO", "IMPORTED"],
            [
                [i["serial"], i["kind"], i["digits"], i["period"], i["assigned_to"], i["imported_at"]]
                for i in items
            ],
        )

    def token_assign(self) -> None:
        from idp_core import accounts, aws
        from idp_core.mfa import tokens

        user = accounts.get_user(self.args.username)
        factor = tokens.assign(
            self.args.serial,
            user.username,
            kms=aws.client("kms"),
            key_id=self._data_key_id(),
            context=self.context,
        )
        self.out.write(
            f"Assigned token {self.args.serial} to {user.display_username} as factor {factor.factor_id}.\n"
        )

    def user_factors(self) -> None:
        from idp_core import accounts
        from idp_core.mfa import factors

        user = accounts.get_user(self.args.username)
        items = [_factor_dict(factor) for factor in factors.list_factors(user.username)]
        if self.args.json:
            _json(self.out, items)
            return
        _table(
            self.out,
            ["ID", "KIND", "LABEL", "STATUS", "DEFAULT", "DETAIL", "LAST USED"],
            [
                [
                    i["id"],
                    i["kind"],
                    i["label"],
                    i["status"],
                    i["default"],
                    i["phone"] or i["email"] or i["token_serial"] or _codes_left(i["backup_codes_left"]),
                    i["last_used_at"],
                ]
                for i in items
            ],
        )

    # metadata and audit

    def metadata(self) -> None:
        import boto3

        from idp_core.clock import SYSTEM_CLOCK
        from idp_local.idp_metadata import idp_metadata_xml

        xml = idp_metadata_xml(self.args.settings, boto3.client("kms"), SYSTEM_CLOCK)
        self.out.write(xml if xml.endswith("\n") else xml + "\n")

    def audit(self) -> None:
        from idp_core import audit

        if not 1 <= self.args.days <= 400:
            raise UsageError("--days must be between 1 and 400.")
        events = audit.recent(days=self.args.days, limit=self.args.limit)
        rows = [
            {
                "at": _time(event.at),
                "type": event.type,
                "outcome": event.outcome,
                "actor": event.actor,
                "subject": event.subject,
                "source_ip": event.source_ip,
                "details": dict(event.details.as_dict()) if event.details else {},
            }
            for event in events
        ]
        if self.args.json:
            _json(self.out, rows)
            return
        _table(
            self.out,
            ["TIME", "EVENT", "OUTCOME", "ACTOR", "SUBJECT", "SOURCE IP"],
            [[r["at"], r["type"], r["outcome"], r["actor"], r["subject"], r["source_ip"]] for r in rows],
        )

    # directories (LDAP / Active Directory user stores)

    def directory_save(self) -> None:
        """``directory add-ldap`` and ``directory update``: options left out keep their value
        (on add: the defaults); the bind password changes only with --bind-password-stdin."""
        from idp_core.directories import store
        from idp_core.directories.settings import DirectorySettings

        a = self.args
        create = a.action == "add-ldap"
        password = (
            _read_password(self.stdin, self.err, "--bind-password-stdin", "Bind password")
            if a.bind_password_stdin
            else None
        )
        if create:
            settings = DirectorySettings(
                **self._directory_changes(None),
                name=a.name,
                display_name=a.display_name or a.name,
                kind=a.type,
                urls=tuple(a.url),
                bind_dn=a.bind_dn,
                bases=tuple(a.base),
            )
        else:
            current = store.load(a.name)
            settings = dataclasses.replace(current, **self._directory_changes(current))
        from idp_core import aws

        saved = store.save_directory(
            settings,
            create=create,
            bind_password=password,
            kms=aws.client("kms") if password is not None else None,
            key_id=self._data_key_id() if password is not None else None,
            context=self.context,
        )
        self._show_directory(saved)

    def _directory_changes(self, current: Any) -> dict[str, Any]:
        """The settings the options name; ``current`` (None on add) supplies the attribute
        mapping that ``--map`` changes field by field."""
        from idp_core.directories.settings import AttributeMap

        a = self.args
        changes: dict[str, Any] = {}
        if current is not None:
            for option, name in (("display_name", "display_name"), ("type", "kind"), ("bind_dn", "bind_dn")):
                if getattr(a, option) is not None:
                    changes[name] = getattr(a, option)
            if a.url:
                changes["urls"] = tuple(a.url)
            if a.base:
                changes["bases"] = tuple(a.base)
        kind = changes.get("kind", current.kind if current is not None else a.type)
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
        elif (
            current is not None and kind != current.kind and current.user_filter in ("uid", "sAMAccountName")
        ):
            changes["user_filter"] = None  # the new type's usual filter
        if a.ca_cert is not None:
            changes["ca_cert_pem"] = _read_ca_cert(a.ca_cert)
        if a.starttls is not None:
            changes["start_tls"] = a.starttls
        for option, name in (("group_lookup", "group_lookup"), ("group_base", "group_base")):
            if getattr(a, option) is not None:
                changes[name] = getattr(a, option)
        if a.group_member_attribute is not None:
            changes["group_member_attribute"] = a.group_member_attribute
        for switch in DIRECTORY_SWITCHES:
            if getattr(a, switch) is not None:
                changes[switch] = getattr(a, switch)
        if a.schedule is not None:
            changes["schedule"] = None if a.schedule.strip().lower() == "none" else a.schedule
        return changes

    def directory_list(self) -> None:
        from idp_core.directories import store

        items = [
            _directory_dict(settings, store.get_directory(settings.name))
            for settings in store.list_directories()
        ]
        if self.args.json:
            _json(self.out, items)
            return
        _table(
            self.out,
            ["NAME", "TYPE", "DISPLAY NAME", "URLS", "ACTIVATE", "SYNC USERS", "SCHEDULE"],
            [
                (
                    i["name"],
                    i["type"],
                    i["display_name"],
                    i["urls"],
                    i["activate"],
                    i["sync_users"],
                    i["schedule"],
                )
                for i in items
            ],
        )

    def directory_show(self) -> None:
        from idp_core.directories import store

        self._show_directory(store.load(self.args.name))

    def _show_directory(self, settings: Any) -> None:
        from idp_core.directories import store

        payload = _directory_dict(settings, store.get_directory(settings.name))
        entries = store.entries_needing_attention(settings.name)
        if getattr(self.args, "json", False):
            _json(self.out, {**payload, "entries": [entry.as_dict() for entry in entries]})
            return
        mapping = cast(dict[str, str], payload.pop("attribute_map"))
        _details(
            self.out,
            {
                **{name.replace("_", " "): value for name, value in payload.items()},
                **{f"map {name.replace('_', ' ')}": value for name, value in mapping.items()},
            },
        )
        if entries:
            # Name collisions (S27) and failed sign-ins of entries not registered here (S29).
            self.out.write(
                "\nentries that need an administrator (idp directory clear-entry NAME ENTRY_ID):\n"
            )
            _table(
                self.out,
                ["ENTRY ID", "USERNAME", "TYPED", "COLLIDES WITH", "REASON", "FAILURES", "LOCKED"],
                [
                    (
                        entry.entry_id,
                        entry.username or "",
                        entry.typed or "",
                        entry.collision_with or "",
                        entry.collision_reason or "",
                        entry.failures,
                        "yes" if entry.locked else "no",
                    )
                    for entry in entries
                ],
            )

    def directory_clear_entry(self) -> None:
        from idp_core.directories import store

        store.clear_entry(self.args.name, self.args.entry_id, context=self.context)
        self.out.write(f"Cleared the entry {self.args.entry_id!r} of the directory {self.args.name!r}.\n")

    def directory_delete(self) -> None:
        from idp_core.directories import store

        store.delete_directory(self.args.name, context=self.context)
        self.out.write(f"Deleted the directory {self.args.name!r}; its bind password is gone with it.\n")

    def directory_sync(self) -> int | None:
        """Import now: only what changed since the last run, or everyone with ``--full``
        (which also disables users the directory no longer has). It runs here, under the lock
        of the scheduled imports: exit 1 while another run holds it."""
        from idp_core import aws
        from idp_core.directories import scheduling
        from idp_core.directories.welcome import WelcomeMail
        from idp_core.errors import Conflict

        try:
            counts = scheduling.run_import_now(
                self.args.name,
                full=self.args.full,
                kms=aws.client("kms"),
                context=self.context,
                welcome=WelcomeMail.for_settings(self.args.settings),
            )
        except Conflict as exc:
            # Not bad input: the same command succeeds once the other run has finished.
            self.err.write(f"idp: {exc.message}\n")
            return EXIT_FAILURE
        payload = counts.as_dict()
        if self.args.json:
            _json(self.out, payload)
            return None
        _details(
            self.out,
            {
                "run": "full" if counts.full else "incremental",
                **{key: payload[key] for key in ("created", "updated", "disabled", "unchanged", "errors")},
                "not registered": counts.not_registered,
                "groups created": counts.groups_created,
                "welcome e-mails": f"{counts.welcome_sent} sent, {counts.welcome_failed} failed",
                "seconds": round(counts.finished_at - counts.started_at, 2),
            },
        )
        for problem in counts.problems:
            self.out.write(f"problem: {problem}\n")
        return None

    def directory_test(self) -> int:
        """The admin's tests of a stored directory, one line each; exit 0 only if every test
        that ran passed. A test that needs what failed before it does not run."""
        from idp_core import aws
        from idp_core.directories import client, store
        from idp_core.directories.errors import DirectoryError

        a = self.args
        if a.password_stdin and not a.user:
            raise UsageError("--password-stdin is the password of --user U; give --user too.")
        user_password = _read_password(self.stdin, self.err) if a.password_stdin else None
        item = store.get_directory(a.name)
        settings = store.settings_of(item)
        bind_password = store.bind_password(item, kms=aws.client("kms")) or ""
        tests: list[tuple[str, Callable[[], Any]]] = [
            ("connection", lambda: client.test_connection(settings)),
            ("bind", lambda: client.test_service_bind(settings, bind_password)),
        ]
        if a.user:
            tests.append(
                ("attributes", lambda: client.test_attribute_mapping(settings, bind_password, a.user))
            )
        if a.user and user_password is not None:
            tests.append(
                ("sign-in", lambda: client.test_configuration(settings, bind_password, a.user, user_password))
            )
        passed = True
        for label, run in tests:
            if not passed and label in ("bind", "attributes", "sign-in"):
                self.out.write(f"{label:<10}  not run: it needs the tests above to pass\n")
                continue
            try:
                result = run()
            except DirectoryError as exc:
                passed = False
                self.out.write(f"{label:<10}  FAILED: {exc.message}\n")
                continue
            self.out.write(f"{label:<10}  ok: {result.message}\n")
            for name, value in result.attributes.items():
                self.out.write(f"{'':<10}    {name.replace('_', ' ')}: {_cell(value)}\n")
        return EXIT_OK if passed else EXIT_FAILURE


def _codes_left(count: object) -> str | None:
    return None if count is None else f"{count} codes left"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="idp", description="Administer the serverless IdP.")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--local", action="store_true", help="act on the running local stack (idp local)")
    target.add_argument("--stack", metavar="NAME", help="act on the deployed CloudFormation stack NAME")
    parser.add_argument(
        "--region",
        metavar="REGION",
        help="the AWS region of --stack (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    local = commands.add_parser("local", help="run the local stack (same as make dev)")
    local.add_argument("--host", help="address to listen on (default $IDP_HOST or 127.0.0.1)")
    local.add_argument("--port", type=int, help="port to listen on (default $IDP_PORT or 8000)")
    local.add_argument(
        "--tick-seconds",
        type=int,
        default=None,
        metavar="N",
        help="deliver the scheduled imports' tick every N seconds, as EventBridge does (default 60; 0: off)",
    )
    local.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (execution environments) per function (default $IDP_WORKERS or 4)",
    )
    local.set_defaults(run="local", needs_target=False)

    # users
    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    user.required = True
    add = user.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--group", action="append", default=[], metavar="G", help="a group (repeatable)")
    add.add_argument("--admin", action="store_true", help="make the user an admin")
    add.add_argument("--email")
    add.add_argument("--display-name")
    add.set_defaults(run="user_add")
    _listing(user.add_parser("list", help="list users"), "user_list")
    _listing(user.add_parser("show", help="show one user"), "user_show").add_argument("username")
    for action, text in [
        ("disable", "disable a user and end their sessions"),
        ("enable", "enable a user"),
        ("delete", "delete a user"),
        ("unlock", "lift a lockout and reset failed attempts"),
    ]:
        user.add_parser(action, help=text).set_defaults(run=f"user_{action}")
        user.choices[action].add_argument("username")
    set_password = user.add_parser("set-password", help="set a user's password (from standard input)")
    set_password.add_argument("username")
    set_password.add_argument("--password-stdin", action="store_true", required=True)
    set_password.set_defaults(run="user_set_password")
    groups = user.add_parser("groups", help="replace a user's groups")
    groups.add_argument("username")
    which = groups.add_mutually_exclusive_group(required=True)
    which.add_argument("--group", action="append", metavar="G", help="a group (repeatable)")
    which.add_argument("--clear", action="store_true", help="remove the user from every group")
    groups.set_defaults(run="user_groups")
    _listing(user.add_parser("factors", help="list a user's second factors (never secrets)"), "user_factors")
    user.choices["factors"].add_argument("username")

    # groups
    group = commands.add_parser("group", help="manage groups").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    group.required = True
    group_add = group.add_parser("add", help="create a group")
    group_add.add_argument("name")
    group_add.add_argument("--description")
    group_add.set_defaults(run="group_add")
    _listing(group.add_parser("list", help="list groups"), "group_list")
    for action in ("disable", "enable"):
        group.add_parser(action, help=f"{action} a group").set_defaults(run=f"group_{action}")
        group.choices[action].add_argument("name")

    # apps
    app = commands.add_parser("app", help="manage SAML apps").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    app.required = True
    aws = app.add_parser("add-aws", help="add an AWS console app (one account)")
    aws.add_argument("name")
    aws.add_argument("--account-id", required=True)
    aws.add_argument(
        "--role",
        action="append",
        required=True,
        metavar="ROLE_NAME=GROUP",
        help="a role for a group (repeatable)",
    )
    aws.add_argument("--session-duration", type=int, default=3600, metavar="SECONDS")
    aws.add_argument("--relay-state", metavar="URL")
    aws.add_argument("--provider-name", metavar="NAME")
    aws.add_argument("--acs-url", metavar="URL")
    aws.add_argument("--display-name")
    aws.set_defaults(run="app_add_aws")
    _listing(app.add_parser("list", help="list apps"), "app_list")
    _listing(app.add_parser("show", help="show one app"), "app_show").add_argument("name")
    app.add_parser("delete", help="delete an app").set_defaults(run="app_delete")
    app.choices["delete"].add_argument("name")

    # second factors
    policy = commands.add_parser("policy", help="an app's second-factor policy").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    policy.required = True
    policy_set = policy.add_parser(
        "set", help="an app's second factor and adaptive policy (options left out stay as they are)"
    )
    policy_set.add_argument("app")
    policy_set.add_argument("--mfa", choices=["required", "off"], help="require a second factor, or not")
    policy_set.add_argument(
        "--methods", metavar="M,...", help="the methods the app accepts (totp,sms,email,backup,token)"
    )
    policy_set.add_argument(
        "--adaptive",
        metavar="NAME",
        help="the adaptive policy of the app (idp adaptive), or none to remove it",
    )
    policy_set.set_defaults(run="policy_set")
    _listing(policy.add_parser("show", help="show an app's policy"), "policy_show").add_argument("app")

    mfa = commands.add_parser("mfa", help="second-factor settings").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    mfa.required = True
    settings = _listing(mfa.add_parser("settings", help="show or change the MFA settings"), "mfa_settings")
    settings.add_argument("--default", metavar="METHOD", help="the method offered first")
    settings.add_argument("--allowed", metavar="M,...", help="the methods users may enrol")
    settings.add_argument(
        "--enrol-at-sign-in",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="users without a factor must enrol at their next sign-in",
    )
    settings.add_argument("--sms-countries", metavar="CC,...", help="countries SMS codes may be sent to")

    token = commands.add_parser("token", help="hardware OATH tokens").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    token.required = True
    token_import = token.add_parser("import", help="import tokens from a CSV file")
    token_import.add_argument(
        "file", metavar="FILE", help="CSV: serial, base32 secret, totp|hotp, digits, period"
    )
    token_import.set_defaults(run="token_import")
    _listing(token.add_parser("list", help="list imported tokens"), "token_list")
    assign = token.add_parser("assign", help="assign a token to a user")
    assign.add_argument("serial")
    assign.add_argument("username")
    assign.set_defaults(run="token_assign")

    adaptive = commands.add_parser(
        "adaptive", help="adaptive authentication policies (IP lists, devices)"
    ).add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    adaptive.required = True
    for action, text in (("create", "create a policy"), ("update", "change a policy; other options stay")):
        saving = _listing(adaptive.add_parser(action, help=text), "adaptive_save")
        saving.add_argument("name")
        _adaptive_options(saving)
    _listing(adaptive.add_parser("list", help="list the policies"), "adaptive_list")
    _listing(adaptive.add_parser("show", help="show one policy"), "adaptive_show").add_argument("name")
    delete_policy = adaptive.add_parser("delete", help="delete a policy")
    delete_policy.add_argument("name")
    delete_policy.set_defaults(run="adaptive_delete")

    device = commands.add_parser("device", help="the devices users sign in from").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    device.required = True
    _listing(device.add_parser("list", help="list a user's devices"), "device_list").add_argument("username")
    for action, text in (
        ("remove", "forget a device; it frees a place under the device limit"),
        ("untrust", "end a device's trust; it no longer skips the second factor"),
    ):
        device.add_parser(action, help=text).set_defaults(run=f"device_{action}")
        device.choices[action].add_argument("username")
        device.choices[action].add_argument("device_id", metavar="DEVICE_ID")

    directory = commands.add_parser("directory", help="LDAP and Active Directory user stores").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    directory.required = True
    for action, text in (
        ("add-ldap", "add an LDAP or Active Directory user store (saving does not connect)"),
        ("update", "change a user store; options left out stay as they are"),
    ):
        saving = _listing(directory.add_parser(action, help=text), "directory_save")
        saving.add_argument("name")
        _directory_options(saving, adding=action == "add-ldap")
    _listing(directory.add_parser("list", help="list the user stores"), "directory_list")
    _listing(directory.add_parser("show", help="show one user store (never its password)"), "directory_show")
    directory.choices["show"].add_argument("name")
    clear_entry = directory.add_parser(
        "clear-entry", help="forget a resolved name collision, or unlock an entry not registered here"
    )
    clear_entry.add_argument("name")
    clear_entry.add_argument("entry_id", metavar="ENTRY_ID")
    clear_entry.set_defaults(run="directory_clear_entry")
    delete_directory = directory.add_parser("delete", help="delete a user store")
    delete_directory.add_argument("name")
    delete_directory.set_defaults(run="directory_delete")
    test = directory.add_parser("test", help="test a user store's connection, bind, users and sign-in")
    test.add_argument("name")
    test.add_argument("--user", metavar="U", help="also show the mapped attributes of this user")
    test.add_argument(
        "--password-stdin",
        action="store_true",
        help="also sign in as --user with the password read from stdin",
    )
    test.set_defaults(run="directory_test")
    sync = _listing(
        directory.add_parser("sync", help="import the directory's users and groups now"), "directory_sync"
    )
    sync.add_argument("name")
    sync.add_argument(
        "--full", action="store_true", help="read everyone and disable users the directory lost"
    )

    commands.add_parser("metadata", help="print the IdP's SAML metadata XML").set_defaults(run="metadata")
    audit = _listing(commands.add_parser("audit", help="show recent audit events"), "audit")
    audit.add_argument("--days", type=int, default=1)
    audit.add_argument("--limit", type=int, default=100)

    from idp_cli import doctor

    doctor.add_parser(commands)
    return parser


def _adaptive_options(parser: argparse.ArgumentParser) -> None:
    from idp_core.adaptive.policies import ACTIONS, EXCEED_ACTIONS

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


def _directory_options(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    from idp_core.directories.settings import GROUP_LOOKUPS, KINDS

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
    for switch in DIRECTORY_SWITCHES:
        parser.add_argument(
            f"--{switch.replace('_', '-')}",
            dest=switch,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=DIRECTORY_SWITCH_HELP[switch],
        )
    parser.add_argument(
        "--schedule", metavar="EXPR", help="when imports run: rate(1 hour), cron(0 2 * * ? *), or none"
    )


def _listing(parser: argparse.ArgumentParser, run: str) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)
    return parser


# ---------------------------------------------------------------- targets


def _use_local() -> Settings:
    from idp_local.state import StateError, read_state

    try:
        state = read_state()
    except StateError as exc:
        raise UsageError(str(exc)) from exc
    _check_local_alive(state.base_url)
    os.environ.update(state.aws_env())
    return state.settings()


def _check_local_alive(base_url: str) -> None:
    from urllib.error import URLError
    from urllib.request import urlopen

    try:
        with urlopen(f"{base_url}/_local/health", timeout=5):  # noqa: S310 - the loopback URL from the state file.
            return
    except (URLError, OSError, ValueError) as exc:
        raise UsageError(
            f"The local stack at {base_url} does not answer; start it with `idp local` or `make dev`."
        ) from exc


def _use_stack(name: str) -> Settings:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        raise UsageError(
            f"Cannot read the CloudFormation stack {name!r}: {exc.response['Error']['Message']}"
        ) from exc
    except BotoCoreError as exc:
        raise UsageError(f"Cannot reach CloudFormation to read the stack {name!r}: {exc}") from exc
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}
    return settings_from_outputs(name, outputs)


def settings_from_outputs(name: str, outputs: Mapping[str, str]) -> Settings:
    """The settings of the stack ``name`` from its CloudFormation outputs."""
    missing = sorted(key for key in STACK_OUTPUTS if key not in outputs)
    if missing:
        raise UsageError(f"The stack {name!r} has no output {missing[0]}; is it a serverless-idp stack?")
    known = {**STACK_OUTPUTS, **OPTIONAL_STACK_OUTPUTS}
    return Settings.from_env({setting: outputs[key] for key, setting in known.items() if key in outputs})


def _settings_for(args: argparse.Namespace) -> Settings:
    if args.local:
        return _use_local()
    if args.stack:
        return _use_stack(args.stack)
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise UsageError(
            "Choose where to act: --local for the local stack, or --stack NAME for a deployed stack."
        ) from exc


# ---------------------------------------------------------------- entry point


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    stdin = stdin or sys.stdin
    try:
        return _main(argv, out, err, stdin)
    except UsageError as exc:
        err.write(f"idp: {exc}\n")
        return EXIT_USAGE
    except IdpError as exc:
        err.write(f"idp: {exc.message}\n")
        return EXIT_USAGE
    except ConfigurationError as exc:
        err.write(f"idp: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("idp: interrupted\n")
        return 130
    except Exception as exc:
        err.write(f"idp: {_describe_failure(exc)}\n")
        return EXIT_FAILURE


def _describe_failure(exc: Exception) -> str:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from pynamodb.exceptions import PynamoDBException

    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found; configure a profile or use --local."
    if isinstance(exc, ClientError):
        return f"AWS refused the request: {exc.response['Error'].get('Message', exc)}"
    if isinstance(exc, BotoCoreError):
        return f"cannot reach AWS: {exc}"
    if isinstance(exc, PynamoDBException):
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return f"the database call failed: {cause}"
    return f"unexpected error ({type(exc).__name__}): {exc}"


def _main(argv: Sequence[str] | None, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version exit through argparse.
        return int(exc.code or 0)
    if args.run == "local":
        return _run_local(args, out, err)
    if args.region is not None and args.local:
        raise UsageError("--region chooses where --stack is; the local stack's region is in its state file.")
    from idp_cli.region import choose_region

    args.region_choice = choose_region(args.region)
    args.region_choice.apply(os.environ)
    # Commands in their own module (``idp doctor``) find their stack themselves.
    entry: Callable[[argparse.Namespace, TextIO, TextIO], int] | None = getattr(args, "entry", None)
    if entry is not None:
        return entry(args, out, err)

    settings = _settings_for(args)
    from idp_core.models import bind_tables

    bind_tables(settings.tables)
    args.settings = settings
    command: Callable[[], int | None] = getattr(Cli(args, out, err, stdin), args.run)
    status = command()
    return EXIT_OK if status is None else status


def _run_local(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from idp_local.stack import StackError, run
    from idp_local.workers import MAX_WORKERS

    if args.local or args.stack:
        raise UsageError("`idp local` starts the local stack; it takes no --local or --stack.")
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}.")
    if args.tick_seconds is not None and args.tick_seconds < 0:
        raise UsageError(f"--tick-seconds must be 0 (no ticks) or more, got {args.tick_seconds}.")
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be from 1 to {MAX_WORKERS}, got {args.workers}.")
    try:
        return run(args.host, args.port, out=out, tick_seconds=args.tick_seconds, workers=args.workers)
    except StackError as exc:
        err.write(f"idp: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
