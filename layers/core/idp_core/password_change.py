"""A signed-in user changes their own password (/me/password).

The new password goes where the password that signs the user in lives, as
``idp_core.directories.signin.check`` decides it:

- a local user, or a directory user whose directory is gone or not activated (the local
  password signs them in): the local hash;
- a directory user whose activated directory allows password changes: the directory
  (``idp_core.directories.passwords``); the local hash, a backup password if there is one,
  is left as it is, because the directory's password is the one that changed;
- a directory user whose activated directory does not allow it: refused up front, with
  the directory's name.

The current password is checked first, and a wrong one counts as a failed password
attempt in the lockout (S1), exactly like a wrong password at sign-in. The new password
meets the product's policy (S4) even when a directory adds its own rules. A change ends
the trust of the user's devices and every other session of the user (this one stays), and
is an audit event (S25). A change that fails changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynamodb.exceptions import UpdateError

from idp_core import audit, aws, lockout, mail
from idp_core.adaptive.devices import end_trust
from idp_core.audit import AuditContext
from idp_core.clock import Clock
from idp_core.config import WithSignIn
from idp_core.directories import passwords as directory_passwords
from idp_core.directories import store
from idp_core.directories.errors import (
    DirectoryError,
    EmptyPassword,
    NoSuchUser,
    SeveralUsers,
    TlsFailure,
    Unreachable,
)
from idp_core.directories.errors import WrongPassword as DirectoryWrongPassword
from idp_core.errors import BadRequest, Conflict, Forbidden, IdpError, NotFound
from idp_core.mail import Mailer
from idp_core.models import Directory, Session, User, condition_failed
from idp_core.passwords import WrongPassword, hash_password, normalize, validate_new_password, verify_password
from idp_core.scope import RequestScope
from idp_core.sessions import DIRECTORY_PREFIX, end_user_sessions
from idp_core.signin import PASSWORD_FACTOR, ensure_account_usable

if TYPE_CHECKING:
    from idp_core.directories.settings import DirectorySettings

LOCAL = "local"


class WrongCurrentPassword(BadRequest):
    def __init__(self) -> None:
        super().__init__("The current password is not correct, so your password was not changed.")


class PasswordManagedElsewhere(Forbidden):
    """The user's password belongs to a directory that does not let users change it here."""

    def __init__(self, directory_name: str) -> None:
        super().__init__(f"Your password is managed by {directory_name}; change it there.")


class DirectoryUnavailable(IdpError):
    """The directory could not take the change now (unreachable, or its service account is
    refused); nothing was changed and trying later may work."""

    status = 503


@dataclass(frozen=True)
class PasswordHome:
    """Where a user's password lives: the local hash (``settings`` None), a directory that
    takes changes, or a directory that does not (``managed_by`` names it)."""

    settings: DirectorySettings | None = None
    directory: Directory | None = None
    managed_by: str | None = None

    @property
    def where(self) -> str:
        return DIRECTORY_PREFIX + self.settings.name if self.settings is not None else LOCAL


LOCAL_HOME = PasswordHome()


def password_home(user: User) -> PasswordHome:
    """Where a new password for ``user`` goes; mirrors how sign-in checks their password."""
    source = str(user.source or "")
    if not source.startswith(DIRECTORY_PREFIX):
        return LOCAL_HOME
    name = source[len(DIRECTORY_PREFIX) :]
    try:
        item: Directory | None = store.get_directory(name)
    except (NotFound, BadRequest):
        item = None
    settings = store.settings_of(item) if item is not None else None
    if settings is not None and settings.activate:
        if settings.allow_password_change:
            return PasswordHome(settings=settings, directory=item)
        return PasswordHome(managed_by=settings.display_name)
    # Gone or not activated: sign-in checks the local password, which is then the one to change.
    if user.password_hash:
        return LOCAL_HOME
    return PasswordHome(managed_by=settings.display_name if settings is not None else name)


@dataclass(frozen=True)
class PasswordChanged:
    where: str
    other_sessions_ended: int


def change_password(
    user: User,
    session: Session,
    scope: RequestScope,
    *,
    current_password: str,
    new_password: str,
    repeated_password: str,
    mailer: Mailer | None = None,
) -> PasswordChanged:
    """Change the password of the signed-in ``user`` (whose ``session`` stays signed in), then
    e-mail them a notice (through ``mailer``, by default SES from the configured sender).
    ``scope``: who asks, from where and when, and the settings (the lockout policy).

    Raises ``PasswordManagedElsewhere``, ``BadRequest`` (the new password is unfit or not
    repeated exactly), ``WrongCurrentPassword`` (counted in the lockout),
    ``directory_passwords.PasswordRefused`` (the directory's policy) or
    ``DirectoryUnavailable``; in every case nothing has changed.
    """
    settings = WithSignIn.of(scope.settings)
    context, clock = scope.context, scope.clock
    home = password_home(user)
    if home.managed_by is not None:
        raise PasswordManagedElsewhere(home.managed_by)
    ensure_fit_new_password(user, new_password, repeated_password)
    if normalize(new_password) == normalize(current_password):
        raise BadRequest("The new password must differ from the current one.")
    # A disabled or locked account tests no passwords, like at sign-in (S1, S3): the attempt is
    # reserved before the current password is looked at (S29).
    ensure_account_usable(user, clock)
    reserved = lockout.reserve(User, (user.username,), PASSWORD_FACTOR, policy=settings.lockout, clock=clock)
    if reserved is None:
        raise NotFound("Your account no longer exists.")
    attempt = reserved[1]
    if home.settings is None:
        _change_local(user, attempt, current_password, new_password, context=context, clock=clock)
    else:
        _change_in_directory(
            user, attempt, home, current_password, new_password, context=context, clock=clock
        )
    ended = end_user_sessions(user.username, keep_hash=str(session.id_hash))
    audit.record(
        audit.EventType.PASSWORD_CHANGED,
        "success",
        context=context,
        subject=user.username,
        details={"where": home.where, "other_sessions_ended": ended},
        clock=clock,
    )
    # After the change is written: whoever changed it, the owner hears of it (S8).
    mail.password_changed(
        user, by_admin=False, mailer=mailer or Mailer.for_settings(settings), context=context, clock=clock
    )
    return PasswordChanged(where=home.where, other_sessions_ended=ended)


def ensure_fit_new_password(user: User, new_password: str, repeated_password: str) -> None:
    """``BadRequest`` unless the new password was typed twice the same and meets S4."""
    if new_password != repeated_password:
        raise BadRequest("The two new passwords are not the same; type the new password twice.")
    validate_new_password(new_password, username=user.display_username)


def _wrong_current_password(
    user: User, attempt: lockout.Attempt, context: AuditContext | None
) -> WrongCurrentPassword:
    attempt.failed(subject=user.username, context=context, details={"reason": "password change"})
    return WrongCurrentPassword()


def _change_local(
    user: User,
    attempt: lockout.Attempt,
    current_password: str,
    new_password: str,
    *,
    context: AuditContext | None,
    clock: Clock,
) -> None:
    old_hash = user.password_hash
    try:
        verify_password(old_hash, current_password)
    except WrongPassword as exc:
        raise _wrong_current_password(user, attempt, context) from exc
    try:
        # Only over the hash just verified: a change that raced this one must not be overwritten.
        # The attempt is given back in the same write.
        user.update(
            actions=[
                User.password_hash.set(hash_password(new_password)),
                User.trust_epoch.add(1),
                User.updated_at.set(clock.now()),
                *attempt.release_actions(),
            ],
            condition=User.username.exists() & (User.password_hash == old_hash),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            attempt.succeeded()  # The current password was right all the same.
            raise Conflict(
                "Your password was changed or reset meanwhile, so this change was not made. "
                "Try again with the current password."
            ) from exc
        raise


def _change_in_directory(
    user: User,
    attempt: lockout.Attempt,
    home: PasswordHome,
    current_password: str,
    new_password: str,
    *,
    context: AuditContext | None,
    clock: Clock,
) -> None:
    # password_home returns a directory home only with both.
    if home.settings is None or home.directory is None:
        raise NotFound("The directory of your account no longer exists.")
    directory = home.settings
    shown = directory.display_name
    try:
        # The password goes to the directory exactly as typed, as the sign-in's bind sends it:
        # the directory, not NFKC here, decides which typed forms match.
        directory_passwords.change_password(
            directory,
            store.bind_password(home.directory, kms=aws.client("kms")) or "",
            user.display_username,
            current_password,
            new_password,
        )
    except (EmptyPassword, DirectoryWrongPassword) as exc:
        raise _wrong_current_password(user, attempt, context) from exc
    except directory_passwords.PasswordRefused as exc:
        attempt.succeeded()  # The directory took the current password and refused the new one.
        _record_failure(user, home, type(exc).__name__, context, clock)
        raise
    except DirectoryError as exc:
        attempt.not_evaluated()  # The current password was never judged.
        _record_failure(user, home, type(exc).__name__, context, clock)
        raise _directory_error(exc, shown) from exc
    attempt.succeeded()
    # No local hash is written: the directory holds this password. Only the devices' trust ends.
    end_trust(user.username)


def _directory_error(exc: DirectoryError, shown: str) -> IdpError:
    """What the user reads when the directory could not take the change."""
    if isinstance(exc, (NoSuchUser, SeveralUsers)):
        return BadRequest(
            f"{shown} has no single entry for your account, so your password was not changed. "
            "Ask an administrator."
        )
    if isinstance(exc, (Unreachable, TlsFailure)):
        return DirectoryUnavailable(
            f"{shown} could not be reached, so your password was not changed. Try again later."
        )
    return DirectoryUnavailable(
        f"{shown} could not change your password now, so nothing was changed. "
        "Try again later or ask an administrator."
    )


def _record_failure(
    user: User, home: PasswordHome, reason: str, context: AuditContext | None, clock: Clock
) -> None:
    audit.record(
        audit.EventType.PASSWORD_CHANGED,
        "failure",
        context=context,
        subject=user.username,
        details={"where": home.where, "reason": reason},
        clock=clock,
    )
