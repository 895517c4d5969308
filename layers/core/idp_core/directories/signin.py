"""The password step for directory users (the product guide's "Activate LDAP", "Sync users"
and "Backup authentication").

- A user imported from a directory (``source == "ldap:<name>"``) whose directory is
  activated signs in by a bind as their directory entry (``client.authenticate``: S22, S23).
- An unknown username is looked up in the activated directories that sync users; the
  first one that accepts the password creates the user with the mapped attributes and
  groups (each group created too, so apps map roles to it by name).
- With backup authentication, a password the directory refuses, or a directory that
  cannot be reached, falls back to the user's local password, if they have one.

The answer says who decided, for the sign-in's audit event. Whether the account is locked
or disabled is the caller's check and comes first: a locked account never reaches the
directory, so it cannot be used to test passwords against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import monotonic as time_monotonic
from typing import Any

from pynamodb.exceptions import PutError

from idp_core import audit
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.directories import client, store
from idp_core.directories.errors import CredentialsRejected, DirectoryError, NoSuchUser
from idp_core.directories.settings import DirectorySettings
from idp_core.errors import BadRequest, NotFound
from idp_core.models import Directory, Group, User, condition_failed
from idp_core.names import canonical_username, group_forms

SOURCE_PREFIX = "ldap:"
# The directories an unknown username is looked up in; a container keeps the list this long.
DIRECTORIES_CACHE_SECONDS = 30.0


def source_for(name: str) -> str:
    return SOURCE_PREFIX + name


def directory_of(user: User | None) -> str | None:
    source = str(user.source or "") if user is not None else ""
    return source[len(SOURCE_PREFIX) :] if source.startswith(SOURCE_PREFIX) else None


@dataclass(frozen=True)
class Verdict:
    """``accepted`` True or False when a directory decided; None: the local password decides."""

    accepted: bool | None
    # Who decided, for the audit trail: "ldap:<name>", or the backup's reason.
    via: str
    # A user the directory's "Sync users" created on this sign-in.
    created: User | None = None


LOCAL = Verdict(None, "password")


def check(found: User | None, typed: str, password: str, *, kms: Any, clock: Clock = SYSTEM_CLOCK) -> Verdict:
    """The directory's verdict on ``password`` for ``found`` (or the unknown name ``typed``)."""
    if found is None:
        return _sync_on_sign_in(typed, password, kms=kms, clock=clock)
    name = directory_of(found)
    if name is None:
        return LOCAL
    try:
        item = store.get_directory(name)
    except (NotFound, BadRequest):
        return LOCAL  # The directory was deleted: only a local password can still sign in.
    settings = store.settings_of(item)
    if not settings.activate:
        return LOCAL
    try:
        client.authenticate(
            settings, store.bind_password(item, kms=kms) or "", found.display_username, password
        )
    except CredentialsRejected:
        if settings.backup_auth and found.password_hash:
            return Verdict(None, f"password (the directory {name} refused the password)")
        return Verdict(False, source_for(name))
    except DirectoryError as exc:
        if settings.backup_auth and found.password_hash:
            return Verdict(None, f"password (the directory {name} did not answer: {type(exc).__name__})")
        return Verdict(False, source_for(name))
    return Verdict(True, source_for(name))


def _sync_on_sign_in(typed: str, password: str, *, kms: Any, clock: Clock) -> Verdict:
    for item, settings in _syncing_directories():
        try:
            found = client.authenticate(settings, store.bind_password(item, kms=kms) or "", typed, password)
        except NoSuchUser:
            continue
        except DirectoryError:
            return LOCAL  # Refused or unreachable: an unknown user stays unknown.
        return Verdict(True, source_for(settings.name), _create_user(found, settings, clock))
    return LOCAL


# (directories table name) -> (monotonic expiry, directories that sync users on sign-in)
_cached: dict[str, tuple[float, list[tuple[Directory, DirectorySettings]]]] = {}
_monotonic = time_monotonic


def _syncing_directories() -> list[tuple[Directory, DirectorySettings]]:
    table = Directory.Meta.table_name
    cached = _cached.get(table)
    if cached is not None and _monotonic() < cached[0]:
        return cached[1]
    found = []
    for item in Directory.scan():
        settings = store.settings_of(item)
        if settings.activate and settings.sync_users:
            found.append((item, settings))
    found.sort(key=lambda pair: pair[1].name)
    _cached[table] = (_monotonic() + DIRECTORIES_CACHE_SECONDS, found)
    return found


def forget_cached_directories() -> None:
    _cached.clear()


def _create_user(found: client.DirectoryUser, settings: DirectorySettings, clock: Clock) -> User:
    """The directory user as a user of this IdP (no local password), with their groups."""
    source = source_for(settings.name)
    groups = ensure_groups(found.groups, source=source, clock=clock)
    now = clock.now()
    user = User(
        canonical_username(found.username),
        display_username=found.username,
        email=found.email,
        display_name=found.display_name,
        groups=set(groups) or None,
        source=source,
        created_at=now,
        updated_at=now,
    )
    try:
        user.save(condition=User.username.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):  # Created by a parallel sign-in or an import meanwhile.
            return User.get(user.username, consistent_read=True)
        raise
    audit.record(
        "user.created",
        "success",
        subject=user.username,
        details={"source": source, "groups": ",".join(sorted(groups)), "reason": "sync on sign-in"},
        clock=clock,
    )
    return user


def ensure_groups(
    names: tuple[str, ...] | list[str], *, source: str, clock: Clock = SYSTEM_CLOCK
) -> list[str]:
    """The directory's group names as groups of this IdP (canonical names), creating the
    missing ones; a name that cannot be a group name is left out."""
    kept = []
    for name in names:
        try:
            key, display = group_forms(name)
        except BadRequest:
            continue
        kept.append(key)
        add_group_if_missing(key, display, source=source, clock=clock)
    return kept


def add_group_if_missing(key: str, display: str, *, source: str, clock: Clock = SYSTEM_CLOCK) -> bool:
    """Create the group ``key`` from a directory unless it exists (conditional put); True if created."""
    try:
        Group(key, display_name=display, source=source, created_at=clock.now()).save(
            condition=Group.name.does_not_exist()
        )
    except PutError as exc:
        if condition_failed(exc):
            return False
        raise
    return True
