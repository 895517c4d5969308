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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from idp_core import audit, aws, lockout, sessions
from idp_core.adaptive import enforce
from idp_core.adaptive.enforce import Browser, Mailer
from idp_core.adaptive.policies import DENY
from idp_core.apps import find_app
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import Settings
from idp_core.errors import BadRequest, Forbidden, IdpError, SignInFailed
from idp_core.models import App, AuditEvent, Device, Factor, KeyValue, Session, User, get_items
from idp_core.names import canonical_username
from idp_core.passwords import WrongPassword, verify_password

if TYPE_CHECKING:
    from idp_core.adaptive.decision import Decision
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
    # The challenge may offer "Trust this device" for this many days (0: it may not).
    trust_days: int = 0


def identify(
    raw_username: str, app_name: str | None = None, device_token: str | None = None
) -> tuple[User | None, App | None, Device | None]:
    """The user behind what was typed (strongly consistent), the app the sign-in is for and
    the user's device behind the device cookie, in one request; None for each that does not
    exist. The same request refreshes the container's copy of the MFA settings, which the
    rest of the sign-in reads.

    A name that cannot be a username is treated like an unknown one, so the answer does
    not tell an attacker more than a wrong password would.
    """
    from idp_core.adaptive import devices
    from idp_core.mfa import policy

    try:
        key = canonical_username(raw_username)
    except BadRequest:
        return None, find_app(app_name) if app_name else None, None
    wanted: list[Any] = [(User, (key,), True), (KeyValue, (policy.SETTINGS_KEY,), False)]
    if app_name:
        wanted.append((App, (app_name,), False))
    device_key = devices.item_key(key, device_token)
    if device_key:
        wanted.append((Device, device_key, False))
    user, settings_item, *rest = get_items(*wanted)
    policy.settings_read_with(settings_item)
    app = rest.pop(0) if app_name else None
    return user, app, (rest[0] if device_key else None)


def verify_password_factor(
    user: User | None,
    password: str,
    *,
    settings: Settings,
    typed_username: str | None = None,
    chosen: str | None = None,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[User, str]:
    """First factor: raise ``SignInFailed`` unless ``user`` may sign in with ``password``;
    returns the user and who accepted the password ("password", or "ldap:<directory>").

    A directory user (or, with ``typed_username``, an unknown name a syncing directory may
    know) is checked by the directory (``idp_core.directories.signin``), unless the account
    is disabled or locked: those never reach the directory. Otherwise the local password
    is always verified (a dummy hash for unknown users) so every refusal takes about as
    long as the others. Only a wrong password for a usable account counts as a failure:
    attempts while locked are refused without being checked or counted.

    ``chosen`` is the sign-in form's "Sign in with" (``directories.signin.chosen_directory``):
    ``LOCAL_CHOICE`` checks the local password only; a directory name lets only that
    directory decide, so a user from elsewhere fails like a wrong password; None: as above.
    """
    from idp_core.directories import signin as directory_signin
    from idp_core.directories.welcome import WelcomeMail

    verdict = directory_signin.LOCAL
    if typed_username is not None and _may_ask_directory(user, chosen, clock):
        verdict = directory_signin.check(
            user,
            typed_username,
            password,
            kms=aws.client("kms"),
            only=chosen,
            clock=clock,
            welcome=WelcomeMail.for_settings(settings),
        )
        user = verdict.created or user
    if verdict.accepted is not None:
        password_ok = verdict.accepted
    else:
        # A user the chosen directory does not own has no password that counts here: the
        # dummy hash keeps the refusal as slow as the others (S5).
        local_hash = user.password_hash if user is not None and _local_password_counts(user, chosen) else None
        try:
            verify_password(local_hash, password)
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
    return user, verdict.via


def _may_ask_directory(user: User | None, chosen: str | None, clock: Clock) -> bool:
    from idp_core.directories.signin import LOCAL_CHOICE, directory_of

    if chosen == LOCAL_CHOICE:
        return False
    if user is None:
        return True
    if chosen is not None and directory_of(user) != chosen:
        return False  # Refused with the dummy hash below, as slow as a real check.
    return directory_of(user) is not None and not user.disabled and not lockout.is_locked(user, clock)


def _local_password_counts(user: User, chosen: str | None) -> bool:
    """False when the form chose a directory the user does not belong to."""
    from idp_core.directories.signin import LOCAL_CHOICE, directory_of

    return chosen is None or chosen == LOCAL_CHOICE or directory_of(user) == chosen


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


def decide(user: User, app: App | None = None, adaptive: Decision | None = None) -> AfterPassword:
    """What is still owed after the first factor, for a sign-in aimed at ``app`` (if any).

    ``mfa``: the app requires a second factor or its adaptive policy challenges this
    sign-in (a trusted device waives only the app's own requirement); ``enrol``: the user
    has no active factor and must set one up first (the MFA settings, or an app that
    requires MFA). An unknown app name decides like no app: the launch that follows
    answers it with "not found".
    """
    from idp_core.mfa import flow, policy

    return flow.owed_after_password(
        user,
        app,
        policy.load_settings,
        force_second_factor=enforce.challenged(adaptive),
        trusted_device=adaptive is not None and adaptive.trusted,
    )


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
    directory: str | None = None,
    context: AuditContext | None = None,
    user_agent: str | None = None,
    device_token: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> SignInResult:
    """Run the pipeline for a username and password and issue a new session.

    ``app_name`` is the app the sign-in is for (IdP-initiated launch): its policy decides
    whether a second factor is owed before the session is complete, and its adaptive
    policy (``idp_core.adaptive``) may challenge or refuse the sign-in. An address the
    policy denies is refused before the password is looked at.

    ``directory`` is the form's "Sign in with" value, if one was sent: "local" or a
    directory shown to users; any other value is ``BadRequest`` before anything is read.
    The session records the directory that checked the password, for the admin console.
    """
    from idp_core.directories.signin import chosen_directory

    chosen = chosen_directory(directory)
    found, app, device = identify(raw_username, app_name, device_token)
    browser = Browser(
        source_ip=context.source_ip if context else None, user_agent=user_agent, device_token=device_token
    )
    enforce.check_address(app, browser, context=context, clock=clock)
    user, via = verify_password_factor(
        found,
        password,
        settings=settings,
        typed_username=raw_username,
        chosen=chosen,
        context=context,
        clock=clock,
    )
    events: list[AuditEvent] = []
    adaptive = enforce.assess(app, user, browser, device, clock=clock)
    if adaptive is not None and app is not None:
        mailer = Mailer.for_settings(settings)
        if adaptive.outcome == DENY:
            enforce.refuse(adaptive, user, app, browser, mailer, context=context, clock=clock)
        if adaptive.exceeded:
            enforce.alert_device_limit(adaptive, user, app, browser, mailer, context=context, clock=clock)
        events.append(enforce.decision_event(adaptive, user, app, context=context, clock=clock))
    decided = decide(user, app, adaptive)
    pending = decided.owed
    events.insert(
        0,
        audit.new_event(
            "auth.signin",
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
        user.username,
        factors={
            PASSWORD_FACTOR,
            # "ldap:<name>" when a directory accepted the password (not a backup's local one).
            *([via] if via.startswith(sessions.DIRECTORY_PREFIX) else []),
            *(sessions.PENDING_PREFIX + factor for factor in pending),
        },
        policy=settings.sessions,
        replaces=previous_session,
        source_ip=context.source_ip if context else None,
        user_agent=user_agent,
        events=events,
        clock=clock,
    )
    return SignInResult(
        user=user,
        issued=issued,
        pending=pending,
        choices=decided.choices,
        methods=decided.methods,
        trust_days=adaptive.policy.trust_days if adaptive is not None else 0,
    )


def launch_app(
    user: User,
    app_name: str,
    *,
    session: Session,
    requested_relay_state: str | None,
    issuer_entity_id: str,
    identity: Callable[[], SigningIdentity],
    browser: Browser,
    mailer: Mailer,
    read: tuple[App | None, Device | None] | None = None,
    trust_device: bool = False,
    events: list[AuditEvent] | None = None,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> LaunchResult:
    """The last step for an app: re-check the account (S3), the app's adaptive policy from
    this browser's address and device, and the app's second-factor policy; then a signed
    SAMLResponse.

    A session without a second factor the app accepts (or the adaptive policy asks for) gets
    ``flow.SecondFactorRequired`` (step-up at /mfa), or ``flow.NoAcceptedFactor`` when the
    user has none of the app's methods; a denial is ``enforce.AccessDenied``. Then the
    device registers (or is trusted, with ``trust_device``). ``identity`` is called only
    once everything else is known to be fine, so a refused launch never touches KMS.

    ``read`` is (app, device) when the caller has read them already; otherwise both are
    read in one request. With ``events``, the audit events (the decision, the issued
    assertion) are added there for the caller to write with its own changes.
    """
    from idp_core.launch import launch_aws_app

    app, device = read if read is not None else _app_and_device(app_name, user.username, browser)
    if app is None or app.name != app_name:
        from idp_core.apps import get_app

        app = get_app(app_name)
    ensure_account_usable(user, clock)
    adaptive = enforce.assess(app, user, browser, device, clock=clock)
    decided = [enforce.decision_event(adaptive, user, app, context=context, clock=clock)] if adaptive else []
    try:
        device_cookie = _pass_policies_and_register(
            app, adaptive, session, user, browser, device, mailer, trust_device, context, clock
        )
        result = launch_aws_app(
            user,
            app,
            session=session,
            requested_relay_state=requested_relay_state,
            issuer_entity_id=issuer_entity_id,
            identity=identity(),
            clock=clock,
            audit_context=context,
            write_event=False,
        )
    except enforce.AccessDenied:
        raise  # The denial wrote its own event, with its reference.
    except IdpError:
        if decided:
            audit.write_all(decided)  # A step-up or a refused launch: the decision still counts (S25).
        raise
    if events is None:
        audit.write_all([*decided, result.event])
    else:
        events.extend([*decided, result.event])
    return replace(result, device_cookie=device_cookie)


def _pass_policies_and_register(
    app: App,
    adaptive: Decision | None,
    session: Session,
    user: User,
    browser: Browser,
    device: Device | None,
    mailer: Mailer,
    trust_device: bool,
    context: AuditContext | None,
    clock: Clock,
) -> str | None:
    """Raise unless the launch passes the app's policies; then register or refresh the device
    (``enforce.complete``) and return a new device cookie value, if any."""
    from idp_core.adaptive import devices

    _pass_policies(app, adaptive, session, user, browser, mailer, context, clock)
    if adaptive is None:
        return None
    try:
        return enforce.complete(
            adaptive,
            user,
            app,
            browser,
            device,
            mailer,
            trust_requested=trust_device,
            context=context,
            clock=clock,
        )
    except devices.DeviceLimitReached:
        # A parallel sign-in took the last place under the limit first.
        _pass_policies(
            app, enforce.limit_reached_instead(adaptive), session, user, browser, mailer, context, clock
        )
        return None


def _app_and_device(app_name: str, username: str, browser: Browser) -> tuple[App | None, Device | None]:
    from idp_core.adaptive import devices

    device_key = devices.item_key(username, browser.device_token)
    if device_key is None:
        return get_items((App, (app_name,), False))[0], None
    app, device = get_items((App, (app_name,), False), (Device, device_key, False))
    return app, device


def _pass_policies(
    app: App,
    adaptive: Decision | None,
    session: Session,
    user: User,
    browser: Browser,
    mailer: Mailer,
    context: AuditContext | None,
    clock: Clock,
) -> None:
    """Raise unless this launch passes the app's adaptive and second-factor policies: the
    stricter of the two wins, and a trusted device waives only the app's own second factor."""
    from idp_core.mfa import flow

    if app.disabled:
        return  # The launch refuses a disabled app with its own message.
    challenged = enforce.challenged(adaptive)
    if adaptive is not None and adaptive.outcome == DENY:
        enforce.refuse(adaptive, user, app, browser, mailer, context=context, clock=clock)
    trusted = adaptive is not None and adaptive.trusted
    if not ((app.mfa_required and not trusted) or challenged):
        return
    try:
        _ensure_second_factor_for(app, session, user, context, clock, challenged=challenged)
    except (flow.SecondFactorRequired, flow.EnrolmentRequired):
        if adaptive is not None and adaptive.exceeded:
            enforce.alert_device_limit(adaptive, user, app, browser, mailer, context=context, clock=clock)
        raise


def _ensure_second_factor_for(
    app: App, session: Session, user: User, context: AuditContext | None, clock: Clock, *, challenged: bool
) -> None:
    from idp_core.mfa import factors, flow, policy

    settings = policy.load_settings()
    try:
        flow.ensure_app_second_factor(session, app, settings, challenged=challenged)
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
            details={"app": app.name, "reason": "adaptive" if challenged else "step-up"},
            clock=clock,
        )
        raise


def sign_out(
    token: str, session: Session, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> None:
    sessions.end_session(token)
    audit.record("auth.signout", "success", context=context, subject=session.username, clock=clock)
