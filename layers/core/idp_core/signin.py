"""The sign-in pipeline: identify -> first factor -> decide -> (second factor) -> issue.

Every refusal on the password step is the same ``SignInFailed`` (same status, same body)
whether the user is unknown, the password wrong, the account locked or disabled (S5), and
an unknown username leaves no record behind (S3). ``decide`` names what is still owed
after the password (a second factor for the target app, or enrolment); the session is
then issued half-way (``sessions.PENDING_PREFIX``) and reaches only the MFA pages until
``mfa.flow`` completes it with a new session id (S14).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from idp_core import audit, aws, lockout, observability, sessions
from idp_core.adaptive import devices, enforce
from idp_core.adaptive.policies import DENY
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.concurrency import together
from idp_core.config import WithLockout, WithSignIn
from idp_core.directories import signin as directories
from idp_core.directories.errors import CredentialsRejected, DirectoryError, DirectoryUnavailable
from idp_core.directories.signin import (
    LOCAL_CHOICE,
    chosen_directory,
    directory_of,
    record_collision,
)
from idp_core.directories.store import cached_settings
from idp_core.directories.welcome import WelcomeMail
from idp_core.errors import BadRequest, Forbidden, IdpError, SignInFailed
from idp_core.mail import Mailer
from idp_core.mfa import factors, flow, policy
from idp_core.models import (
    App,
    AuditEvent,
    Device,
    DirectoryEntry,
    Factor,
    KeyValue,
    Session,
    User,
    get_items,
)
from idp_core.names import canonical_username
from idp_core.passwords import WrongPassword, verify_password
from idp_core.scope import RequestScope

if TYPE_CHECKING:
    from idp_core.adaptive.decision import Decision
    from idp_core.mfa.flow import AfterPassword

PASSWORD_FACTOR = "password"  # noqa: S105 - the name of a factor, not a secret


@dataclass(frozen=True)
class SignInResult:
    user: User
    issued: sessions.IssuedSession
    # What the user still owes before the session is complete: "mfa" or "enrol" (or nothing).
    pending: frozenset[str] = frozenset()
    # For a second factor owed: the user's factors the app accepts (default first), its methods.
    choices: tuple[Factor, ...] = ()
    methods: tuple[str, ...] = ()
    # The challenge may offer "Trust this device" for this many days (0: it may not).
    trust_days: int = 0
    # The target app and the browser's device as the sign-in read them (None: none).
    app: App | None = None
    device: Device | None = None


def identify(
    key: str | None, app_name: str | None = None, device_token: str | None = None
) -> tuple[App | None, Device | None]:
    """The app the sign-in is for and the device behind the device cookie of the user ``key``,
    in one request that also refreshes the container's copy of the MFA settings, which the
    rest of the sign-in reads; None for each that does not exist. The user is read by the
    reservation of the password attempt (``lockout.reserve``), not here."""
    wanted: list[Any] = [(KeyValue, (policy.SETTINGS_KEY,), False)]
    if app_name:
        wanted.append((App, (app_name,), False))
    device_key = devices.item_key(key, device_token) if key else None
    if device_key:
        wanted.append((Device, device_key, False))
    settings_item, *rest = get_items(*wanted)
    policy.settings_read_with(settings_item)
    app = rest.pop(0) if app_name else None
    return app, (rest[0] if device_key else None)


@dataclass(frozen=True)
class PasswordChecked:
    """The first factor passed: the user, who accepted the password ("password", or
    "ldap:<directory>"), and the reserved attempt the caller gives back with its own writes
    (None for a user "Sync users" has just created)."""

    user: User
    via: str
    attempt: lockout.Attempt | None


def verify_password_factor(
    typed_username: str,
    password: str,
    *,
    settings: WithSignIn,
    chosen: str | None = None,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
    reserved: lockout.Reservation | None = None,
) -> PasswordChecked:
    """First factor: raise ``SignInFailed`` unless the password signs someone in.

    The attempt is reserved on the record the password would unlock before the password is
    looked at (S29): the user the typed name names, or, for a name that is no user here, the
    user (or the not yet registered entry) that a directory's entry for it maps to. A locked,
    disabled or unknown account is refused with the same answer, after the same work: one
    conditional update, one Argon2id verification, one audit event (S5).

    ``chosen`` is the sign-in form's "Sign in with" (``directories.signin.chosen_directory``):
    ``LOCAL_CHOICE`` checks the local password only; a directory name lets only that
    directory decide, so a user from elsewhere fails like a wrong password.

    ``reserved`` is the reservation on the typed name's user when the caller made it already
    (``reserve_for``), at the same time as its other reads.
    """
    check = _PasswordCheck(
        typed_username, password, settings=settings, chosen=chosen, context=context, clock=clock
    )
    key = _key_or_none(typed_username)
    if key is not None:
        found = check.taken(reserved if reserved is not None else reserve_for(key, settings, clock), key)
        if found is not None:
            return check.known_user(*found)
    if chosen != LOCAL_CHOICE:
        by_alias = check.directory_alias()
        if by_alias is not None:
            return by_alias
    return check.unknown()


def reserve_for(key: str, settings: WithLockout, clock: Clock) -> lockout.Reservation:
    """Reserve a password attempt on the user ``key`` (S29), keeping a refusal for later."""
    return lockout.try_reserve(User, (key,), PASSWORD_FACTOR, policy=settings.lockout, clock=clock)


def _key_or_none(typed: str) -> str | None:
    try:
        return canonical_username(typed)
    except BadRequest:
        return None  # Cannot be anyone's name: treated like an unknown one.


class _PasswordCheck:
    """One password step; every way out but a ``PasswordChecked`` raises ``SignInFailed``."""

    def __init__(
        self,
        typed: str,
        password: str,
        *,
        settings: WithSignIn,
        chosen: str | None,
        context: AuditContext | None,
        clock: Clock,
    ) -> None:
        self.typed, self.password, self.settings = typed, password, settings
        self.chosen, self.context, self.clock = chosen, context, clock

    def reserve_user(self, key: str) -> tuple[User, lockout.Attempt] | None:
        return self.taken(reserve_for(key, self.settings, self.clock), key)

    def taken(self, reserved: lockout.Reservation, key: str) -> tuple[User, lockout.Attempt] | None:
        """The reserved user; a refused reservation ends the sign-in like a wrong password."""
        if reserved.refused is not None:
            record = reserved.refused.record
            self.refuse_unchecked(key, "disabled" if record is not None and record.disabled else "locked")
        return reserved.found  # type: ignore[return-value]  # reserved on the User model

    def known_user(self, user: User, attempt: lockout.Attempt) -> PasswordChecked:
        directory = directory_of(user)
        if self.chosen not in (None, LOCAL_CHOICE) and directory != self.chosen:
            # The chosen directory does not own this user: no password of theirs counts here.
            self.verify_local(None)
            self.failed(attempt, user.username)
        if directory is not None and self.chosen != LOCAL_CHOICE:
            return self.directory_user(user, directory, attempt)
        return self.local_or_fail(user, attempt, PASSWORD_FACTOR)

    def directory_user(self, user: User, directory: str, attempt: lockout.Attempt) -> PasswordChecked:
        """A user of a directory: their entry's bind decides, with the local password as its
        backup ("Backup authentication") when the directory refuses or cannot answer."""
        try:
            entry = directories.entry_of_user(user, kms=aws.client("kms"))
            if entry is None:  # The directory is gone or not activated: the local password decides.
                return self.local_or_fail(user, attempt, PASSWORD_FACTOR)
            reason = directories.mismatch(entry, user)
            if reason is not None:
                self.collision(entry, user, reason)
                self.verify_local(None)
                self.failed(attempt, user.username, reason="directory entry is not this user")
            if directories.check_password(entry, self.password):
                return PasswordChecked(user, entry.source, attempt)
            why = "refused the password"
        except CredentialsRejected as exc:
            why = f"has no single entry for the user ({type(exc).__name__})"
        except DirectoryError as exc:
            if not self.backup_allowed(directory, user):
                attempt.not_evaluated()  # Nobody judged the password: the attempt does not count.
                self.refuse_unchecked(user.username, _unavailable(exc), DirectoryUnavailable(directory, exc))
            why = f"did not answer: {type(exc).__name__}"
        if self.backup_allowed(directory, user):
            return self.local_or_fail(user, attempt, f"password (the directory {directory} {why})")
        self.failed(attempt, user.username)

    def directory_alias(self) -> PasswordChecked | None:
        """A name that is no user here but an entry of an activated directory (an e-mail address,
        a UPN): the user the entry maps to, if that user is the entry's (S27); else the entry
        itself, counted on its own record and registered by "Sync users"."""
        entry = directories.entry_for_alias(self.typed, kms=aws.client("kms"), only=self.chosen)
        if entry is None:
            return None
        reserved = self.reserve_user(entry.key) if entry.key is not None else None
        if reserved is None:
            return self.unregistered_entry(entry, collided=False)
        user, attempt = reserved
        reason = directories.mismatch(entry, user)
        if reason is not None:
            # Another source's user (or another entry's): never signed in through this entry;
            # the attempt counts on the entry instead.
            attempt.not_evaluated()
            self.collision(entry, user, reason)
            return self.unregistered_entry(entry, collided=True)
        try:
            accepted = directories.check_password(entry, self.password)
        except DirectoryError as exc:
            attempt.not_evaluated()
            self.refuse_unchecked(
                user.username, _unavailable(exc), DirectoryUnavailable(entry.settings.name, exc)
            )
        if not accepted:
            self.failed(attempt, user.username)
        return PasswordChecked(user, entry.source, attempt)

    def unregistered_entry(self, entry: Any, *, collided: bool) -> PasswordChecked:
        """An entry with no user of its own here: its failures count on its own record (S29),
        without creating a user; "Sync users" registers it when the password is right."""
        subject = entry.key or self.typed
        try:
            reserved = lockout.reserve(
                DirectoryEntry,
                entry.record_key,
                PASSWORD_FACTOR,
                policy=self.settings.lockout,
                clock=self.clock,
                create_with=entry.record_attributes(self.typed),
            )
        except lockout.AccountLocked:
            self.refuse_unchecked(subject, "locked directory entry")
        assert reserved is not None  # The record is created when missing.
        attempt = reserved[1]
        if collided:
            self.verify_local(None)
            self.failed(attempt, subject, reason="the name belongs to another source")
        try:
            accepted = directories.check_password(entry, self.password)
        except DirectoryError as exc:
            attempt.not_evaluated()
            self.refuse_unchecked(subject, _unavailable(exc), DirectoryUnavailable(entry.settings.name, exc))
        if not accepted:
            self.failed(attempt, subject, reason="directory user not registered here")
        attempt.succeeded()
        if not entry.settings.sync_users or entry.key is None:
            self.refuse_unchecked(subject, "directory user not registered here")
        try:
            user = directories.register(
                entry, clock=self.clock, welcome=WelcomeMail.for_settings(self.settings), context=self.context
            )
        except directories.NameTaken as taken:
            self.collision(entry, taken.user, taken.reason)
            self.refuse_unchecked(subject, "the name belongs to another source")
        return PasswordChecked(user, entry.source, None)

    def unknown(self) -> NoReturn:
        self.verify_local(None)  # As slow as a real check (S5).
        # No subject: people type passwords into the username field.
        audit.record(
            audit.EventType.AUTH_FAILURE,
            "failure",
            context=self.context,
            details={"reason": "unknown user"},
            clock=self.clock,
        )
        observability.count("SignInPasswordRefused")
        raise SignInFailed()

    def local_or_fail(self, user: User, attempt: lockout.Attempt, via: str) -> PasswordChecked:
        if self.verify_local(user.password_hash):
            return PasswordChecked(user, via, attempt)
        self.failed(attempt, user.username)

    def verify_local(self, password_hash: str | None) -> bool:
        """Check the local password; without a hash, a dummy one takes the same time (S5)."""
        try:
            verify_password(password_hash, self.password)
        except WrongPassword:
            return False
        return password_hash is not None

    def backup_allowed(self, directory: str, user: User) -> bool:
        settings = cached_settings(directory)
        return settings is not None and settings.backup_auth and bool(user.password_hash)

    def collision(self, entry: Any, user: User, reason: str) -> None:
        record_collision(
            entry,
            user_source=str(user.source or "local"),
            reason=reason,
            typed=self.typed,
            context=self.context,
            clock=self.clock,
        )

    def failed(self, attempt: lockout.Attempt, subject: str, **details: object) -> NoReturn:
        attempt.failed(subject=subject, context=self.context, details=details)
        observability.count("SignInPasswordRefused")
        raise SignInFailed()

    def refuse_unchecked(self, subject: str, reason: str, error: IdpError | None = None) -> NoReturn:
        """Refuse without judging the password (a lock, a disabled account) after the same
        work as a judged one (S5). A directory that cannot answer is ``error``, a
        ``DirectoryUnavailable``: a 503 that says to try again (issue 12), not a wrong password."""
        self.verify_local(None)
        audit.record(
            audit.EventType.AUTH_FAILURE,
            "failure",
            context=self.context,
            subject=subject,
            details={"reason": reason},
            clock=self.clock,
        )
        if error is not None:
            raise error
        observability.count("SignInPasswordRefused")
        raise SignInFailed()


def _unavailable(exc: Exception) -> str:
    return f"directory unavailable: {type(exc).__name__}"


def decide(
    user: User, app: App | None = None, adaptive: Decision | None = None, active: list[Factor] | None = None
) -> AfterPassword:
    """What is still owed after the first factor, for a sign-in aimed at ``app`` (if any).

    ``mfa``: the app requires a second factor or its adaptive policy challenges this
    sign-in (a trusted device waives only the app's own requirement); ``enrol``: the user
    has no active factor and must set one up first (the MFA settings, or an app that
    requires MFA). An unknown app name decides like no app: the launch that follows
    answers it with "not found". ``active``: the user's active factors, when already read.
    """
    return flow.owed_after_password(
        user,
        app,
        policy.load_settings,
        force_second_factor=enforce.challenged(adaptive),
        trusted_device=adaptive is not None and adaptive.trusted,
        active=active,
    )


def ensure_account_usable(user: User, clock: Clock = SYSTEM_CLOCK) -> None:
    """Re-check before issuing a session or an assertion (S3): no bypass around a lock."""
    if user.disabled:
        raise Forbidden("This account is disabled. Ask an administrator.")
    lockout.ensure_not_locked(user, clock)


def assess_adaptive(
    app: App | None, user: User, device: Device | None, scope: RequestScope, releases: list[lockout.Attempt]
) -> tuple[Decision | None, list[AuditEvent]]:
    """The app's adaptive policy on a sign-in whose first factor was right: its decision and
    event, or its refusal (the attempts in ``releases`` then count as succeeded, since the
    credential was right and the policy refused for another reason)."""
    settings = WithSignIn.of(scope.settings)
    context, clock, browser = scope.context, scope.clock, scope.browser
    events: list[AuditEvent] = []
    try:
        adaptive = enforce.assess(app, user, browser, device, clock=clock)
        if adaptive is not None and app is not None:
            mailer = Mailer.for_settings(settings)
            if adaptive.outcome == DENY:
                enforce.refuse(adaptive, user, app, browser, mailer, context=context, clock=clock)
            if adaptive.exceeded:
                enforce.alert_device_limit(adaptive, user, app, browser, mailer, context=context, clock=clock)
            events.append(enforce.decision_event(adaptive, user, app, context=context, clock=clock))
    except IdpError:
        for attempt in releases:
            attempt.succeeded()
        raise
    return adaptive, events


def password_sign_in(
    raw_username: str,
    password: str,
    scope: RequestScope,
    *,
    previous_session: str | None = None,
    app_name: str | None = None,
    directory: str | None = None,
) -> SignInResult:
    """Run the pipeline for a username and password and issue a new session; ``scope`` says
    from which browser and when, and holds the settings (the lockout and session policies).

    ``app_name`` is the app the sign-in is for (IdP-initiated launch): its policy decides
    whether a second factor is owed before the session is complete, and its adaptive
    policy (``idp_core.adaptive``) may challenge or refuse the sign-in. An address the
    policy denies is refused before the password is looked at.

    ``directory`` is the form's "Sign in with" value, if one was sent: "local" or a
    directory shown to users; any other value is ``BadRequest`` before anything is read.
    The session records the directory that checked the password, for the admin console.
    """
    settings = WithSignIn.of(scope.settings)
    context, clock, browser = scope.context, scope.clock, scope.browser
    device_token = browser.device_token
    chosen = chosen_directory(directory)
    key = _key_or_none(raw_username)
    # Three reads that do not depend on each other, at once (one round trip): the app, the
    # device and the MFA settings; the reservation of the attempt, which reads the user; and
    # the user's factors, which the decision after the password needs. Known and unknown
    # names make the same three requests (S5).
    (app, device), reserved, active = together(
        lambda: identify(key, app_name, device_token),
        lambda: reserve_for(key, settings, clock) if key else lockout.Reservation(),
        lambda: factors.list_factors(key, active_only=True) if key else [],
    )
    try:
        enforce.check_address(app, browser, context=context, clock=clock)
    except IdpError:
        if reserved.found is not None:
            reserved.found[1].not_evaluated()  # Refused before the password: nothing counts.
        raise
    checked = verify_password_factor(
        raw_username,
        password,
        settings=settings,
        chosen=chosen,
        context=context,
        clock=clock,
        reserved=reserved,
    )
    observability.count("SignInPasswordAccepted")
    user, via = checked.user, checked.via
    releases = [checked.attempt] if checked.attempt is not None else []
    if user.username != key and device_token:
        # Signed in by an alias (an e-mail address, a UPN): the device is the user's by their name.
        device_key = devices.item_key(user.username, device_token)
        device = get_items((Device, device_key, False))[0] if device_key else None
    adaptive, events = assess_adaptive(app, user, device, scope, releases)
    decided = decide(user, app, adaptive, active if user.username == key else None)
    pending = decided.owed
    events.insert(
        0,
        audit.new_event(
            audit.EventType.AUTH_SIGNIN,
            "success" if not pending else "pending",
            context=context,
            subject=user.username,
            # A pending sign-in is the start of a second-factor challenge (S25).
            details={
                "factors": PASSWORD_FACTOR,
                "via": via,
                **({"owed": ",".join(sorted(pending))} if pending else {}),
            },
            clock=clock,
        ),
    )
    issued = sessions.start_session(
        sessions.NewSession(
            user.username,
            factors={
                PASSWORD_FACTOR,
                # "ldap:<name>" when a directory accepted the password (not a backup's local one).
                *([via] if via.startswith(sessions.DIRECTORY_PREFIX) else []),
                *(sessions.PENDING_PREFIX + factor for factor in pending),
            },
        ),
        scope,
        replaces=previous_session,
        events=events,
        releases=releases,
    )
    return SignInResult(
        user=user,
        issued=issued,
        pending=pending,
        choices=decided.choices,
        methods=decided.methods,
        trust_days=adaptive.policy.trust_days if adaptive is not None else 0,
        app=app,
        device=device,
    )


def sign_out(
    token: str, session: Session, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> None:
    sessions.end_session(token)
    audit.record(
        audit.EventType.AUTH_SIGNOUT, "success", context=context, subject=session.username, clock=clock
    )
