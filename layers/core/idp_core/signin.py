"""The sign-in pipeline: identify -> first factor -> decide -> (second factor) -> issue.

Every refusal on the password step is the same ``SignInFailed`` (same status, same body)
whether the user is unknown, the password wrong, the account locked or disabled (S5), and
an unknown username leaves no record behind (S3). ``decide`` names what is still owed
after the password (a second factor for the target app, or enrolment); the session is
then issued half-way (``sessions.PENDING_PREFIX``) and reaches only the MFA pages until
``mfa.flow`` completes it with a new session id (S14).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idp_core import audit, lockout, sessions
from idp_core.apps import find_app
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import Settings
from idp_core.errors import BadRequest, Forbidden, SignInFailed
from idp_core.models import App, Factor, KeyValue, Session, User, get_items
from idp_core.names import canonical_username
from idp_core.passwords import WrongPassword, verify_password

if TYPE_CHECKING:
    from idp_core.launch import LaunchResult
    from idp_core.mfa.flow import AfterPassword
    from idp_core.saml.certificate import SigningIdentity

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


def identify(raw_username: str, app_name: str | None = None) -> tuple[User | None, App | None]:
    """The user behind what was typed (strongly consistent) and the app the sign-in is for,
    in one request; None for either that does not exist. The same request refreshes the
    container's copy of the MFA settings, which the rest of the sign-in reads.

    A name that cannot be a username is treated like an unknown one, so the answer does
    not tell an attacker more than a wrong password would.
    """
    from idp_core.mfa import policy

    try:
        key = canonical_username(raw_username)
    except BadRequest:
        return None, find_app(app_name) if app_name else None
    wanted: list[Any] = [(User, (key,), True), (KeyValue, (policy.SETTINGS_KEY,), False)]
    if app_name:
        wanted.append((App, (app_name,), False))
    user, settings_item, *app = get_items(*wanted)
    policy.settings_read_with(settings_item)
    return user, (app[0] if app else None)


def verify_password_factor(
    user: User | None,
    password: str,
    *,
    settings: Settings,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> User:
    """First factor: raise ``SignInFailed`` unless ``user`` may sign in with ``password``.

    The password is always verified (a dummy hash for unknown users) so every refusal
    takes about as long as the others. Only a wrong password for a usable account counts
    as a failure: attempts while locked are refused without being checked or counted.
    """
    try:
        verify_password(user.password_hash if user is not None else None, password)
        password_ok = True
    except WrongPassword:
        password_ok = False

    if user is None:
        # No subject and no typed name: people type passwords into the username field.
        audit.record(
            "auth.failure", "failure", context=context, details={"reason": "unknown user"}, clock=clock
        )
        raise SignInFailed()
    if user.disabled:
        _refused(user, "disabled", context, clock)
    try:
        lockout.ensure_not_locked(user, clock)
    except lockout.AccountLocked as exc:
        _refused(user, "locked", context, clock)
        raise SignInFailed() from exc
    if not password_ok:
        lockout.record_failure(user, PASSWORD_FACTOR, policy=settings.lockout, context=context, clock=clock)
        raise SignInFailed()
    lockout.record_success(user, PASSWORD_FACTOR)
    return user


def _refused(user: User, reason: str, context: AuditContext | None, clock: Clock) -> None:
    audit.record(
        "auth.failure",
        "failure",
        context=context,
        subject=user.username,
        details={"reason": reason},
        clock=clock,
    )
    raise SignInFailed()


def decide(user: User, app: App | None = None) -> AfterPassword:
    """What is still owed after the first factor, for a sign-in aimed at ``app_name`` (if any).

    ``mfa``: the app requires a second factor; ``enrol``: the user has no active factor and
    must set one up first (the MFA settings, or an app that requires MFA). An unknown app
    name decides like no app: the launch that follows answers it with "not found".
    """
    from idp_core.mfa import flow, policy

    return flow.owed_after_password(user, app, policy.load_settings)


def ensure_account_usable(user: User, clock: Clock = SYSTEM_CLOCK) -> None:
    """Re-check before issuing a session or an assertion (S3): no bypass around a lock."""
    if user.disabled:
        raise Forbidden("This account is disabled. Ask an administrator.")
    lockout.ensure_not_locked(user, clock)


def password_sign_in(
    raw_username: str,
    password: str,
    *,
    settings: Settings,
    previous_session: str | None = None,
    app_name: str | None = None,
    context: AuditContext | None = None,
    user_agent: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> SignInResult:
    """Run the pipeline for a username and password and issue a new session.

    ``app_name`` is the app the sign-in is for (IdP-initiated launch): its policy decides
    whether a second factor is owed before the session is complete.
    """
    found, app = identify(raw_username, app_name)
    user = verify_password_factor(found, password, settings=settings, context=context, clock=clock)
    decided = decide(user, app)
    pending = decided.owed
    signed_in_event = audit.new_event(
        "auth.signin",
        "success" if not pending else "pending",
        context=context,
        subject=user.username,
        # A pending sign-in is the start of a second-factor challenge (S25).
        details={"factors": PASSWORD_FACTOR, **({"owed": ",".join(sorted(pending))} if pending else {})},
        clock=clock,
    )
    issued = sessions.start_session(
        user.username,
        factors={PASSWORD_FACTOR, *(sessions.PENDING_PREFIX + factor for factor in pending)},
        policy=settings.sessions,
        replaces=previous_session,
        source_ip=context.source_ip if context else None,
        user_agent=user_agent,
        events=[signed_in_event],
        clock=clock,
    )
    return SignInResult(
        user=user, issued=issued, pending=pending, choices=decided.choices, methods=decided.methods
    )


def launch_app(
    user: User,
    app_name: str,
    *,
    session: Session,
    requested_relay_state: str | None,
    issuer_entity_id: str,
    identity: Callable[[], SigningIdentity],
    app: App | None = None,
    write_event: bool = True,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> LaunchResult:
    """The last step for an app: re-check the account (S3) and the app's second-factor
    policy, then a signed SAMLResponse.

    A session without a second factor the app accepts gets ``flow.SecondFactorRequired``
    (step-up at /mfa), or ``flow.NoAcceptedFactor`` when the user has none of the app's
    methods. ``identity`` is called only once everything else is known to be fine, so a
    request for an unknown app never touches KMS or stores a certificate. ``app`` is the
    app's item when the caller has read it already.
    """
    from idp_core.apps import get_app
    from idp_core.launch import launch_aws_app

    if app is None or app.name != app_name:
        app = get_app(app_name)
    ensure_account_usable(user, clock)
    if app.mfa_required and not app.disabled:
        _ensure_second_factor_for(app, session, user, context, clock)
    return launch_aws_app(
        user,
        app,
        requested_relay_state=requested_relay_state,
        issuer_entity_id=issuer_entity_id,
        identity=identity(),
        clock=clock,
        audit_context=context,
        write_event=write_event,
    )


def _ensure_second_factor_for(
    app: App, session: Session, user: User, context: AuditContext | None, clock: Clock
) -> None:
    from idp_core.mfa import factors, flow, policy

    settings = policy.load_settings()
    try:
        flow.ensure_app_second_factor(session, app, settings)
    except flow.SecondFactorRequired:
        methods = flow.accepted_methods(app, settings)
        active = factors.list_factors(user.username, active_only=True)
        if not active:
            raise flow.EnrolmentRequired() from None
        if not flow.order_factors(active, methods):
            raise flow.NoAcceptedFactor(methods) from None
        audit.record(
            "mfa.challenge",
            "pending",
            context=context,
            subject=user.username,
            details={"app": app.name, "reason": "step-up"},
            clock=clock,
        )
        raise


def sign_out(
    token: str, session: Session, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> None:
    sessions.end_session(token)
    audit.record("auth.signout", "success", context=context, subject=session.username, clock=clock)
