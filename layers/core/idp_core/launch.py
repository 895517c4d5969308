"""Launching an AWS app: from a signed-in user to a signed SAMLResponse for the AWS console.

The checks here decide who gets which IAM roles; every refusal is a typed error with a message
the user can act on, and an audit event the admin can find (S18, S25).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from idp_core import audit, observability
from idp_core.apps import provider_arn, roles_for_user
from idp_core.audit import AuditContext
from idp_core.clock import Clock
from idp_core.directories.attributes import principal_tags_for
from idp_core.errors import BadRequest, Forbidden, IdpError
from idp_core.groups import enabled_groups
from idp_core.mfa import policy
from idp_core.models import App, AuditEvent, Session, User
from idp_core.saml.aws import (
    PASSWORD_PROTECTED_TRANSPORT,
    REFEDS_MFA,
    AssertionRuleViolation,
    AwsAssertion,
    build_signed_response,
    check_role_session_name,
)
from idp_core.sessions import DIRECTORY_PREFIX, second_factor_methods

if TYPE_CHECKING:
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
    issuer_entity_id: str,
    identity: SigningIdentity,
    clock: Clock,
    audit_context: AuditContext | None,
    write_event: bool = True,
) -> LaunchResult:
    """A signed SAMLResponse giving ``user`` the roles ``app`` maps to the user's enabled groups,
    saying how ``session`` signed in (``authn_context_class``).

    ``write_event=False`` leaves the issued event to the caller, to write with its own changes.
    """

    def refuse(error: IdpError, rule: str) -> IdpError:
        return _refuse(error, user=user, app=app, clock=clock, audit_context=audit_context, rule=rule)

    if user.disabled:
        raise refuse(
            LaunchRefused("Your account is disabled, so it cannot sign in to apps."), "user-disabled"
        )
    if app.disabled:
        raise refuse(LaunchRefused(f"The app {app.display_name!r} is disabled."), "app-disabled")
    try:
        relay_state = choose_relay_state(app, requested_relay_state)
    except BadRequest as exc:
        raise refuse(exc, "relay-state") from exc
    roles = roles_for_user(app, enabled_groups(user))
    if not roles:
        raise refuse(
            LaunchRefused(
                f"You have no role in the app {app.display_name!r}. Ask an administrator to add you to "
                "a group that the app maps to an AWS role."
            ),
            "no-role",
        )
    provider = provider_arn(app)
    assertion = AwsAssertion(
        issuer=issuer_entity_id,
        acs_url=app.acs_url,
        audience=app.audience,
        name_id=user.username,
        roles=tuple((role, provider) for role in roles),
        role_session_name=user.display_username,
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
    observability.count("AssertionIssued")
    event = audit.new_event(
        audit.EventType.SAML_ASSERTION_ISSUED,
        "success",
        context=audit_context,
        subject=user.username,
        details={"app": app.name, "roles": len(roles)},
        clock=clock,
    )
    if write_event:
        event.save()
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
