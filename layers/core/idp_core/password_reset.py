"""Forgot password (issue 15 point 2): a user who cannot sign in asks for an e-mailed link,
proves their second factor if they have one, and chooses a new password.

1. ``request_reset``: the form on /login/forgot names a username or an e-mail address.
   Whether or not such an account exists, the answer is the same, after the same minimum time
   (S5); only an account that can use the link gets one: a 256-bit random token
   (``secrets.token_urlsafe(32)``) whose SHA-256 alone is stored, as a ``Transaction`` that
   ends after ``RESET_LINK_SECONDS``.
   Requests are limited per source address (refused with a message, which says nothing of
   any account) and per user (silently: the same answer, no e-mail), in the rate counters the
   SMS limits use. A user whose directory keeps their password gets an e-mail that says so
   instead of a link.
2. ``redeem_link``: following the link and pressing "Continue" (a POST, so a mail scanner
   that opens the link spends nothing) deletes the stored token with a condition, so of two
   uses of one link, or a replay, exactly one gets through. The user gets a half-way session
   that owes a new password (``sessions.OWES_NEW_PASSWORD``) and, when they have a second
   factor, that factor too: the challenge at /mfa is the sign-in's own.
3. ``set_new_password``: only such a session, with its second factor proven, sets a password
   (S4's rules), where the password lives (``password_change.password_home``): the local hash,
   or the directory when it takes passwords from here (write-back through its service account),
   else it is refused. Every session of the user ends, their devices' trust ends, they hear of
   it by e-mail and it is audited.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DeleteError, UpdateError

from idp_core import audit, aws, mail, sessions
from idp_core.adaptive.devices import end_trust
from idp_core.clock import Clock, readable_utc
from idp_core.config import WithSignIn
from idp_core.directories import passwords as directory_passwords
from idp_core.directories import store
from idp_core.directories.errors import DirectoryError
from idp_core.errors import BadRequest, Forbidden, NotFound
from idp_core.mail import Mailer
from idp_core.mfa import flow, policy, ratelimit
from idp_core.models import Session, Transaction, User, condition_failed
from idp_core.names import canonical_username
from idp_core.password_change import (
    DirectoryUnavailable,
    PasswordHome,
    PasswordManagedElsewhere,
    ensure_fit_new_password,
    password_home,
)
from idp_core.passwords import hash_password
from idp_core.scope import RequestScope
from idp_core.signin import ensure_account_usable

RESET_LINK_SECONDS = 15 * 60
PURPOSE = "password_reset"
# The stored key of a link: its token's SHA-256, apart from the keys of sign-in transactions.
KEY_PREFIX = "reset:"
# A longer value is no token of ours; it is refused before anything is read.
MAX_TOKEN_CHARS = 128
PER_USER_PER_HOUR = 3
PER_ADDRESS_PER_HOUR = 10
PER_USER_LIMIT = "per_user"
# Longer than storing and e-mailing a link takes (SES answers in about 0.1 s).
MIN_ANSWER_SECONDS = 0.4


class ResetLinkInvalid(BadRequest):
    """One answer for a link that was used, has expired, or was never sent (S5)."""

    def __init__(self) -> None:
        super().__init__(
            "This password reset link cannot be used: it was used already, has expired or is not "
            "complete. Ask for a new one."
        )


class NotAResetSession(Forbidden):
    """The new-password page without a session that followed a reset link."""

    def __init__(self) -> None:
        super().__init__("Open the link in your password reset e-mail again, or ask for a new one.")


def _key(token: str) -> str:
    return KEY_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _find_user(identifier: str) -> User | None:
    """The user named ``identifier``, or the one user whose e-mail address it is (an address
    several users share names none of them: they give their username instead)."""
    try:
        if "@" in identifier:
            found = list(User.by_email.query(identifier.strip(), limit=2))
            return User.get(found[0].username, consistent_read=True) if len(found) == 1 else None
        return User.get(canonical_username(identifier), consistent_read=True)
    except (BadRequest, User.DoesNotExist):
        return None


def _limits(user: User | None, source_ip: str | None) -> list[ratelimit.Limit]:
    limits = [
        ratelimit.Limit(
            key=f"reset:ip:{source_ip or 'unknown'}",
            limit=PER_ADDRESS_PER_HOUR,
            window_seconds=ratelimit.HOUR,
            description="password reset requests came from your address",
            name="per_address",
        )
    ]
    # Only a user who exists has a counter: an unknown name leaves no record (S3).
    if user is not None:
        limits.append(
            ratelimit.Limit(
                key=f"reset:user:{user.username}",
                limit=PER_USER_PER_HOUR,
                window_seconds=ratelimit.HOUR,
                name=PER_USER_LIMIT,
            )
        )
    return limits


def request_reset(
    identifier: str, scope: RequestScope, *, link_for: Callable[[str], str], mailer: Mailer | None = None
) -> None:
    """E-mail the user named ``identifier`` a reset link (``link_for(token)`` makes its URL), if
    there is such a user who may have one. Returns the same (nothing) in every case but the
    source address's limit (``ratelimit.LimitReached``, a 429 with a sentence), and never
    sooner than ``MIN_ANSWER_SECONDS`` after it started."""
    started = time.monotonic()
    try:
        _request_reset(identifier, scope, link_for=link_for, mailer=mailer)
    finally:
        # Storing and e-mailing a link takes longer than finding no account: every answer
        # waits for the same floor, so its time does not tell whether the account exists (S5).
        time.sleep(max(0.0, started + MIN_ANSWER_SECONDS - time.monotonic()))


def _request_reset(
    identifier: str, scope: RequestScope, *, link_for: Callable[[str], str], mailer: Mailer | None
) -> None:
    context, clock = scope.context, scope.clock
    user = _find_user(identifier)
    try:
        ratelimit.consume_all(_limits(user, context.source_ip), clock=clock)
    except ratelimit.LimitReached as exc:
        if exc.reason != PER_USER_LIMIT:
            raise
        _requested(user, "refused", "too many requests for this user", scope)
        return
    if user is None or user.disabled or user.deleting_since is not None:
        _requested(user, "ignored", "no user who can reset a password", scope)
        return
    if not user.email:
        _requested(user, "ignored", "no e-mail address", scope)
        return
    mailer = mailer or Mailer.for_settings(WithSignIn.of(scope.settings))
    home = password_home(user)
    if home.managed_by is not None:
        subject, text = _managed_elsewhere_mail(user, home.managed_by)
    else:
        subject, text = _link_mail(user, link_for(_store_link(user, clock)), scope)
    sent = _send(user, subject, text, mailer)
    _requested(user, "success" if sent else "failure", None if sent else "the e-mail was not sent", scope)


def _store_link(user: User, clock: Clock) -> str:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    Transaction(
        _key(token),
        username=user.username,
        purpose=PURPOSE,
        code_expires_at=now + RESET_LINK_SECONDS,
        created_at=now,
        expires_at=int(now + RESET_LINK_SECONDS) + 1,
    ).save(condition=Transaction.id_hash.does_not_exist())
    return token


def _link_mail(user: User, link: str, scope: RequestScope) -> tuple[str, str]:
    where = f" from the address {scope.context.source_ip}" if scope.context.source_ip else ""
    return "Reset your password", (
        f"Someone asked to reset the password of your account {user.display_username} at "
        f"{readable_utc(scope.clock.now())}{where}.\n\n"
        f"To choose a new password, open this link within {RESET_LINK_SECONDS // 60} minutes; "
        f"it works once:\n{link}\n\n"
        "If you did not ask for it, ignore this e-mail: your password stays as it is."
    )


def _managed_elsewhere_mail(user: User, managed_by: str) -> tuple[str, str]:
    return "Your password is managed by " + managed_by, (
        f"Someone asked to reset the password of your account {user.display_username}. "
        f"Your password is managed by {managed_by}: change or reset it there, or ask an "
        "administrator.\n\nIf you did not ask for it, ignore this e-mail."
    )


def _send(user: User, subject: str, text: str, mailer: Mailer) -> bool:
    sender = mailer.messaging.email_sender
    if not sender or not user.email:
        return False
    try:
        mail.send_text_email(mailer.ses(), sender, [user.email], subject, text)
    except (BotoCoreError, ClientError):  # Whatever SES says, the form's answer stays the same (S5).
        return False
    return True


def _requested(user: User | None, outcome: str, reason: str | None, scope: RequestScope) -> None:
    audit.record(
        audit.EventType.PASSWORD_RESET_REQUESTED,
        outcome,
        context=scope.context,
        subject=user.username if user is not None else None,
        details={"reason": reason} if reason else None,
        clock=scope.clock,
    )


@dataclass(frozen=True)
class Redeemed:
    """The half-way session a used link gives, and whether it owes a second factor first."""

    issued: sessions.IssuedSession
    owes_second_factor: bool


def redeem_link(token: str, scope: RequestScope, *, previous_session: str | None = None) -> Redeemed:
    """Spend the link of ``token`` (once: a conditional delete) and start the session that
    owes the new password and, when the user has one, their second factor first. A link that
    cannot be used is ``ResetLinkInvalid`` and audited, whatever the reason."""
    clock = scope.clock
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise _refused(None, "not a link", scope)
    key = _key(token)
    try:
        item = Transaction.get(key, consistent_read=True)
    except Transaction.DoesNotExist as exc:
        raise _refused(None, "unknown or used link", scope) from exc
    if item.purpose != PURPOSE:
        raise _refused(None, "unknown or used link", scope)
    try:
        Transaction(key).delete(condition=Transaction.id_hash.exists())
    except DeleteError as exc:
        if condition_failed(exc):  # A parallel use of the same link spent it first.
            raise _refused(item.username, "used link", scope) from exc
        raise
    if clock.now() >= float(item.code_expires_at or 0):
        raise _refused(item.username, "expired link", scope)
    try:
        user = User.get(item.username, consistent_read=True)
    except User.DoesNotExist as exc:
        raise _refused(item.username, "no such user", scope) from exc
    ensure_account_usable(user, clock)
    choices, _ = flow.usable_factors(user.username, None, policy.load_settings())
    owed = {sessions.PENDING_PREFIX + sessions.OWES_NEW_PASSWORD}
    if choices:
        owed.add(sessions.PENDING_PREFIX + flow.OWES_SECOND_FACTOR)
    event = audit.new_event(
        audit.EventType.PASSWORD_RESET_LINK_USED,
        "success",
        context=scope.context,
        subject=user.username,
        details={"second_factor": bool(choices)},
        clock=clock,
    )
    issued = sessions.start_session(
        sessions.NewSession(user.username, factors=owed), scope, replaces=previous_session, events=[event]
    )
    return Redeemed(issued, bool(choices))


def _refused(username: str | None, reason: str, scope: RequestScope) -> ResetLinkInvalid:
    audit.record(
        audit.EventType.PASSWORD_RESET_LINK_USED,
        "failure",
        context=scope.context,
        subject=username,
        details={"reason": reason},
        clock=scope.clock,
    )
    return ResetLinkInvalid()


def ensure_reset_session(session: Session, clock: Clock) -> None:
    """Raise unless ``session`` followed a reset link within ``RESET_LINK_SECONDS`` and owes
    nothing but the new password: ``NotAResetSession``, or ``flow.SecondFactorRequired``."""
    owed = sessions.pending_factors(session)
    if sessions.OWES_NEW_PASSWORD not in owed or clock.now() - float(session.created_at) > RESET_LINK_SECONDS:
        raise NotAResetSession()
    if flow.OWES_SECOND_FACTOR in owed:
        raise flow.SecondFactorRequired()


def set_new_password(
    user: User,
    session: Session,
    scope: RequestScope,
    *,
    new_password: str,
    repeated_password: str,
) -> PasswordHome:
    """Set the password of ``user``, whose ``session`` followed a reset link and proved their
    second factor; end all their sessions (this one too) and their devices' trust, e-mail them
    and audit it. Raises ``PasswordManagedElsewhere`` for a directory that takes no passwords
    from here, ``BadRequest`` for an unfit password, ``directory_passwords.PasswordRefused``
    or ``DirectoryUnavailable`` from the directory; then nothing has changed."""
    clock = scope.clock
    ensure_reset_session(session, clock)
    home = password_home(user)
    if home.managed_by is not None:
        raise PasswordManagedElsewhere(home.managed_by)
    ensure_fit_new_password(user, new_password, repeated_password)
    if home.settings is None:
        _set_local(user, new_password, clock)
    else:
        _set_in_directory(user, home, new_password)
        # No local hash is written: the directory holds this password. Only the devices' trust ends.
        end_trust(user.username)
    ended = sessions.end_user_sessions(user.username)
    audit.record(
        audit.EventType.PASSWORD_RESET,
        "success",
        context=scope.context,
        subject=user.username,
        details={"where": home.where, "sessions_ended": ended},
        clock=clock,
    )
    _notify(user, scope, Mailer.for_settings(WithSignIn.of(scope.settings)))
    return home


def _set_local(user: User, new_password: str, clock: Clock) -> None:
    try:
        user.update(
            actions=[
                User.password_hash.set(hash_password(new_password)),
                User.trust_epoch.add(1),
                User.updated_at.set(clock.now()),
            ],
            condition=User.username.exists(),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound("Your account no longer exists.") from exc
        raise


def _set_in_directory(user: User, home: PasswordHome, new_password: str) -> None:
    if home.settings is None or home.directory is None:
        raise NotFound("The directory of your account no longer exists.")
    shown = home.settings.display_name
    try:
        directory_passwords.reset_password(
            home.settings,
            store.bind_password(home.directory, kms=aws.client("kms")) or "",
            user.display_username,
            new_password,
        )
    except directory_passwords.PasswordRefused:
        raise  # The directory's own words on its password policy.
    except DirectoryError as exc:
        raise DirectoryUnavailable(
            f"{shown} could not take your new password now, so nothing was changed. "
            "Try again later or ask an administrator."
        ) from exc


def _notify(user: User, scope: RequestScope, mailer: Mailer) -> None:
    where = f" from the address {scope.context.source_ip}" if scope.context.source_ip else ""
    what = (
        f"The password of your account {user.display_username} was reset with a link sent to "
        f"your e-mail address at {readable_utc(scope.clock.now())}{where}. You were signed out everywhere"
    )
    mail.notify(
        user,
        "Your password was reset",
        mail.change_text(what),
        ses=mailer.ses(),
        messaging=mailer.messaging,
        context=scope.context,
        clock=scope.clock,
    )
