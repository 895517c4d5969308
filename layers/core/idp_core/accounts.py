"""Users and groups: the logic behind the admin console, the CLI and the local seed.

Every function validates its whole input before it writes anything, then writes with a
condition so that concurrent admins cannot silently overwrite each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from idp_core import audit, mail
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.groups import existing_groups, forget_cached_groups
from idp_core.lockout import unlock_actions
from idp_core.mail import Mailer
from idp_core.models import Group, User, condition_failed
from idp_core.names import canonical_group, canonical_username, group_forms, username_forms
from idp_core.passwords import hash_password, validate_new_password
from idp_core.phone import contact_number, mask_phone
from idp_core.sessions import end_user_sessions

MAX_EMAIL_CHARS = 254
MAX_DISPLAY_NAME_CHARS = 128
MAX_DESCRIPTION_CHARS = 256


def _clean_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = email.strip()
    local, _, domain = email.rpartition("@")
    if len(email) > MAX_EMAIL_CHARS or not local or "." not in domain or any(ch.isspace() for ch in email):
        raise BadRequest(f"{email!r} is not a valid e-mail address.")
    return email


def _clean_display_name(display_name: str | None) -> str | None:
    if display_name is None or not display_name.strip():
        return None
    display_name = display_name.strip()
    if len(display_name) > MAX_DISPLAY_NAME_CHARS or not display_name.isprintable():
        raise BadRequest(f"A display name is at most {MAX_DISPLAY_NAME_CHARS} printable characters.")
    return display_name


# ---------------------------------------------------------------- users


def find_user(username: str) -> User | None:
    try:
        return User.get(canonical_username(username))
    except User.DoesNotExist:
        return None


def get_user(username: str) -> User:
    user = find_user(username)
    if user is None:
        raise NotFound(f"There is no user {username!r}.")
    return user


def list_users() -> list[User]:
    return sorted(User.scan(), key=lambda user: user.username)


@dataclass(frozen=True)
class NewUser:
    """A user to add (by an admin, the CLI or the local seed): the username and the fields the
    account starts with; ``source`` is where the user comes from ("local" or a directory's)."""

    username: str
    password: str | None = None
    email: str | None = None
    display_name: str | None = None
    groups: Iterable[str] = ()
    is_admin: bool = False
    source: str = "local"


def create_user(new: NewUser, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK) -> User:
    key, display = username_forms(new.username)
    if new.password is not None:
        validate_new_password(new.password, username=display)
    clean_email = _clean_email(new.email)
    clean_display_name = _clean_display_name(new.display_name)
    group_names = existing_groups(new.groups)
    now = clock.now()
    user = User(
        key,
        display_username=display,
        email=clean_email,
        display_name=clean_display_name,
        password_hash=hash_password(new.password) if new.password is not None else None,
        is_admin=new.is_admin,
        groups=group_names or None,
        source=new.source,
        created_at=now,
        updated_at=now,
    )
    try:
        user.save(condition=User.username.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            raise Conflict(f"The user {display!r} already exists.") from exc
        raise
    audit.record(
        audit.EventType.USER_CREATED,
        "success",
        context=context,
        subject=key,
        details={"admin": new.is_admin, "groups": ",".join(sorted(group_names))},
        clock=clock,
    )
    return user


def _update_user(
    username: str,
    actions: list[Action],
    event: audit.EventType,
    context: AuditContext | None,
    clock: Clock,
    *,
    then: Callable[[User], Mapping[str, object]] | None = None,
) -> User:
    user = get_user(username)
    try:
        user.update(
            actions=[*actions, User.updated_at.set(clock.now())],
            condition=User.username.exists(),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no user {username!r}.") from exc
        raise
    # ``then`` follows the update up (e.g. ends sessions) and says what it did in the event.
    details = then(user) if then is not None else {}
    audit.record(event, "success", context=context, subject=user.username, details=details, clock=clock)
    return user


def refuse_on_self(user: User, context: AuditContext | None, action: str) -> None:
    """An admin must not lock themselves out of the console by mistake."""
    if context is not None and context.actor == user.username:
        raise BadRequest(f"You cannot {action} your own account. Ask another administrator to do it.")


def set_user_disabled(
    username: str, disabled: bool, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> User:
    """Disable or enable a user (the console's buttons, ``idp user disable|enable``): the very
    change, and event, of ``idp user update --disable|--enable``."""
    return update_user(username, UserChanges(disabled=disabled), context=context, clock=clock)


def set_admin(
    username: str, is_admin: bool, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> User:
    """Grant or revoke administrator rights: the very change, and event, of ``idp user update
    --admin|--no-admin``."""
    return update_user(username, UserChanges(is_admin=is_admin), context=context, clock=clock)


def reset_password(
    username: str,
    new_password: str,
    *,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
    mailer: Mailer | None = None,
) -> User:
    """An admin sets a new local password for a user (the console, ``idp user set-password``).

    Like a change by the user (``idp_core.password_change``), it ends every session of the
    user and the trust of their devices: whoever signed in with the old password is out.
    Then the user gets an e-mail notice through ``mailer`` (None: no notice, for the local
    seed and tests that read no mail).
    """
    user = get_user(username)
    validate_new_password(new_password, username=user.display_username)
    _update_user(
        username,
        [User.password_hash.set(hash_password(new_password)), User.trust_epoch.add(1)],
        audit.EventType.USER_PASSWORD_RESET,
        context,
        clock,
        then=lambda changed: {"sessions_ended": end_user_sessions(changed.username)},
    )
    if mailer is not None:
        mail.password_changed(user, by_admin=True, mailer=mailer, context=context, clock=clock)
    return user


def set_user_groups(
    username: str, groups: Iterable[str], *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> User:
    """Set a user's groups (the console's group boxes): the very change, and event, of ``idp
    user update --group``."""
    return update_user(username, UserChanges(groups=list(groups)), context=context, clock=clock)


@dataclass(frozen=True, kw_only=True)
class UserChanges:
    """What ``update_user`` changes: None keeps a field, "" clears the e-mail address, phone
    number or display name. ``seen_at`` is the ``updated_at`` of the user the admin looked at
    (the console's form carries it): a user changed since then is not overwritten."""

    email: str | None = None
    phone: str | None = None
    display_name: str | None = None
    groups: Iterable[str] | None = None
    is_admin: bool | None = None
    disabled: bool | None = None
    seen_at: float | None = None


# A directory user's attributes that its imports write: changed in the directory, not here.
DIRECTORY_OWNED = {"email": "e-mail address", "display_name": "display name"}
# The changes the user is told of at their old address (``mail.contact_changed``).
CONTACT_ATTRIBUTES = {"email": "e-mail address", "phone": "phone number"}
# What the user may reach: each change of it is an event of its own, not ``user.updated``.
ACCESS_ATTRIBUTES = ("disabled", "is_admin", "groups")


def _wanted(changes: UserChanges) -> dict[str, object]:
    """The attributes ``changes`` sets, each checked as creation checks it (None: removed)."""
    wanted: dict[str, object] = {}
    if changes.email is not None:
        wanted["email"] = _clean_email(changes.email)
    if changes.phone is not None:
        wanted["phone"] = contact_number(changes.phone) if changes.phone.strip() else None
    if changes.display_name is not None:
        wanted["display_name"] = _clean_display_name(changes.display_name)
    if changes.groups is not None:
        wanted["groups"] = existing_groups(changes.groups) or None
    if changes.is_admin is not None:
        wanted["is_admin"] = bool(changes.is_admin)
    if changes.disabled is not None:
        wanted["disabled"] = bool(changes.disabled)
    return wanted


def _comparable(attribute: str, value: object) -> object:
    """A stored or wanted value in a form that compares: groups as a set, the rest as they are."""
    if attribute == "groups":
        return frozenset(cast(Iterable[str], value or ()))
    return value


def _audit_value(attribute: str, value: object) -> str:
    """How the audit trail shows a value: addresses and numbers masked, groups sorted."""
    if value is None:
        return "-"
    if attribute == "email":
        return mail.mask_email(str(value))
    if attribute == "phone":
        return mask_phone(str(value))
    if attribute == "groups":
        return ",".join(sorted(cast(Iterable[str], value)))
    return str(value)


def update_user(
    username: str,
    changes: UserChanges,
    *,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
    mailer: Mailer | None = None,
) -> User:
    """Change a user's details (``idp user update``, the console's user page).

    Every value is checked before anything is written, as ``create_user`` checks it; a
    directory user's e-mail address and display name belong to the directory and are
    refused. The write is conditional on the user being as read (``updated_at``), so a
    stale form or a concurrent change is refused instead of overwritten. A changed e-mail
    address or phone number is told to the user at the address they had before (through
    ``mailer``; None sends nothing, for tests that read no mail): an attacker with an admin's
    session cannot quietly send the user's messages elsewhere. Disabling ends the user's
    sessions and device trust. One audit event names each change, addresses masked.
    """
    # Strongly consistent: the version compared with the form's must be the latest.
    try:
        user = User.get(canonical_username(username), consistent_read=True)
    except User.DoesNotExist as exc:
        raise NotFound(f"There is no user {username!r}.") from exc
    wanted = _wanted(changes)
    changed = {
        attribute: value
        for attribute, value in wanted.items()
        if _comparable(attribute, value) != _comparable(attribute, getattr(user, attribute))
    }
    if changes.seen_at is not None and float(changes.seen_at) != float(user.updated_at):
        raise Conflict(
            f"The user {user.display_username!r} was changed after you opened the page; "
            "look at the user again and repeat your change."
        )
    if not changed:
        return user
    owned = [label for attribute, label in DIRECTORY_OWNED.items() if attribute in changed]
    if owned and user.source != "local":
        raise BadRequest(
            f"The {' and '.join(owned)} of {user.display_username!r} come from the user store "
            f"{user.source}, which owns them: change them there, and the next import brings them here."
        )
    if changed.get("disabled") is True:
        refuse_on_self(user, context, "disable")
    if changed.get("is_admin") is False:
        refuse_on_self(user, context, "revoke administrator rights from")
    if changed.get("disabled") is False and user.deleting_since is not None:
        raise BadRequest(
            f"The user {user.display_username!r} is being deleted; delete them again to finish the deletion."
        )
    # Shown before the write, which refreshes ``user`` with the new values.
    shown = {
        attribute: (_audit_value(attribute, getattr(user, attribute)), _audit_value(attribute, value))
        for attribute, value in changed.items()
    }
    more: dict[str, object] = {}
    old_email = user.email
    actions: list[Action] = [
        getattr(User, attribute).set(value) if value is not None else getattr(User, attribute).remove()
        for attribute, value in changed.items()
    ]
    if changed.get("disabled") is True:
        actions.append(User.trust_epoch.add(1))
    try:
        user.update(
            actions=[*actions, User.updated_at.set(clock.now())],
            condition=User.username.exists() & (User.updated_at == user.updated_at),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise Conflict(
                f"The user {user.display_username!r} was changed or deleted meanwhile; look at the user "
                "again and repeat your change."
            ) from exc
        raise
    if changed.get("disabled") is True:
        more["sessions_ended"] = end_user_sessions(user.username)
    contact = [label for attribute, label in CONTACT_ATTRIBUTES.items() if attribute in changed]
    if contact and mailer is not None:
        sent = mail.contact_changed(
            user, changed=contact, old_email=old_email, mailer=mailer, context=context, clock=clock
        )
        more["notice"] = "sent" if sent else "not sent"
    _audit_update(user, changed, shown, more, context, clock)
    return user


def _audit_update(
    user: User,
    changed: Mapping[str, object],
    shown: Mapping[str, tuple[str, str]],
    more: dict[str, object],
    context: AuditContext | None,
    clock: Clock,
) -> None:
    """A change of what the user may reach (status, administrator rights, groups) is its own
    event (``user.disabled``, ``user.enabled``, ``user.admin_changed``, ``user.groups_changed``),
    whichever way it was made, so that a filter on it finds them all; the other details are
    one ``user.updated`` event."""
    access: list[tuple[audit.EventType, dict[str, object]]] = []
    if "disabled" in changed:
        if changed["disabled"]:
            access.append((audit.EventType.USER_DISABLED, {"sessions_ended": more.pop("sessions_ended")}))
        else:
            access.append((audit.EventType.USER_ENABLED, {}))
    if "is_admin" in changed:
        access.append((audit.EventType.USER_ADMIN_CHANGED, {"admin": changed["is_admin"]}))
    if "groups" in changed:
        groups = ",".join(sorted(cast(Iterable[str], changed["groups"] or ())))
        access.append((audit.EventType.USER_GROUPS_CHANGED, {"groups": groups}))
    for event, details in access:
        audit.record(event, "success", context=context, subject=user.username, details=details, clock=clock)
    settings = {
        attribute: values for attribute, values in shown.items() if attribute not in ACCESS_ATTRIBUTES
    }
    if settings:
        audit.record_changes(
            audit.EventType.USER_UPDATED,
            settings,
            subject=user.username,
            context=context,
            more=more,
            clock=clock,
        )


def sign_out_everywhere(
    username: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> int:
    """End every session of the user, the one asking included ("Sign out everywhere": an
    admin's console or CLI, or the user on /me); returns how many ended."""
    user = get_user(username)
    ended = end_user_sessions(user.username)
    audit.record(
        audit.EventType.USER_SIGNED_OUT_EVERYWHERE,
        "success",
        context=context,
        subject=user.username,
        details={"sessions_ended": ended},
        clock=clock,
    )
    return ended


def unlock_user(username: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK) -> User:
    return _update_user(username, unlock_actions(User), audit.EventType.USER_UNLOCKED, context, clock)


# ---------------------------------------------------------------- groups


def find_group(name: str) -> Group | None:
    try:
        return Group.get(canonical_group(name))
    except Group.DoesNotExist:
        return None


def get_group(name: str) -> Group:
    group = find_group(name)
    if group is None:
        raise NotFound(f"There is no group {name!r}.")
    return group


def list_groups() -> list[Group]:
    return sorted(Group.scan(), key=lambda group: group.name)


def create_group(
    name: str,
    *,
    description: str | None = None,
    source: str = "local",
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Group:
    key, display = group_forms(name)
    if description is not None and (
        len(description) > MAX_DESCRIPTION_CHARS or not description.isprintable()
    ):
        raise BadRequest(f"A group description is at most {MAX_DESCRIPTION_CHARS} printable characters.")
    group = Group(
        key, display_name=display, description=description or None, source=source, created_at=clock.now()
    )
    try:
        group.save(condition=Group.name.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            raise Conflict(f"The group {display!r} already exists.") from exc
        raise
    audit.record(audit.EventType.GROUP_CREATED, "success", context=context, subject=key, clock=clock)
    return group


def set_group_disabled(
    name: str, disabled: bool, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> Group:
    group = get_group(name)
    try:
        group.update(actions=[Group.disabled.set(disabled)], condition=Group.name.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no group {name!r}.") from exc
        raise
    forget_cached_groups()
    event = audit.EventType.GROUP_DISABLED if disabled else audit.EventType.GROUP_ENABLED
    audit.record(event, "success", context=context, subject=group.name, clock=clock)
    return group


def group_members(name: str) -> list[User]:
    key = get_group(name).name
    return sorted(User.scan(User.groups.contains(key)), key=lambda user: user.username)
