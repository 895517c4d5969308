"""The password step for directory users (the product guide's "Activate LDAP", "Sync users"
and "Backup authentication").

- A user imported from a directory (``source == "ldap:<name>"``) whose directory is
  activated signs in by a bind as their directory entry (``client.authenticate``: S22, S23).
- An unknown username is looked up in the activated directories that sync users; the
  first one that accepts the password creates the user with the mapped attributes and
  groups (each group created too, so apps map roles to it by name).
- With backup authentication, a password the directory refuses, or a directory that
  cannot be reached, falls back to the user's local password, if they have one.
- "Show IdP to users": the sign-in form offers the activated directories that show
  themselves (``shown_directories``); a chosen one is the only one asked (``check(only=)``).
- "Enable administrator login": an admin whose password a directory checked uses the
  console only if that directory allows it (``ensure_admin_login_allowed``).

The answer says who decided, for the sign-in's audit event. Whether the account is locked
or disabled is the caller's check and comes first: a locked account never reaches the
directory, so it cannot be used to test passwords against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import monotonic as time_monotonic
from typing import Any

from pynamodb.exceptions import PutError

from idp_core import audit, sessions
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.directories import client, store
from idp_core.directories.errors import CredentialsRejected, DirectoryError, NoSuchUser
from idp_core.directories.settings import DirectorySettings
from idp_core.directories.welcome import NO_WELCOME_MAIL, WelcomeMail, welcome_after_sign_in
from idp_core.errors import BadRequest, Forbidden, NotFound
from idp_core.models import Directory, Group, Session, User, condition_failed
from idp_core.names import canonical_username, group_forms

SOURCE_PREFIX = sessions.DIRECTORY_PREFIX
# The directories' settings, for the sign-in form and unknown usernames; a container keeps them this long.
DIRECTORIES_CACHE_SECONDS = 30.0
# The sign-in form's choice for this IdP's own accounts. "local" is a reserved directory
# name (``settings.RESERVED_NAMES``), so the value never names a directory.
LOCAL_CHOICE = "local"
LOCAL_CHOICE_LABEL = "This sign-in service's accounts"


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


def check(
    found: User | None,
    typed: str,
    password: str,
    *,
    kms: Any,
    only: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    welcome: WelcomeMail = NO_WELCOME_MAIL,
) -> Verdict:
    """The directory's verdict on ``password`` for ``found`` (or the unknown name ``typed``).

    ``only``: the directory the user chose on the sign-in form. An unknown name is then
    looked up there alone (if it syncs users), and a user who belongs elsewhere is refused
    without asking anyone: a directory never vouches for someone it does not own.
    """
    if found is None:
        return _sync_on_sign_in(typed, password, kms=kms, only=only, clock=clock, welcome=welcome)
    name = directory_of(found)
    if only is not None and name != only:
        return Verdict(False, source_for(only))
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


def _sync_on_sign_in(
    typed: str, password: str, *, kms: Any, only: str | None, clock: Clock, welcome: WelcomeMail
) -> Verdict:
    for item, settings in _syncing_directories():
        if only is not None and settings.name != only:
            continue
        try:
            found = client.authenticate(settings, store.bind_password(item, kms=kms) or "", typed, password)
        except NoSuchUser:
            continue
        except DirectoryError:
            return LOCAL  # Refused or unreachable: an unknown user stays unknown.
        return Verdict(True, source_for(settings.name), _create_user(found, settings, clock, welcome))
    return LOCAL


# (directories table name) -> (monotonic expiry, every directory with its settings, by name)
_cached: dict[str, tuple[float, list[tuple[Directory, DirectorySettings]]]] = {}
_monotonic = time_monotonic


def _all_directories() -> list[tuple[Directory, DirectorySettings]]:
    """Every stored directory with its settings: one scan per container every 30 seconds,
    shared by the sign-in form and the lookup of unknown usernames."""
    table = Directory.Meta.table_name
    cached = _cached.get(table)
    if cached is not None and _monotonic() < cached[0]:
        return cached[1]
    found = sorted(
        ((item, store.settings_of(item)) for item in Directory.scan()), key=lambda pair: pair[1].name
    )
    _cached[table] = (_monotonic() + DIRECTORIES_CACHE_SECONDS, found)
    return found


def cached_settings(name: str) -> DirectorySettings | None:
    """The directory ``name``'s settings as this container last read them (at most 30 s
    ago); None when there is no such directory."""
    return next((settings for _, settings in _all_directories() if settings.name == name), None)


def _syncing_directories() -> list[tuple[Directory, DirectorySettings]]:
    return [
        (item, settings) for item, settings in _all_directories() if settings.activate and settings.sync_users
    ]


def shown_directories() -> list[DirectorySettings]:
    """The activated directories that "Show IdP to users" offers on the sign-in form, by name."""
    return [settings for _, settings in _all_directories() if settings.activate and settings.show_to_users]


def sign_in_choices() -> list[tuple[str, str]]:
    """The sign-in form's "Sign in with" options as (value, label): this IdP's own accounts,
    then each shown directory; empty when no directory is shown (the form has no choice)."""
    shown = shown_directories()
    if not shown:
        return []
    return [
        (LOCAL_CHOICE, LOCAL_CHOICE_LABEL),
        *((settings.name, settings.display_name) for settings in shown),
    ]


def chosen_directory(value: str | None) -> str | None:
    """The checked form value of "Sign in with": None (no choice was sent), ``LOCAL_CHOICE``
    or the name of a shown directory; anything else is ``BadRequest``."""
    if value is None or value == LOCAL_CHOICE:
        return value
    if any(settings.name == value for settings in shown_directories()):
        return value
    raise BadRequest("There is no such directory to sign in with; choose one from the list.")


def forget_cached_directories() -> None:
    _cached.clear()


def _create_user(
    found: client.DirectoryUser, settings: DirectorySettings, clock: Clock, welcome: WelcomeMail
) -> User:
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
    welcome_after_sign_in(user, settings, welcome, clock=clock)
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


class AdminLoginNotAllowed(Forbidden):
    """An admin signed in with a directory password whose directory keeps them out of the console."""

    def __init__(self, directory: str) -> None:
        super().__init__(
            f"Your directory {directory} does not allow administrator sign-in; sign in with your "
            'local password or ask another administrator to turn on "Enable administrator login" '
            "for that directory."
        )


def ensure_admin_login_allowed(
    session: Session, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Raise ``AdminLoginNotAllowed`` unless the session's password was checked locally or by
    a directory with "Enable administrator login" on.

    The directory is read afresh (not from the 30-second cache), so turning the switch off
    takes effect on the next console request. A directory deleted since counts as off.
    """
    name = sessions.password_directory(session)
    if name is None:
        return
    try:
        settings: DirectorySettings | None = store.load(name)
    except (NotFound, BadRequest):
        settings = None
    if settings is not None and settings.admin_login:
        return
    audit.record(
        "admin.refused",
        "failure",
        context=context,
        subject=str(session.username),
        details={"reason": "directory does not allow administrator sign-in", "directory": name},
        clock=clock,
    )
    raise AdminLoginNotAllowed(settings.display_name if settings is not None else name)
