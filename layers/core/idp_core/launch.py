"""Launching an AWS app: from a signed-in user to a signed SAMLResponse for the AWS console.

The checks here decide who gets which IAM roles; every refusal is a typed error with a message
the user can act on, and an audit event the admin can find (S18, S25).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from idp_core import audit, observability, saml_apps
from idp_core.adaptive import devices, enforce
from idp_core.adaptive.policies import DENY
from idp_core.apps import get_app, role_pairs_for_user
from idp_core.audit import AuditContext
from idp_core.clock import Clock
from idp_core.config import WithMessaging
from idp_core.directories.attributes import principal_tags_for
from idp_core.errors import BadRequest, Forbidden, IdpError
from idp_core.groups import enabled_groups
from idp_core.mail import Mailer
from idp_core.mfa import factors, flow, policy
from idp_core.models import App, AuditEvent, Device, Session, User, get_items
from idp_core.saml.aws import (
    PASSWORD_PROTECTED_TRANSPORT,
    REFEDS_MFA,
    AssertionRuleViolation,
    AwsAssertion,
    build_signed_response,
    check_role_session_name,
)
from idp_core.saml.response import SpAssertion, SpAttribute, build_sp_response
from idp_core.scope import Browser, RequestScope
from idp_core.sessions import DIRECTORY_PREFIX, second_factor_methods
from idp_core.signin import ensure_account_usable
from idp_core.sp_sso import PendingRequest, mark_answered

if TYPE_CHECKING:
    from idp_core.adaptive.decision import Decision

    # The certificate code loads cryptography; the caller hands the identity in.
    from idp_core.saml.certificate import SigningIdentity

MAX_RELAY_STATE_CHARS = 2048
# S17: besides the app's own RelayState, only AWS console pages of the three partitions.
CONSOLE_HOSTS = ("console.aws.amazon.com", "console.amazonaws-us-gov.com", "console.amazonaws.cn")


@dataclass(frozen=True)
class LaunchResult:
    acs_url: str
    saml_response_b64: str
    relay_state: str
    role_count: int
    # The ``saml.assertion_issued`` event; already written unless the caller asked to write it.
    event: AuditEvent
    # A new device cookie value for the browser (the launch registered this device).
    device_cookie: str | None = None


@dataclass(frozen=True)
class Issuer:
    """Who signs: the IdP's entity id, and its signing identity, which is fetched (KMS, then
    cached) only when a launch gets as far as signing."""

    entity_id: str
    identity: Callable[[], SigningIdentity]


@dataclass(frozen=True)
class LaunchTarget:
    """The app a launch is for and the RelayState asked for; ``read`` is (app, device) when the
    caller has read them already (the sign-in and the challenge's answer have)."""

    app_name: str
    relay_state: str | None = None
    read: tuple[App | None, Device | None] | None = None
    # The SP's AuthnRequest this launch answers (SP-initiated sign-in to a SAML app).
    sp_request: PendingRequest | None = None


class LaunchRefused(Forbidden):
    """The user may not launch this app (disabled user or app, no role)."""


def _is_console_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if (
        parts.scheme != "https"
        or port is not None
        or parts.username is not None
        or parts.password is not None
    ):
        return False
    if "\\" in url or not url.isprintable():
        return False
    return any(host == allowed or host.endswith("." + allowed) for allowed in CONSOLE_HOSTS)


def choose_relay_state(app: App, requested: str | None) -> str:
    """The app's RelayState, or the requested one if it is that or an AWS console page (S17)."""
    if requested is None or requested == "":
        return str(app.relay_state)
    if len(requested) > MAX_RELAY_STATE_CHARS:
        raise BadRequest(f"The RelayState is longer than {MAX_RELAY_STATE_CHARS} characters.")
    if requested == app.relay_state or _is_console_url(requested):
        return requested
    raise BadRequest(
        "The RelayState must be the app's start page or an https page of the AWS console "
        "(console.aws.amazon.com); other destinations are refused to prevent open redirects."
    )


def _refuse(
    error: IdpError, *, user: User, app: App, clock: Clock, audit_context: AuditContext | None, rule: str
) -> IdpError:
    audit.record(
        audit.EventType.SAML_ASSERTION_REFUSED,
        "failure",
        context=audit_context,
        subject=user.username,
        details={"app": app.name, "rule": rule, "reason": error.message},
        clock=clock,
    )
    return error


def _refuser(user: User, app: App, scope: RequestScope) -> Callable[[IdpError, str], IdpError]:
    def refuse(error: IdpError, rule: str) -> IdpError:
        return _refuse(error, user=user, app=app, clock=scope.clock, audit_context=scope.context, rule=rule)

    return refuse


def _refuse_unusable(user: User, app: App, refuse: Callable[[IdpError, str], IdpError]) -> None:
    if user.disabled:
        raise refuse(
            LaunchRefused("Your account is disabled, so it cannot sign in to apps."), "user-disabled"
        )
    if app.disabled:
        raise refuse(
            LaunchRefused(
                f"The app {app.display_name!r} is disabled: an administrator turned its sign-ins off. "
                "Ask an administrator if you need it."
            ),
            "app-disabled",
        )


def _issued_event(user: User, scope: RequestScope, details: dict[str, Any], *, write: bool) -> AuditEvent:
    observability.count("AssertionIssued")
    event = audit.new_event(
        audit.EventType.SAML_ASSERTION_ISSUED,
        "success",
        context=scope.context,
        subject=user.username,
        details=details,
        clock=scope.clock,
    )
    if write:
        event.save()
    return event


def authn_context_class(session: Session, app: App) -> str:
    """What the assertion for ``app`` says about how the user signed in (AuthnContextClassRef).

    The REFEDS MFA profile when the session proved a second factor whose method the app
    accepts (a method the app does not accept counts for nothing here, as at its challenge);
    otherwise a password over TLS. A session that skipped the second factor on a trusted
    device proved none at this sign-in, so it claims only the password. When security keys
    arrive, a phishing-resistant class for sessions that proved one belongs first here.
    """
    proven = second_factor_methods(session)
    if not proven:
        return PASSWORD_PROTECTED_TRANSPORT
    if proven.intersection(policy.app_methods(app, policy.load_settings())):
        return REFEDS_MFA
    return PASSWORD_PROTECTED_TRANSPORT


def launch_aws_app(
    user: User,
    app: App,
    *,
    session: Session,
    requested_relay_state: str | None,
    issuer: Issuer,
    scope: RequestScope,
    write_event: bool = True,
) -> LaunchResult:
    """A signed SAMLResponse giving ``user`` the roles ``app`` maps to the user's enabled groups,
    saying how ``session`` signed in (``authn_context_class``).

    ``write_event=False`` leaves the issued event to the caller, to write with its own changes.
    """
    identity = issuer.identity()
    clock = scope.clock

    refuse = _refuser(user, app, scope)
    _refuse_unusable(user, app, refuse)
    try:
        relay_state = choose_relay_state(app, requested_relay_state)
    except BadRequest as exc:
        raise refuse(exc, "relay-state") from exc
    # Every role the user may take, in each account with that account's SAML provider: AWS's
    # chooser lists them by account.
    roles = role_pairs_for_user(app, enabled_groups(user))
    if not roles:
        raise refuse(
            LaunchRefused(
                f"You have no role in the app {app.display_name!r}. Ask an administrator to add you to "
                "a group that the app maps to an AWS role."
            ),
            "no-role",
        )
    assertion = AwsAssertion(
        issuer=issuer.entity_id,
        acs_url=app.acs_url,
        audience=app.audience,
        name_id=user.username,
        roles=tuple(roles),
        role_session_name=user.display_username,
        # The username stays on every session chained from this one (CloudTrail's sourceIdentity);
        # AWS lets no one change it later, so what a user did stays theirs.
        source_identity=user.display_username,
        session_duration=int(app.session_duration),
        # Session tags for ABAC; AWS needs sts:TagSession in the role's trust policy for them.
        principal_tags=_directory_attributes(user),
        authn_context=authn_context_class(session, app),
    )
    try:
        check_role_session_name(assertion.role_session_name)
    except AssertionRuleViolation as exc:
        message = (
            f"Your username {user.display_username!r} cannot be used as the AWS role session name: "
            "AWS accepts only 2-64 characters of letters, digits and _ + = , . @ -. "
            "Ask an administrator for help."
        )
        observability.count("AssertionRefused")
        raise refuse(AssertionRuleViolation(message, rule=exc.rule), exc.rule) from exc
    try:
        response = build_signed_response(assertion, identity, clock)
    except AssertionRuleViolation as exc:
        observability.count("AssertionRefused")
        raise refuse(exc, exc.rule) from exc
    event = _issued_event(user, scope, {"app": app.name, "roles": len(roles)}, write=write_event)
    return LaunchResult(
        acs_url=str(app.acs_url),
        saml_response_b64=base64.b64encode(response).decode("ascii"),
        relay_state=relay_state,
        role_count=len(roles),
        event=event,
    )


def _directory_attributes(user: User) -> dict[str, str]:
    """The session tags of a directory user whose directory sends its configured attributes."""
    if not str(user.source or "").startswith(DIRECTORY_PREFIX):
        return {}
    return principal_tags_for(user)


def launch_app(
    user: User,
    session: Session,
    target: LaunchTarget,
    scope: RequestScope,
    *,
    issuer: Issuer,
    trust_device: bool = False,
    events: list[AuditEvent] | None = None,
) -> LaunchResult:
    """The last step for an app: re-check the account (S3), the app's adaptive policy from
    this browser's address and device, and the app's second-factor policy; then a signed
    SAMLResponse.

    A session without a second factor the app accepts (or the adaptive policy asks for) gets
    ``flow.SecondFactorRequired`` (step-up at /mfa), or ``flow.NoAcceptedFactor`` when the
    user has none of the app's methods; a denial is ``enforce.AccessDenied``. Then the
    device registers (or is trusted, with ``trust_device``). The issuer's identity is fetched
    only once everything else is known to be fine, so a refused launch never touches KMS.

    Without ``target.read`` the app and the device are read in one request. With ``events``,
    the audit events (the decision, the issued assertion) are added there for the caller to
    write with its own changes.
    """
    app, device = (
        target.read
        if target.read is not None
        else _app_and_device(target.app_name, user.username, scope.browser)
    )
    if app is None or app.name != target.app_name:
        app = get_app(target.app_name)
    ensure_account_usable(user, scope.clock)
    adaptive = enforce.assess(app, user, scope.browser, device, clock=scope.clock)
    decided = (
        [enforce.decision_event(adaptive, user, app, context=scope.context, clock=scope.clock)]
        if adaptive
        else []
    )
    try:
        device_cookie = _pass_policies_and_register(
            app, adaptive, session, user, device=device, scope=scope, trust_device=trust_device
        )
        issue = launch_aws_app if app.kind != saml_apps.KIND else _sp_launcher(target.sp_request)
        result = issue(
            user,
            app,
            session=session,
            requested_relay_state=target.relay_state,
            issuer=issuer,
            scope=scope,
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
    *,
    device: Device | None,
    scope: RequestScope,
    trust_device: bool,
) -> str | None:
    """Raise unless the launch passes the app's policies; then register or refresh the device
    (``enforce.complete``) and return a new device cookie value, if any."""
    mailer = Mailer.for_settings(WithMessaging.of(scope.settings))
    _pass_policies(app, adaptive, session, user, scope=scope, mailer=mailer)
    if adaptive is None:
        return None
    try:
        return enforce.complete(adaptive, user, app, device, scope, trust_requested=trust_device)
    except devices.DeviceLimitReached:
        # A parallel sign-in took the last place under the limit first.
        _pass_policies(
            app, enforce.limit_reached_instead(adaptive), session, user, scope=scope, mailer=mailer
        )
        return None


def _app_and_device(app_name: str, username: str, browser: Browser) -> tuple[App | None, Device | None]:
    device_key = devices.item_key(username, browser.device_token)
    if device_key is None:
        return get_items((App, (app_name,), False))[0], None
    app, device = get_items((App, (app_name,), False), (Device, device_key, False))
    return app, device


def _pass_policies(
    app: App, adaptive: Decision | None, session: Session, user: User, *, scope: RequestScope, mailer: Mailer
) -> None:
    """Raise unless this launch passes the app's adaptive and second-factor policies: the
    stricter of the two wins, and a trusted device waives only the app's own second factor."""
    if app.disabled:
        return  # The launch refuses a disabled app with its own message.
    challenged = enforce.challenged(adaptive)
    context, clock = scope.context, scope.clock
    if adaptive is not None and adaptive.outcome == DENY:
        enforce.refuse(adaptive, user, app, scope.browser, mailer, context=context, clock=clock)
    trusted = adaptive is not None and adaptive.trusted
    if not ((app.mfa_required and not trusted) or challenged):
        return
    try:
        _ensure_second_factor_for(app, session, user, context, clock, challenged=challenged)
    except (flow.SecondFactorRequired, flow.EnrolmentRequired):
        if adaptive is not None and adaptive.exceeded:
            enforce.alert_device_limit(
                adaptive, user, app, scope.browser, mailer, context=context, clock=clock
            )
        raise


def _ensure_second_factor_for(
    app: App, session: Session, user: User, context: AuditContext | None, clock: Clock, *, challenged: bool
) -> None:
    settings = policy.load_settings()
    try:
        flow.ensure_app_second_factor(session, app, settings, challenged=challenged)
    except flow.SecondFactorRequired:
        active = factors.list_factors(user.username, active_only=True)
        methods = flow.accepted_methods(app, settings, active)
        if not active:
            raise flow.EnrolmentRequired() from None
        if not flow.order_factors(active, methods):
            raise flow.NoAcceptedFactor(methods) from None
        audit.record(
            audit.EventType.MFA_CHALLENGE,
            "pending",
            context=context,
            subject=user.username,
            details={"app": app.name, "reason": "adaptive" if challenged else "step-up"},
            clock=clock,
        )
        raise


def _sp_launcher(request: PendingRequest | None) -> Callable[..., LaunchResult]:
    def issue(user: User, app: App, **options: object) -> LaunchResult:
        return launch_sp_app(user, app, sp_request=request, **options)  # type: ignore[arg-type]

    return issue


def launch_sp_app(
    user: User,
    app: App,
    *,
    session: Session,
    requested_relay_state: str | None,
    issuer: Issuer,
    scope: RequestScope,
    sp_request: PendingRequest | None = None,
    write_event: bool = True,
) -> LaunchResult:
    """A signed Response for the service provider of a SAML app: to the ACS the SP's request
    chose from its metadata (SP-initiated, with InResponseTo and the RelayState unchanged) or
    to its default ACS (IdP-initiated, with the app's own RelayState only, S17)."""
    clock = scope.clock

    refuse = _refuser(user, app, scope)
    _refuse_unusable(user, app, refuse)
    config = saml_apps.sp_config(app)
    groups = enabled_groups(user)
    if not saml_apps.may_use(config, groups):
        raise refuse(
            LaunchRefused(
                f"You may not use the app {app.display_name!r}. Ask an administrator to add you to "
                "one of its groups."
            ),
            "no-access",
        )
    if sp_request is None and requested_relay_state not in (None, "", app.relay_state):
        raise refuse(BadRequest("A SAML app opened from here starts at its own start page."), "relay-state")
    try:
        name_id = saml_apps.name_id_for(config, user)
    except saml_apps.NameIdUnavailable as exc:
        raise refuse(exc, "name-id") from exc
    assertion = SpAssertion(
        issuer=issuer.entity_id,
        acs_url=sp_request.acs_url if sp_request else config.metadata().default_acs().url,
        audience=config.entity_id,
        name_id=name_id,
        name_id_format=config.name_id_format_uri(),
        in_response_to=sp_request.request_id if sp_request else None,
        attributes=tuple(
            SpAttribute(mapping.name, mapping.name_format, tuple(values))
            for mapping, values in saml_apps.attribute_values(config, user, groups)
        ),
        sign_response=config.sign_response,
        sign_assertion=config.sign_assertion,
        authn_instant=float(session.created_at),
        authn_context=authn_context_class(session, app),
    )
    try:
        response = build_sp_response(assertion, issuer.identity(), clock)
    except AssertionRuleViolation as exc:
        observability.count("AssertionRefused")
        raise refuse(exc, exc.rule) from exc
    if sp_request is not None:
        mark_answered(sp_request)  # One answer per request: a second one is refused here.
    event = _issued_event(
        user, scope, {"app": app.name, "sp_initiated": sp_request is not None}, write=write_event
    )
    return LaunchResult(
        acs_url=assertion.acs_url,
        saml_response_b64=base64.b64encode(response).decode("ascii"),
        relay_state=(sp_request.relay_state if sp_request else app.relay_state) or "",
        role_count=0,
        event=event,
    )
