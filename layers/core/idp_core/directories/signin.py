"""The directory side of the password step (the product guide's "Activate LDAP", "Sync users"
and "Backup authentication"), with each user bound to one source (S27).

The sign-in (``idp_core.signin``) reserves an attempt on the record a password would unlock
before any password is checked (S29), then asks these helpers:

- ``entry_of_user``: the entry of a user imported from a directory (``source ==
  "ldap:<name>"``), found by the mapped username in that directory when it is activated;
- ``entry_for_alias``: the entry an activated directory's user filter matches for a name that
  is no user here (an e-mail address, a UPN, a uid not registered yet);
- ``mismatch``: why an entry is not a given user (another source, another username, another
  stable id). A directory never vouches for someone it does not own: a mismatch is refused
  like a wrong password and recorded (``record_collision``) for the admins;
- ``check_password``: a bind as the entry (S22, S23);
- ``register``: "Sync users" creates the user of an entry that is not registered yet.

"Show IdP to users": the sign-in form offers the activated directories that show themselves
(``shown_directories``); a chosen one is the only one asked. "Enable administrator login" is
``directories.admin_login``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import PutError
from pynamodb.expressions.update import Action

from idp_core import audit, sessions
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.directories import client, store
from idp_core.directories.errors import CredentialsRejected, DirectoryError, NoSuchUser
from idp_core.directories.settings import DirectorySettings
from idp_core.directories.welcome import NO_WELCOME_MAIL, WelcomeMail, welcome_after_sign_in
from idp_core.errors import BadRequest, NotFound
from idp_core.models import Directory, DirectoryEntry, Group, User, condition_failed
from idp_core.names import canonical_username, group_forms

SOURCE_PREFIX = sessions.DIRECTORY_PREFIX
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
class Entry:
    """A directory entry a sign-in found: its directory and what it maps to."""

    item: Directory
    settings: DirectorySettings
    found: client.DirectoryUser

    @property
    def source(self) -> str:
        return source_for(self.settings.name)

    @property
    def key(self) -> str | None:
        """The username it maps to here (canonical), or None when that cannot be a username."""
        try:
            return canonical_username(self.found.username)
        except BadRequest:
            return None

    @property
    def record_key(self) -> tuple[str, str]:
        """The key of its ``DirectoryEntry`` record: failures while it is not registered here
        count there (S29), and a collision is kept there (S27)."""
        return (self.source, self.found.entry_id)

    def record_attributes(self, typed: str) -> list[Action]:
        """What its record says about it, written with the record's lockout attempt."""
        return [
            DirectoryEntry.dn.set(self.found.dn),
            DirectoryEntry.username.set(self.found.username),
            DirectoryEntry.typed.set(typed[:256]),
        ]


def entry_of_user(user: User, *, kms: Any) -> Entry | None:
    """The entry of the directory user ``user``, found in their directory by the mapped username;
    None when that directory is gone or not activated (then the local password decides).
    Raises ``DirectoryError`` (no such entry, unreachable, ...)."""
    name = directory_of(user)
    if name is None:
        return None
    try:
        item = store.get_directory(name)
    except (NotFound, BadRequest):
        return None  # The directory was deleted: only a local password can still sign in.
    settings = store.settings_of(item)
    if not settings.activate:
        return None
    found = client.find_user(
        settings, store.bind_password(item, kms=kms) or "", user.display_username, by_mapped_username=True
    )
    return Entry(item, settings, found)


def entry_for_alias(typed: str, *, kms: Any, only: str | None) -> Entry | None:
    """The entry an activated directory's user filter matches for ``typed``: the first
    directory (by name, or only the one chosen on the form) that has one. None when none has,
    or when a directory cannot answer: an unknown name then stays unknown."""
    for item, settings in store.all_directories():
        if not settings.activate or (only is not None and settings.name != only):
            continue
        try:
            found = client.find_user(settings, store.bind_password(item, kms=kms) or "", typed)
        except NoSuchUser:
            continue
        except DirectoryError:
            return None
        return Entry(item, settings, found)
    return None


def mismatch(entry: Entry, user: User) -> str | None:
    """Why ``entry`` is not ``user`` (S27), or None when it is theirs."""
    if str(user.source or "local") != entry.source:
        return f"the name belongs to a user of {user.source or 'local'}"
    if entry.key != user.username:
        return f"the entry maps to the username {entry.found.username!r}"
    if user.directory_id and user.directory_id != entry.found.entry_id:
        return "the entry is not the one this user was created from (a new entry took over the name)"
    return None


def check_password(entry: Entry, password: str) -> bool:
    """Whether the directory accepts ``password`` for the entry (a bind as its DN: S22, S23).
    Raises ``DirectoryError`` when it cannot say (unreachable, TLS)."""
    try:
        client.check_password(entry.settings, entry.found.dn, password)
    except CredentialsRejected:
        return False
    return True


class NameTaken(Exception):
    """Sync users could not create the entry's user: the name belongs to ``user`` of another
    source (or to another entry), created meanwhile."""

    def __init__(self, user: User, reason: str) -> None:
        super().__init__(reason)
        self.user = user
        self.reason = reason


def register(
    entry: Entry,
    *,
    clock: Clock = SYSTEM_CLOCK,
    welcome: WelcomeMail = NO_WELCOME_MAIL,
    context: AuditContext | None = None,
) -> User:
    """ "Sync users": the entry as a new user of its directory (no local password), with its
    groups (each created too, so apps map roles to them by name). A user of that name created
    meanwhile is the entry's only if it is the same entry's (``NameTaken`` otherwise)."""
    found, source = entry.found, entry.source
    key = entry.key
    if key is None:
        raise BadRequest(f"The directory username {found.username!r} cannot be a username here.")
    groups = ensure_groups(found.groups, source=source, clock=clock)
    now = clock.now()
    user = User(
        key,
        display_username=found.username,
        email=found.email,
        display_name=found.display_name,
        groups=set(groups) or None,
        source=source,
        directory_id=found.entry_id,
        created_at=now,
        updated_at=now,
    )
    try:
        user.save(condition=User.username.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        # Created by a parallel sign-in or an import meanwhile: theirs only if it is this entry.
        existing = User.get(key, consistent_read=True)
        reason = mismatch(entry, existing)
        if reason is not None:
            raise NameTaken(existing, reason) from exc
        return existing
    audit.record(
        audit.EventType.USER_CREATED,
        "success",
        context=context,
        subject=user.username,
        details={"source": source, "groups": ",".join(sorted(groups)), "reason": "sync on sign-in"},
        clock=clock,
    )
    welcome_after_sign_in(user, entry.settings, welcome, context=context, clock=clock)
    return user


def record_collision(
    entry: Entry,
    *,
    user_source: str,
    reason: str,
    typed: str,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """A sign-in's collision: ``record_entry_collision`` for the entry it found."""
    record_entry_collision(
        EntryCollision(
            source=entry.source,
            entry_id=entry.found.entry_id,
            dn=entry.found.dn,
            username=entry.found.username,
            typed=typed,
            user_source=user_source,
            reason=reason,
        ),
        context=context,
        clock=clock,
    )


@dataclass(frozen=True, kw_only=True)
class EntryCollision:
    """A directory's entry whose name another user already has (S27): the directory
    (``source``), the entry (its id, DN and username, and what the user typed when a sign-in
    found it), and the other user's source with the reason the names collide."""

    source: str
    entry_id: str
    dn: str
    username: str
    typed: str | None
    user_source: str
    reason: str


def record_entry_collision(
    collision: EntryCollision, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Keep a name collision of a directory's entry with a user of another source (or of
    another entry) for the admins, on the directory's console page and in ``idp directory
    show``, and audit it with both sources (S27). Nothing is merged."""
    now = clock.now()
    typed = collision.typed[:256] if collision.typed is not None else None
    actions: list[Action] = [
        DirectoryEntry.dn.set(collision.dn),
        DirectoryEntry.username.set(collision.username),
        DirectoryEntry.collision_with.set(collision.user_source),
        DirectoryEntry.collision_reason.set(collision.reason),
        DirectoryEntry.collision_at.set(now),
        DirectoryEntry.collisions.add(1),
    ]
    if typed is not None:
        actions.append(DirectoryEntry.typed.set(typed))
    DirectoryEntry(collision.source, collision.entry_id).update(actions=actions)
    audit.record(
        audit.EventType.DIRECTORY_COLLISION,
        "failure",
        context=context,
        subject=collision.username,
        details={
            "directory_source": collision.source,
            "user_source": collision.user_source,
            "dn": collision.dn,
            **({"typed": typed} if typed is not None else {}),
            "reason": collision.reason,
        },
        clock=clock,
    )


def shown_directories() -> list[DirectorySettings]:
    """The activated directories that "Show IdP to users" offers on the sign-in form, by name."""
    return [
        settings for _, settings in store.all_directories() if settings.activate and settings.show_to_users
    ]


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
