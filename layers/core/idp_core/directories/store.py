"""Stored directories: their settings, their sealed bind password, audited changes.

The bind password is sealed with the KMS data key under the encryption context
{"directory": name}: a ciphertext copied to another directory's item does not decrypt,
and it never appears in the settings, the audit trail or a listing. A save is validated
completely (``DirectorySettings`` and the password) before anything is written (S26).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from time import monotonic as time_monotonic
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.update import Action

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.directories.settings import SWITCHES, DirectorySettings, clean_name
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.lockout import is_locked
from idp_core.models import Directory, DirectoryEntry, condition_failed
from idp_core.sealing import seal, unseal
from idp_core.sessions import DIRECTORY_PREFIX
from idp_core.ttl_cache import TtlCache

MAX_BIND_PASSWORD_CHARS = 256
# Entry ids are entryUUIDs, objectGUIDs or, for servers with neither, "dn:" and the DN.
MAX_ENTRY_ID_CHARS = 1100
# The directories' settings, for the sign-in form and unknown usernames; a container keeps them this long.
DIRECTORIES_CACHE_SECONDS = 30.0


def password_context(name: str) -> dict[str, str]:
    return {"directory": name}


def _check_password(bind_password: str | None) -> None:
    if bind_password is None:
        return
    if not bind_password or len(bind_password) > MAX_BIND_PASSWORD_CHARS or "\x00" in bind_password:
        raise BadRequest(f"The bind password must be 1-{MAX_BIND_PASSWORD_CHARS} characters without NUL.")


def get_directory(name: str) -> Directory:
    try:
        return Directory.get(clean_name(name), consistent_read=True)
    except Directory.DoesNotExist:
        raise NotFound(f"There is no directory {clean_name(name)!r}.") from None


def settings_of(item: Directory) -> DirectorySettings:
    return DirectorySettings.from_mapping(json.loads(item.settings))


def load(name: str) -> DirectorySettings:
    return settings_of(get_directory(name))


def list_directories() -> list[DirectorySettings]:
    return sorted((settings_of(item) for item in Directory.scan()), key=lambda s: s.name)


def bind_password(item: Directory, *, kms: Any) -> str | None:
    """The service account's password, unsealed (None when the directory binds anonymously)."""
    if not item.bind_password:
        return None
    return unseal(kms, item.bind_password, password_context(str(item.name))).decode("utf-8")


def save_directory(
    settings: DirectorySettings,
    *,
    create: bool,
    bind_password: str | None = None,
    kms: Any = None,
    key_id: str | None = None,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> DirectorySettings:
    """Store a new directory (``create``) or replace one's settings; ``bind_password`` (if
    given) replaces the sealed password, otherwise an update keeps the stored one."""
    if not isinstance(settings, DirectorySettings):
        raise BadRequest("Directory settings are required.")
    checked = DirectorySettings.from_mapping(json.loads(settings.to_json()))  # also a hand-built instance
    # Stored directories may predate the switch and still load; a new save must decide (S30).
    checked.ensure_encrypted_or_allowed()
    _check_password(bind_password)
    now = clock.now()
    sealed = None
    if bind_password is not None:
        if kms is None or not key_id:
            raise ValueError("sealing the bind password needs the KMS client and the data key id")
        sealed = seal(kms, key_id, bind_password.encode("utf-8"), password_context(checked.name))
    if create:
        _create(checked, sealed, now)
    else:
        _replace_settings(checked, sealed, now)
    forget_cached_directories()
    audit.record(
        audit.EventType.DIRECTORY_CREATED if create else audit.EventType.DIRECTORY_CHANGED,
        "success",
        context=context,
        subject=checked.name,
        details={
            "kind": checked.kind,
            "urls": ",".join(checked.urls),
            "bind_password_changed": sealed is not None,
            "schedule": checked.schedule or "",
            **{switch: getattr(checked, switch) for switch in SWITCHES},
        },
        clock=clock,
    )
    return checked


def _create(checked: DirectorySettings, sealed: str | None, now: float) -> None:
    item = Directory(
        checked.name, settings=checked.to_json(), bind_password=sealed, created_at=now, updated_at=now
    )
    try:
        item.save(condition=Directory.name.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            raise Conflict(f"The directory {checked.name!r} already exists.") from exc
        raise


def _replace_settings(checked: DirectorySettings, sealed: str | None, now: float) -> None:
    # An update of the admin's attributes only: the run state (watermark, lock, pending
    # request, last run) belongs to the imports, which may change it at the same moment.
    actions: list[Action] = [Directory.settings.set(checked.to_json()), Directory.updated_at.set(now)]
    if sealed is not None:
        actions.append(Directory.bind_password.set(sealed))
    try:
        Directory(checked.name).update(actions=actions, condition=Directory.name.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no directory {checked.name!r}.") from exc
        raise


def delete_directory(name: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
    key = clean_name(name)
    try:
        Directory(key).delete(condition=Directory.name.exists())
    except DeleteError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no directory {key!r}.") from exc
        raise
    forget_cached_directories()
    audit.record(audit.EventType.DIRECTORY_DELETED, "success", context=context, subject=key, clock=clock)


# (directories table name) -> every directory with its settings, by name. Read through
# ``_monotonic`` so that tests move this container's time.
_monotonic = time_monotonic
_directories: TtlCache[str, list[tuple[Directory, DirectorySettings]]] = TtlCache(
    DIRECTORIES_CACHE_SECONDS, now=lambda: _monotonic()
)


def all_directories() -> list[tuple[Directory, DirectorySettings]]:
    """Every stored directory with its settings: one scan per container every 30 seconds,
    shared by the sign-in form and the lookup of unknown usernames."""
    table = Directory.Meta.table_name
    cached = _directories.get(table)
    if cached is not None:
        return cached
    found = sorted(((item, settings_of(item)) for item in Directory.scan()), key=lambda pair: pair[1].name)
    return _directories.put(table, found)


def cached_settings(name: str) -> DirectorySettings | None:
    """The directory ``name``'s settings as this container last read them (at most 30 s
    ago); None when there is no such directory."""
    return next((settings for _, settings in all_directories() if settings.name == name), None)


def forget_cached_directories() -> None:
    """Let this container's sign-in see a change at once (like the adaptive policies): the
    local stack serves the console and the sign-in form in one process, so without it a new
    user store would be missing from "Sign in with" for up to 30 seconds. Other containers
    still keep their copy until it expires."""
    _directories.clear()


# ---------------------------------------------------------------- entries that need an admin


@dataclass(frozen=True)
class EntryRow:
    """A directory entry an admin should look at: a name collision with a user of another
    source (S27), or failed sign-ins of an entry not registered here (S29)."""

    entry_id: str
    username: str | None
    typed: str | None
    dn: str | None
    collision_with: str | None
    collision_reason: str | None
    collision_at: float | None
    failures: int
    locked: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def entries_needing_attention(name: str, clock: Clock = SYSTEM_CLOCK) -> list[EntryRow]:
    """The directory's entries with a collision or failed sign-ins, newest collision first."""
    rows = [
        EntryRow(
            entry_id=str(item.entry_id),
            username=item.username,
            typed=item.typed,
            dn=item.dn,
            collision_with=item.collision_with,
            collision_reason=item.collision_reason,
            collision_at=item.collision_at,
            failures=item.total_failures(),
            locked=is_locked(item, clock),
        )
        for item in DirectoryEntry.query(DIRECTORY_PREFIX + clean_name(name), consistent_read=True)
    ]
    wanted = [row for row in rows if row.collision_with or row.failures or row.locked]
    return sorted(wanted, key=lambda row: (-(row.collision_at or 0), row.entry_id))


def clear_entry(
    name: str, entry_id: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Forget an entry's record once the admin resolved it: its collision, its failures and its
    lock. A collision that still exists is recorded again the next time it is met."""
    key = clean_name(name)
    if not isinstance(entry_id, str) or not 0 < len(entry_id) <= MAX_ENTRY_ID_CHARS:
        raise BadRequest("Name the entry by its id, as the directory's page lists it.")
    try:
        DirectoryEntry(DIRECTORY_PREFIX + key, entry_id).delete(condition=DirectoryEntry.entry_id.exists())
    except DeleteError as exc:
        if condition_failed(exc):
            raise NotFound(f"The directory {key!r} has no entry {entry_id!r} on record.") from exc
        raise
    audit.record(
        audit.EventType.DIRECTORY_ENTRY_CLEARED,
        "success",
        context=context,
        subject=key,
        details={"entry": entry_id},
        clock=clock,
    )
