"""Imports of a directory's users and groups (issue 5, "Import and provisioning").

A run binds with the service account and reads the directory with paged searches
(RFC 2696), so no server size limit truncates it. A full run reads every user and also
disables the users of this directory that it no longer has; an incremental run reads only
the entries changed since the stored watermark (``modifyTimestamp`` for OpenLDAP and other
LDAP servers, ``uSNChanged`` against the rootDSE's ``highestCommittedUSN`` for AD).

A change of group membership alone does not move the member's ``modifyTimestamp`` (OpenLDAP's
memberof overlay) or ``uSNChanged`` (AD's memberOf): an incremental run therefore also looks
for groups changed since the watermark and, when it finds one, reads every user (still
disabling no one), which writes only the users whose groups differ.

Users are created only with "Enable user auto registration"; without it a run still updates
(and disables) the users of this directory already here, e.g. those "Sync users" created at
sign-in, and counts the entries it did not create. With "Send welcome e-mails after
registration" each created user with an address gets one e-mail (``welcome``), sent after the
user is written.

Each page is written as it arrives, and an item is written only when something changed,
so a run with no directory change writes no user or group. The watermark and the counts
are stored only at the end of a successful run: a run that fails half way leaves the old
watermark, and the next run reads (and writes) what the failed one did not. A run that
reads every user finds this directory's users here with one query of the users' ``by_source``
index, not a scan of the table.

Limits of this version: a group deleted or renamed in the directory leaves no changed group
entry behind, so its former members lose it here with the next full run, as does a group
that a server without OpenLDAP's ``entryCSN`` changes twice within the watermark's second.
With groups by ``memberOf`` the changed groups are looked for under the group base, or else
under the search bases (set the group base when the groups live elsewhere). Entries not
created while auto registration was off are created by the next full run after it is turned
on (an incremental run reads only entries changed since).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.directories import client, store
from idp_core.directories.errors import DirectoryError, Unreachable
from idp_core.directories.settings import AD, GROUP_SEARCH, SLOT, DirectorySettings
from idp_core.directories.signin import EntryCollision, add_group_if_missing, record_entry_collision
from idp_core.directories.welcome import NO_SENDER, NO_WELCOME_MAIL, WelcomeMail, WelcomeSender
from idp_core.errors import BadRequest, NotFound
from idp_core.models import Directory, DirectoryEntry, Group, User, condition_failed
from idp_core.names import group_forms, username_forms
from idp_core.sessions import end_user_sessions

# ldap3 is imported by the reads below, not with this module: the provisioning function's
# cold start and its ticks with no import due never reach a directory.
if TYPE_CHECKING:
    import ldap3

# Below every common server limit (AD's MaxPageSize is 1000), so the server never cuts a page.
PAGE_SIZE = 200
BATCH_GET_KEYS = 100
# The reasons kept in a run's record; the counts hold the full numbers.
MAX_PROBLEMS = 20
# More groups changed in one second than this (a bulk load) are not remembered: the next
# incremental run then reads everyone once more, which is correct, only slower.
MAX_GROUPS_AT_MARK = 500
MAX_DISPLAY_NAME_CHARS = 128
MAX_EMAIL_CHARS = 254
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
# AD's userAccountControl flag ACCOUNTDISABLE.
AD_ACCOUNT_DISABLED = 0x2
# The object classes of groups in OpenLDAP, other LDAP servers and AD.
GROUP_CLASSES = (
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group)(objectClass=posixGroup))"
)
_GENERALIZED_TIME = re.compile(r"[0-9]{14}(?:\.[0-9]{1,6})?Z")
_USN = re.compile(r"[0-9]{1,20}")
# Only these are read for the comparison with the directory; counters and factors stay out.
_COMPARED = [
    "username",
    "display_username",
    "email",
    "display_name",
    "groups",
    "disabled",
    "source",
    "directory_id",
]


def source_of(name: str) -> str:
    """The ``source`` of the users and groups a directory imports."""
    return f"ldap:{name}"


@dataclass(frozen=True)
class RunCounts:
    """What one import run did; stored as JSON in ``Directory.last_run``."""

    created: int
    updated: int
    disabled: int
    unchanged: int
    errors: int
    groups_created: int
    groups_updated: int
    full: bool
    started_at: float
    finished_at: float
    watermark: str | None
    # The first reasons for errors and skipped values, for the console and the CLI.
    problems: tuple[str, ...] = ()
    # Users of the directory not created because auto registration is off.
    not_registered: int = 0
    welcome_sent: int = 0
    # Welcome e-mails SES refused; the users were created all the same.
    welcome_failed: int = 0
    # The groups stamped in the watermark's second that this run took into account (DN in
    # lower case and entryCSN), so that the next incremental run does not take them for new.
    groups_at_watermark: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = list(self.problems)
        data["groups_at_watermark"] = list(self.groups_at_watermark)
        return data

    @classmethod
    def from_json(cls, text: str) -> RunCounts:
        """A stored run (``Directory.last_run``); counts added since it was stored are 0."""
        data = json.loads(text)
        values = {item.name: data[item.name] for item in fields(cls) if item.name in data}
        for name in ("problems", "groups_at_watermark"):
            values[name] = tuple(str(value) for value in values.get(name) or ())
        return cls(**values)


@dataclass(frozen=True)
class _Wanted:
    """A user as the directory says it should be here."""

    key: str
    dn: str
    entry_id: str
    display_username: str
    email: str | None
    display_name: str | None
    groups: frozenset[str]
    disabled: bool


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    disabled: int = 0
    unchanged: int = 0
    errors: int = 0
    groups_created: int = 0
    groups_updated: int = 0
    not_registered: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str, *, error: bool) -> None:
        if error:
            self.errors += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def run_import(
    name: str,
    *,
    full: bool,
    kms: Any,
    clock: Clock = SYSTEM_CLOCK,
    context: AuditContext | None = None,
    welcome: WelcomeMail = NO_WELCOME_MAIL,
) -> RunCounts:
    """Import the users and groups of the directory ``name``; raises a ``DirectoryError``
    (e.g. ``Unreachable``) when the directory fails, after which nothing of the run's
    state is stored and the next run picks up from the previous watermark.

    ``welcome``: how the welcome e-mails of created users leave (``WelcomeMail.for_settings``);
    without it none is sent, and a directory that wants them says so in the run's problems.
    """
    item = store.get_directory(name)
    settings = store.settings_of(item)
    started_at = clock.now()
    try:
        run = _Run(
            settings,
            item.watermark,
            full=full,
            clock=clock,
            welcome=welcome,
            handled_groups=_groups_handled_at(item),
            context=context,
        )
        with client.service_connection(settings, store.bind_password(item, kms=kms)) as conn:
            run.execute(conn)
    except DirectoryError as exc:
        audit.record(
            audit.EventType.DIRECTORY_IMPORT,
            "failure",
            context=context,
            subject=settings.name,
            details={"full": full, "reason": str(exc)[:500]},
            clock=clock,
        )
        raise
    counts = run.counts(started_at, clock.now())
    _store_run(settings.name, counts)
    audit.record(
        audit.EventType.DIRECTORY_IMPORT,
        "success",
        context=context,
        subject=settings.name,
        details={k: v for k, v in counts.as_dict().items() if k not in ("problems", "groups_at_watermark")},
        clock=clock,
    )
    return counts


def _groups_handled_at(item: Directory) -> frozenset[str]:
    """The groups the run that stored the watermark took into account in its second."""
    try:
        last = json.loads(item.last_run or "{}")
    except ValueError:
        return frozenset()
    if not isinstance(last, dict) or last.get("watermark") != item.watermark:
        return frozenset()
    groups = last.get("groups_at_watermark")
    return frozenset(str(dn) for dn in groups) if isinstance(groups, list) else frozenset()


def _store_run(name: str, counts: RunCounts) -> None:
    actions: list[Action] = [Directory.last_run.set(json.dumps(counts.as_dict(), sort_keys=True))]
    if counts.watermark is not None:
        actions.append(Directory.watermark.set(counts.watermark))
    try:
        Directory(name).update(actions=actions, condition=Directory.name.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound(f"The directory {name!r} was deleted during the import.") from exc
        raise


class _Run:
    def __init__(
        self,
        settings: DirectorySettings,
        watermark: str | None,
        *,
        full: bool,
        clock: Clock,
        welcome: WelcomeMail = NO_WELCOME_MAIL,
        handled_groups: frozenset[str] = frozenset(),
        context: AuditContext | None = None,
    ):
        self.settings = settings
        self.context = context
        self.source = source_of(settings.name)
        self.full = full
        self.clock = clock
        self.ad = settings.kind == AD
        self.old_mark = _checked_mark(watermark, ad=self.ad)
        # Without a usable watermark an incremental run reads everything (but, unlike a full
        # run, disables no one).
        self.read_all = full or self.old_mark is None
        self.new_mark = self.old_mark
        # Groups stamped in the watermark's second that the run which stored it had already
        # taken into account, and those this run read with their stamps: each as its DN in
        # lower case, followed by its entryCSN when the server has one.
        self.handled_groups = handled_groups
        self.group_stamps: dict[str, str] = {}
        self.tally = _Tally()
        self.seen: dict[str, str] = {}  # user key -> DN of the entry that gave it
        self.own: dict[str, User] = {}
        self.welcome = WelcomeSender(settings, welcome)
        self.known_groups: set[str] = set()
        self.bad_groups: set[str] = set()
        self.memberships: dict[str, set[str]] | None = None
        # The collisions already on record, (entry id, user's source, reason), so a run that meets
        # the same one again does not record (and audit) it again.
        self.recorded_collisions = {
            (str(item.entry_id), str(item.collision_with), str(item.collision_reason))
            for item in DirectoryEntry.query(self.source)
            if item.collision_with
        }

    # ------------------------------------------------------------ reading

    def execute(self, conn: ldap3.Connection) -> None:
        if self.ad:
            # Read before the search: whatever changes during the run has a higher USN and
            # is read again by the next incremental run.
            self.new_mark = _highest_usn(conn)
        if self._groups_changed(conn) and not self.read_all:
            # The members' own entries did not change: only reading everyone finds them.
            self.read_all = True
        if self.read_all:
            self._read_existing()
        if self.settings.group_lookup == GROUP_SEARCH:
            self.memberships = _memberships(conn, self.settings)
        search_filter = self._filter()
        attributes = self._attributes()
        for base in self.settings.bases:
            for page in _pages(conn, base, search_filter, attributes):
                self._page(page)
        if self.full:
            self._disable_missing()

    def _filter(self) -> str:
        objects = self.settings.search_filter.replace(SLOT, "*")
        if self.read_all:
            return objects
        if self.ad:
            return f"(&{objects}(uSNChanged>={int(str(self.old_mark)) + 1}))"
        # Inclusive: modifyTimestamp has whole seconds, and a change in the same second as
        # the watermark must not be missed; re-reading an unchanged entry writes nothing.
        return f"(&{objects}(modifyTimestamp>={self.old_mark}))"

    def _attributes(self) -> list[str]:
        mapping = self.settings.mapping
        wanted = {mapping.username, mapping.email, mapping.display_name}
        if self.settings.group_lookup != GROUP_SEARCH:
            wanted.add(mapping.groups)
        wanted |= {"uSNChanged", "userAccountControl"} if self.ad else {"modifyTimestamp"}
        wanted.add(client.stable_id_attribute(self.settings))
        return sorted(wanted)

    def _groups_changed(self, conn: ldap3.Connection) -> bool:
        """Whether a group changed since the watermark that no earlier run took into account.

        On OpenLDAP a run that reads everyone searches the groups as well: their stamps move
        the watermark, and the groups stamped in its second are remembered (``last_run``),
        because the users' filter is inclusive and would otherwise find the group that set
        the watermark again on every later run, each time reading everyone.
        """
        if self.ad:
            # AD's watermark is the USN read before any search: "changed since" is exact.
            if self.read_all:
                return False
            since = f"(uSNChanged>={int(str(self.old_mark)) + 1})"
            attributes = ["uSNChanged"]
        else:
            since = f"(modifyTimestamp>={self.old_mark})" if self.old_mark else ""
            # OpenLDAP's entryCSN (microseconds and a change count) tells apart two changes
            # of one group within the same second; other servers have the stamp alone.
            attributes = ["modifyTimestamp", "entryCSN"]
        changed = False
        bases = [self.settings.group_base] if self.settings.group_base else list(self.settings.bases)
        for base in bases:
            for page in _pages(conn, str(base), f"(&{GROUP_CLASSES}{since})", attributes):
                for entry in page:
                    attributes_read = entry.get("attributes") or {}
                    version = " ".join(
                        [str(entry.get("dn")).lower(), *client.attribute_values(attributes_read, "entryCSN")]
                    )
                    stamp = None if self.ad else client.first_value(attributes_read, "modifyTimestamp")
                    if stamp is not None:
                        self.group_stamps[version] = stamp
                        self._advance_mark(attributes_read)
                    if stamp is None or stamp != self.old_mark or version not in self.handled_groups:
                        changed = True
        return changed

    def _groups_at_mark(self) -> tuple[str, ...]:
        """The groups stamped in the new watermark's second that this run took into account:
        it read every user after reading them, or an earlier run did."""
        if self.ad or self.new_mark is None:
            return ()
        groups = sorted(dn for dn, stamp in self.group_stamps.items() if stamp == self.new_mark)
        return tuple(groups) if len(groups) <= MAX_GROUPS_AT_MARK else ()

    def _read_existing(self) -> None:
        # The users of this directory with what is compared, from the index on ``source``:
        # one query instead of a read per user when the run reads everyone. The index lags a
        # little behind the table: a user it does not show yet is read from the table with
        # the page that has them (``_existing``).
        for user in User.by_source.query(self.source):
            self.own[user.username] = user

    # ------------------------------------------------------------ one page

    def _page(self, entries: list[dict[str, Any]]) -> None:
        wanted: list[_Wanted] = []
        for entry in entries:
            user = self._wanted(entry)
            if user is not None:
                wanted.append(user)
        if not wanted:
            return
        existing = self._existing([user.key for user in wanted])
        creates: list[_Wanted] = []
        updates: list[tuple[_Wanted, User]] = []
        for user in wanted:
            current = existing.get(user.key)
            if current is not None and current.source != self.source:
                self._not_ours(
                    user, str(current.source or "local"), f"the name belongs to a user of {current.source}"
                )
            elif current is not None and current.directory_id and current.directory_id != user.entry_id:
                self._not_ours(
                    user,
                    str(current.source),
                    "the entry is not the one this user was created from (a new entry took over the name)",
                )
            elif current is None:
                creates.append(user)
            elif _differs(user, current):
                updates.append((user, current))
            else:
                self.tally.unchanged += 1
        if not self.settings.auto_register:
            self.tally.not_registered += len(creates)
            creates = []
        self._ensure_groups(
            {g for user in creates for g in user.groups} | {g for user, _ in updates for g in user.groups}
        )
        self._create(creates)
        for user, current in updates:
            self._update(user, current)

    def _wanted(self, entry: dict[str, Any]) -> _Wanted | None:
        dn = str(entry.get("dn"))
        attributes = entry.get("attributes") or {}
        mapping = self.settings.mapping
        self._advance_mark(attributes)
        raw_name = client.first_value(attributes, mapping.username)
        if raw_name is None:
            self.tally.problem(f"{dn}: no {mapping.username!r} attribute for the username.", error=True)
            return None
        try:
            key, display = username_forms(raw_name)
        except BadRequest as exc:
            self.tally.problem(f"{dn}: the username {raw_name!r} is not allowed here: {exc}", error=True)
            return None
        earlier = self.seen.get(key)
        if earlier is not None:
            if earlier.lower() != dn.lower():  # Overlapping bases return one entry twice.
                self.tally.problem(
                    f"{dn}: {earlier} has the same username {display!r}; only the first is imported.",
                    error=True,
                )
            return None
        self.seen[key] = dn
        if self.memberships is not None:
            group_cns: Iterable[str] = self.memberships.get(dn.lower(), set())
        else:
            group_cns = (
                client.group_name(value) or ""
                for value in client.attribute_values(attributes, mapping.groups)
            )
        disabled = False
        if self.ad:
            flags = client.first_value(attributes, "userAccountControl")
            disabled = bool(flags and flags.isdigit() and int(flags) & AD_ACCOUNT_DISABLED)
        return _Wanted(
            key=key,
            dn=dn,
            entry_id=client.stable_id(entry, self.settings),
            display_username=display,
            email=self._email(dn, client.first_value(attributes, mapping.email)),
            display_name=_display_name(client.first_value(attributes, mapping.display_name)),
            groups=frozenset(self._group_keys(group_cns)),
            disabled=disabled,
        )

    def _advance_mark(self, attributes: Any) -> None:
        if self.ad:
            return  # AD's watermark is the USN read before the search.
        stamp = client.first_value(attributes, "modifyTimestamp")
        if stamp and _GENERALIZED_TIME.fullmatch(stamp) and (self.new_mark is None or stamp > self.new_mark):
            self.new_mark = stamp

    def _email(self, dn: str, raw: str | None) -> str | None:
        email = (raw or "").strip()
        if not email:
            return None
        local, _, domain = email.rpartition("@")
        if len(email) > MAX_EMAIL_CHARS or not local or "." not in domain or any(c.isspace() for c in email):
            self.tally.problem(f"{dn}: the e-mail address {email!r} is not valid; left empty.", error=False)
            return None
        return email

    def _group_keys(self, names: Iterable[str]) -> Iterator[str]:
        for name in names:
            if not name:
                continue
            try:
                yield group_forms(name)[0]
            except BadRequest:
                if name not in self.bad_groups:
                    self.bad_groups.add(name)
                    self.tally.problem(
                        f"The group {name!r} has a name not allowed here (letters, digits and . _ @ + - '); "
                        "its members are imported without it.",
                        error=False,
                    )

    def _existing(self, keys: list[str]) -> dict[str, User]:
        """The users here with these keys: this directory's users the index gave (when the run
        reads everyone), and the others read now, so that users of elsewhere (local ones,
        other directories) are recognised just before this page is written."""
        found = {key: self.own[key] for key in keys if key in self.own}
        rest = [key for key in keys if key not in found]
        for start in range(0, len(rest), BATCH_GET_KEYS):
            chunk = rest[start : start + BATCH_GET_KEYS]
            for user in User.batch_get(chunk, attributes_to_get=_COMPARED):
                found[user.username] = user
        return found

    def _not_ours(self, user: _Wanted, source: str, reason: str) -> None:
        """A name collision (S27): counted and listed, recorded for the admins once, never merged."""
        self.tally.problem(
            f"{user.dn}: a user {user.display_username!r} already exists here ({reason}); not overwritten.",
            error=True,
        )
        if (user.entry_id, source, reason) in self.recorded_collisions:
            return
        self.recorded_collisions.add((user.entry_id, source, reason))
        record_entry_collision(
            EntryCollision(
                source=self.source,
                entry_id=user.entry_id,
                dn=user.dn,
                username=user.display_username,
                typed=None,
                user_source=source,
                reason=reason,
            ),
            context=self.context,
            clock=self.clock,
        )

    # ------------------------------------------------------------ writing

    def _ensure_groups(self, keys: set[str]) -> None:
        missing = sorted(keys - self.known_groups)
        for start in range(0, len(missing), BATCH_GET_KEYS):
            chunk = missing[start : start + BATCH_GET_KEYS]
            for group in Group.batch_get(chunk):
                self.known_groups.add(group.name)
        for key in missing:
            if key in self.known_groups:
                continue
            if add_group_if_missing(key, key, source=self.source, clock=self.clock):
                self.tally.groups_created += 1
            self.known_groups.add(key)

    def _create(self, users: list[_Wanted]) -> None:
        # A batch write carries no condition (and transactions are 3x slower per user): the
        # names were read by ``_existing`` for this page, just before, so the window in which
        # a user created elsewhere could be overwritten is that of this page's writes.
        if not users:
            return
        now = self.clock.now()
        created = [_new_user(user, self.source, now) for user in users]
        with User.batch_write() as batch:
            for item in created:
                batch.save(item)
        self.tally.created += len(created)
        # Only now that every user of the batch is written (the batch raises otherwise).
        for item in created:
            self.welcome.send(item)

    def _update(self, user: _Wanted, current: User) -> None:
        actions: list[Action] = [User.updated_at.set(self.clock.now())]
        if user.display_username != current.display_username:
            actions.append(User.display_username.set(user.display_username))
        for attribute, value, old in (
            (User.email, user.email, current.email),
            (User.display_name, user.display_name, current.display_name),
        ):
            if value != old:
                actions.append(attribute.set(value) if value is not None else attribute.remove())
        if set(current.groups or ()) != user.groups:
            actions.append(User.groups.set(set(user.groups)) if user.groups else User.groups.remove())
        # An import disables but never re-enables: a user disabled here (by an admin, or by an
        # earlier run) stays disabled until an admin enables them.
        newly_disabled = user.disabled and not current.disabled
        if newly_disabled:
            actions += [User.disabled.set(True), User.trust_epoch.add(1)]
        if user.entry_id != current.directory_id:
            actions.append(User.directory_id.set(user.entry_id))
        if not self._write(user.key, actions):
            self._not_ours(user, "unknown", "the user changed source during the import")
            return
        if newly_disabled:
            end_user_sessions(user.key)
            self.tally.disabled += 1
        else:
            self.tally.updated += 1

    def _disable_missing(self) -> None:
        for key, current in self.own.items():
            if key in self.seen or current.disabled:
                continue
            actions: list[Action] = [
                User.disabled.set(True),
                User.trust_epoch.add(1),
                User.updated_at.set(self.clock.now()),
            ]
            if self._write(key, actions):
                end_user_sessions(key)
                self.tally.disabled += 1

    def _write(self, key: str, actions: list[Action]) -> bool:
        """Update only the changed attributes (never the counters a sign-in moves), and only
        while the user still belongs to this directory."""
        try:
            User(key).update(actions=actions, condition=User.source == self.source)
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def counts(self, started_at: float, finished_at: float) -> RunCounts:
        tally = self.tally
        # These sum up the whole run, so they are kept even when the problems list is full.
        summaries = []
        if tally.not_registered:
            summaries.append(
                f"auto registration is off: {tally.not_registered} directory users were not created "
                "(turn it on, then run a full import to create them)."
            )
        if self.welcome.missing_sender:
            summaries.append(f"{NO_SENDER}.")
        return RunCounts(
            created=tally.created,
            updated=tally.updated,
            disabled=tally.disabled,
            unchanged=tally.unchanged,
            errors=tally.errors,
            groups_created=tally.groups_created,
            groups_updated=tally.groups_updated,
            full=self.full,
            started_at=started_at,
            finished_at=finished_at,
            watermark=self.new_mark,
            problems=(*tally.problems, *summaries),
            not_registered=tally.not_registered,
            welcome_sent=self.welcome.sent,
            welcome_failed=self.welcome.failed,
            groups_at_watermark=self._groups_at_mark(),
        )


def _differs(user: _Wanted, current: User) -> bool:
    return (
        user.entry_id != current.directory_id
        or user.display_username != current.display_username
        or user.email != current.email
        or user.display_name != current.display_name
        or user.groups != frozenset(current.groups or ())
        or (user.disabled and not current.disabled)
    )


def _new_user(user: _Wanted, source: str, now: float) -> User:
    return User(
        user.key,
        display_username=user.display_username,
        email=user.email,
        display_name=user.display_name,
        password_hash=None,
        groups=set(user.groups) or None,
        disabled=user.disabled,
        source=source,
        directory_id=user.entry_id,
        created_at=now,
        updated_at=now,
    )


def _display_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = "".join(ch for ch in unicodedata.normalize("NFC", raw) if ch.isprintable()).strip()
    return text[:MAX_DISPLAY_NAME_CHARS] or None


def _checked_mark(watermark: str | None, *, ad: bool) -> str | None:
    # The watermark goes into a filter: only the exact shape the runs store is used.
    if not watermark:
        return None
    pattern = _USN if ad else _GENERALIZED_TIME
    return watermark if pattern.fullmatch(watermark) else None


# ---------------------------------------------------------------- LDAP reads


def _pages(
    conn: ldap3.Connection, base: str, search_filter: str, attributes: list[str]
) -> Iterator[list[dict[str, Any]]]:
    """The entries under ``base`` matching ``search_filter``, one page (RFC 2696) at a time."""
    import ldap3
    from ldap3.core.exceptions import LDAPException
    from ldap3.core.results import RESULT_NO_SUCH_OBJECT

    cookie: bytes | None = None
    while True:
        try:
            conn.search(
                base,
                search_filter,
                search_scope=ldap3.SUBTREE,
                attributes=attributes,
                paged_size=PAGE_SIZE,
                paged_cookie=cookie,
            )
        except LDAPException as exc:
            raise Unreachable(f"The directory stopped answering the import under {base}: {exc}") from exc
        result = conn.result or {}
        code = result.get("result")
        if code == RESULT_NO_SUCH_OBJECT:
            return  # This base does not exist (yet): it holds no one.
        if code is None:
            raise Unreachable(f"The directory stopped answering the import under {base}.")
        if code != 0:
            raise DirectoryError(
                f"The import's search under {base} failed: {result.get('description')} "
                f"{result.get('message') or ''}".strip()
            )
        yield [item for item in conn.response or [] if item.get("type") == "searchResEntry"]
        control = (result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
        cookie = (control.get("value") or {}).get("cookie")
        if not cookie:
            return


def _highest_usn(conn: ldap3.Connection) -> str:
    import ldap3
    from ldap3.core.exceptions import LDAPException

    try:
        conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["highestCommittedUSN"])
    except LDAPException as exc:
        raise Unreachable(f"The directory did not answer the rootDSE read: {exc}") from exc
    entries = [item for item in conn.response or [] if item.get("type") == "searchResEntry"]
    value = client.first_value(entries[0].get("attributes") or {}, "highestCommittedUSN") if entries else None
    if value is None or not _USN.fullmatch(value):
        raise DirectoryError(
            "The directory's rootDSE has no highestCommittedUSN; is it really Active Directory?"
        )
    return value


def _memberships(conn: ldap3.Connection, settings: DirectorySettings) -> dict[str, set[str]]:
    """Member DN (lower case) -> group names, from one paged search of the groups (instead of
    one group search per user)."""
    base = settings.group_base or settings.bases[0]
    member = settings.group_member_attribute
    found: dict[str, set[str]] = {}
    for page in _pages(conn, base, f"({member}=*)", [member]):
        for entry in page:
            name = client.group_name(str(entry.get("dn")))
            if not name:
                continue
            for dn in client.attribute_values(entry.get("attributes") or {}, member):
                found.setdefault(dn.lower(), set()).add(name)
    return found
