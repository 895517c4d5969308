"""``idp directory add-ldap|update|list|show|clear-entry|delete|test|sync``: LDAP and Active
Directory user stores. Their bind passwords are read from standard input, sealed with the
data key, and never shown."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from idp_cli.directory_options import add_settings_options, settings_changes
from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import (
    EXIT_FAILURE,
    EXIT_OK,
    Subcommands,
    UsageError,
    add_noun,
    cell,
    details,
    print_json,
    print_listing,
    read_secret,
    table,
    timestamp,
)
from idp_core import aws
from idp_core.directories import client, scheduling, store
from idp_core.directories.errors import DirectoryError
from idp_core.directories.settings import SWITCHES, DirectorySettings
from idp_core.directories.welcome import WelcomeMail
from idp_core.errors import Conflict


def add_parser(commands: Subcommands) -> None:
    directory = add_noun(commands, "directory", "LDAP and Active Directory user stores")
    for action, text, command in (
        ("add-ldap", "add an LDAP or Active Directory user store (saving does not connect)", add_directory),
        ("update", "change a user store; options left out stay as they are", update_directory),
    ):
        saving = add_command(directory, action, text, command, with_json=True)
        saving.add_argument("name")
        add_settings_options(saving, adding=action == "add-ldap")
    add_command(directory, "list", "list the user stores", list_directories, with_json=True)
    add_command(
        directory, "show", "show one user store (never its password)", show_directory, with_json=True
    ).add_argument("name")
    clear = add_command(
        directory,
        "clear-entry",
        "forget a resolved name collision, or unlock an entry not registered here",
        clear_entry,
    )
    clear.add_argument("name")
    clear.add_argument("entry_id", metavar="ENTRY_ID")
    add_command(directory, "delete", "delete a user store", delete_directory).add_argument("name")
    test = add_command(
        directory, "test", "test a user store's connection, bind, users and sign-in", run_directory_tests
    )
    test.add_argument("name")
    test.add_argument("--user", metavar="U", help="also show the mapped attributes of this user")
    test.add_argument(
        "--password-stdin",
        action="store_true",
        help="also sign in as --user with the password read from stdin",
    )
    sync = add_command(
        directory, "sync", "import the directory's users and groups now", sync_directory, with_json=True
    )
    sync.add_argument("name")
    sync.add_argument(
        "--full", action="store_true", help="read everyone and disable users the directory lost"
    )


def add_directory(cmd: OnStack) -> None:
    _save(cmd, create=True)


def update_directory(cmd: OnStack) -> None:
    _save(cmd, create=False)


def _save(cmd: OnStack, *, create: bool) -> None:
    """``directory add-ldap`` and ``directory update``: options left out keep their value
    (on add: the defaults); the bind password changes only with --bind-password-stdin."""
    a = cmd.args
    password = read_secret(cmd, "--bind-password-stdin", "Bind password") if a.bind_password_stdin else None
    if create:
        settings = DirectorySettings(
            **settings_changes(a, None),
            name=a.name,
            display_name=a.display_name or a.name,
            kind=a.type,
            urls=tuple(a.url),
            bind_dn=a.bind_dn,
            bases=tuple(a.base),
        )
    else:
        current = store.load(a.name)
        settings = dataclasses.replace(current, **settings_changes(a, current))
    saved = store.save_directory(
        settings,
        create=create,
        bind_password=password,
        kms=aws.client("kms") if password is not None else None,
        key_id=cmd.data_key_id() if password is not None else None,
        context=cmd.context,
    )
    _show(cmd, saved)


def list_directories(cmd: OnStack) -> None:
    print_listing(
        cmd,
        [
            _directory_dict(settings, store.get_directory(settings.name))
            for settings in store.list_directories()
        ],
        {
            "NAME": "name",
            "TYPE": "type",
            "DISPLAY NAME": "display_name",
            "URLS": "urls",
            "ACTIVATE": "activate",
            "SYNC USERS": "sync_users",
            "SCHEDULE": "schedule",
        },
    )


def show_directory(cmd: OnStack) -> None:
    _show(cmd, store.load(cmd.args.name))


def _show(cmd: OnStack, settings: DirectorySettings) -> None:
    payload = _directory_dict(settings, store.get_directory(settings.name))
    entries = store.entries_needing_attention(settings.name)
    if cmd.args.json:
        print_json(cmd.out, {**payload, "entries": [entry.as_dict() for entry in entries]})
        return
    mapping = payload.pop("attribute_map")
    details(
        cmd.out,
        {
            **{name.replace("_", " "): value for name, value in payload.items()},
            **{f"map {name.replace('_', ' ')}": value for name, value in mapping.items()},
        },
    )
    if entries:
        # Name collisions (S27) and failed sign-ins of entries not registered here (S29).
        cmd.out.write("\nentries that need an administrator (idp directory clear-entry NAME ENTRY_ID):\n")
        table(
            cmd.out,
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


def _directory_dict(settings: DirectorySettings, item: Any) -> dict[str, Any]:
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
        **{switch: getattr(settings, switch) for switch in SWITCHES},
        "schedule": settings.schedule,
        "last_import": json.loads(item.last_run) if item.last_run else None,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
    }


def clear_entry(cmd: OnStack) -> None:
    store.clear_entry(cmd.args.name, cmd.args.entry_id, context=cmd.context)
    cmd.out.write(f"Cleared the entry {cmd.args.entry_id!r} of the directory {cmd.args.name!r}.\n")


def delete_directory(cmd: OnStack) -> None:
    store.delete_directory(cmd.args.name, context=cmd.context)
    cmd.out.write(f"Deleted the directory {cmd.args.name!r}; its bind password is gone with it.\n")


# ---------------------------------------------------------------- connecting


def sync_directory(cmd: OnStack) -> int:
    """Import now: only what changed since the last run, or everyone with ``--full`` (which
    also disables users the directory no longer has). It runs here, under the lock of the
    scheduled imports: exit 1 while another run holds it."""
    try:
        counts = scheduling.run_import_now(
            cmd.args.name,
            full=cmd.args.full,
            kms=aws.client("kms"),
            context=cmd.context,
            welcome=WelcomeMail.for_settings(cmd.settings),
        )
    except Conflict as exc:
        # Not bad input: the same command succeeds once the other run has finished.
        cmd.err.write(f"idp: {exc.message}\n")
        return EXIT_FAILURE
    payload = counts.as_dict()
    if cmd.args.json:
        print_json(cmd.out, payload)
        return EXIT_OK
    details(
        cmd.out,
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
        cmd.out.write(f"problem: {problem}\n")
    return EXIT_OK


def run_directory_tests(cmd: OnStack) -> int:
    """The admin's tests of a stored directory, one line each; exit 0 only if every test that
    ran passed. A test that needs what failed before it does not run."""
    a = cmd.args
    if a.password_stdin and not a.user:
        raise UsageError("--password-stdin is the password of --user U; give --user too.")
    user_password = read_secret(cmd) if a.password_stdin else None
    item = store.get_directory(a.name)
    settings = store.settings_of(item)
    bind_password = store.bind_password(item, kms=aws.client("kms")) or ""
    tests: list[tuple[str, Callable[[], Any]]] = [
        ("connection", lambda: client.test_connection(settings)),
        ("bind", lambda: client.test_service_bind(settings, bind_password)),
    ]
    if a.user:
        tests.append(("attributes", lambda: client.test_attribute_mapping(settings, bind_password, a.user)))
    if a.user and user_password is not None:
        tests.append(
            ("sign-in", lambda: client.test_configuration(settings, bind_password, a.user, user_password))
        )
    passed = True
    for label, run in tests:
        if not passed and label in ("bind", "attributes", "sign-in"):
            cmd.out.write(f"{label:<10}  not run: it needs the tests above to pass\n")
            continue
        try:
            result = run()
        except DirectoryError as exc:
            passed = False
            cmd.out.write(f"{label:<10}  FAILED: {exc.message}\n")
            continue
        cmd.out.write(f"{label:<10}  ok: {result.message}\n")
        for name, value in result.attributes.items():
            cmd.out.write(f"{'':<10}    {name.replace('_', ' ')}: {cell(value)}\n")
    return EXIT_OK if passed else EXIT_FAILURE
