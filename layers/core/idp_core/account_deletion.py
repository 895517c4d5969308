"""Deleting a user and everything that could act as them (sessions, pending codes, second
factors, hardware token assignments, devices), and resetting the second factors of a user
who lost them.

Apart from the rest of ``idp_core.accounts`` because it frees factors through the
second-factor methods (a hardware token goes back to the pool): the console's user pages and
the sign-in page load accounts without the method plug-ins, and only a deletion or a reset
loads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pynamodb.exceptions import DeleteError, UpdateError

from idp_core import audit, mail
from idp_core.accounts import get_user, refuse_on_self
from idp_core.adaptive.devices import remove_all as remove_all_devices
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest, NotFound
from idp_core.mail import Mailer
from idp_core.mfa import methods
from idp_core.mfa.factors import release_token
from idp_core.models import Factor, OathToken, Transaction, User, condition_failed
from idp_core.names import canonical_username
from idp_core.sessions import end_user_sessions


@dataclass(frozen=True)
class Deletion:
    """What ``delete_user`` removed: counts by kind (sessions, transactions, factors,
    tokens_freed, devices); ``user_existed`` is False when only leftovers were found."""

    display_username: str
    user_existed: bool
    removed: Mapping[str, int]

    def summary(self) -> str:
        return _summary(self.removed)


_REMOVED_LABELS = {
    "sessions": "session(s) ended",
    "transactions": "pending code(s) removed",
    "factors": "sign-in method(s) removed",
    "tokens_freed": "hardware token(s) freed",
    "devices": "device(s) removed",
}


def _summary(removed: Mapping[str, int]) -> str:
    """The counts of what went, for people, e.g. "2 session(s) ended, 1 device(s) removed"."""
    return ", ".join(f"{count} {_REMOVED_LABELS[kind]}" for kind, count in removed.items())


def delete_user(
    username: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> Deletion:
    """Delete a user and everything that could act as them: their sessions, pending one-time
    codes, second factors (backup codes included), hardware token assignments and devices.

    The user item goes last. It is first marked (disabled, ``deleting_since``, device trust
    ended), so no sign-in starts and no session is accepted while the rest goes, and the
    name cannot be created again before nothing of the old user is left: a user created
    under the same name must never inherit the old one's factors. Every step may be
    repeated, so a deletion that fails half way is finished by deleting again. A name
    without a user but with leftovers (an older version deleted only the user item) is
    cleaned up the same way.
    """
    key = canonical_username(username)
    try:
        user: User | None = User.get(key, consistent_read=True)
    except User.DoesNotExist:
        user = None
    if user is None:
        removed = _remove_belongings(key)
        if not any(removed.values()):
            raise NotFound(f"There is no user {username!r}.")
        audit.record(
            audit.EventType.USER_DELETED,
            "success",
            context=context,
            subject=key,
            details={**removed, "leftovers_only": True},
            clock=clock,
        )
        return Deletion(str(username), False, removed)
    refuse_on_self(user, context, "delete")
    _mark_for_deletion(key, clock)
    removed = _remove_belongings(key)
    try:
        User(key).delete(condition=User.deleting_since.exists())
    except DeleteError as exc:
        if condition_failed(exc):  # Another admin's deletion finished first.
            raise NotFound(f"There is no user {username!r}.") from exc
        raise
    audit.record(
        audit.EventType.USER_DELETED, "success", context=context, subject=key, details=removed, clock=clock
    )
    return Deletion(str(user.display_username), True, removed)


def _mark_for_deletion(key: str, clock: Clock) -> None:
    now = clock.now()
    try:
        User(key).update(
            actions=[
                User.disabled.set(True),
                # A repeated deletion keeps the time the first one started.
                User.deleting_since.set(User.deleting_since | now),
                User.trust_epoch.add(1),
                User.updated_at.set(now),
            ],
            condition=User.username.exists(),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no user {key!r}.") from exc
        raise


def _remove_belongings(key: str) -> dict[str, int]:
    """Remove what belongs to the user ``key``, sessions first; returns how many of each.
    Each step finds what is left, so running this again finishes an interrupted run."""
    return {
        "sessions": end_user_sessions(key),
        "transactions": _remove_transactions(key),
        **_remove_factors(key),
        "devices": remove_all_devices(key),
    }


def _remove_transactions(key: str) -> int:
    gone = 0
    with Transaction.batch_write() as batch:
        for found in Transaction.by_user.query(key):
            batch.delete(Transaction(found.id_hash))
            gone += 1
    return gone


def _remove_factors(key: str) -> dict[str, int]:
    """Delete the user's factors, freeing their hardware tokens first (with the HOTP counter
    the user reached, so no code the user already typed works for the token's next owner)."""
    user_factors = list(Factor.query(key, consistent_read=True))
    freed = sum(methods.release(factor) for factor in user_factors)
    with Factor.batch_write() as batch:
        for factor in user_factors:
            batch.delete(factor)
    # A token can name the user without a factor (left by an older version's deletion).
    freed += sum(release_token(token.serial, key) for token in OathToken.scan(OathToken.assigned_to == key))
    return {"factors": len(user_factors), "tokens_freed": freed}


@dataclass(frozen=True)
class FactorReset:
    """What ``reset_second_factors`` did: counts by kind (sessions, transactions, factors,
    tokens_freed) and whether the user was told by e-mail."""

    display_username: str
    removed: Mapping[str, int]
    notified: bool

    def summary(self) -> str:
        return _summary(self.removed)


def reset_second_factors(
    username: str,
    *,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
    mailer: Mailer | None = None,
) -> FactorReset:
    """An admin removes every second factor of a user who lost them (the console's "Reset
    second factors", ``idp user reset-mfa``): every factor and backup code, through each
    method's own removal hook (``methods.release``: hardware tokens become free, and a method
    added later frees what it holds), their pending codes, their sessions and the trust of
    their devices. The next sign-in must set up a new factor (``User.must_enrol``); then the
    user hears of it (through ``mailer``; None: no notice) and the reset is audited.

    The steps are ordered so that stopping after any of them leaves the user no weaker than
    before, and a repeated reset finishes the job: first the account is marked (must enrol,
    devices no longer trusted), which changes nothing while factors remain; then the
    sessions end, so nobody signed in keeps working while factors go; then the factors go;
    last the sessions end again, for a sign-in that finished with a factor meanwhile.
    """
    user = get_user(username)
    refuse_on_self(user, context, "reset the second factors of")
    if user.deleting_since is not None:
        raise BadRequest(
            f"The user {user.display_username!r} is being deleted; delete them again to finish the deletion."
        )
    key = user.username
    try:
        User(key).update(
            actions=[User.must_enrol.set(True), User.trust_epoch.add(1), User.updated_at.set(clock.now())],
            condition=User.username.exists(),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no user {username!r}.") from exc
        raise
    sessions_ended = end_user_sessions(key)
    removed = {"transactions": _remove_transactions(key), **_remove_factors(key)}
    removed = {"sessions": sessions_ended + end_user_sessions(key), **removed}
    notified = mailer is not None and mail.second_factors_reset(
        user, mailer=mailer, context=context, clock=clock
    )
    audit.record(
        audit.EventType.USER_MFA_RESET,
        "success",
        context=context,
        subject=key,
        details={**removed, "notified": notified},
        clock=clock,
    )
    return FactorReset(str(user.display_username), removed, notified)
