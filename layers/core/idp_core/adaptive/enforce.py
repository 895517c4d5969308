"""Applying an app's adaptive policy at sign-in and at every launch (called in-process by
the sso function; no Lambda calls another on the sign-in path).

- ``check_address`` runs before the password is checked: an address on the deny list (or
  outside an allow list whose action is Deny) is refused without looking at the password,
  so a refused address learns nothing about it and counts no failure.
- ``assess`` gives the full decision once the user is known; ``refuse`` records a denial
  with a reference id the user can quote, sends the device-limit alerts and raises
  ``AccessDenied``.
- ``complete`` runs when the sign-in succeeds: it registers (or trusts) the device,
  remembers the network and sends the "new sign-in" notice.

Every decision is an audit event with the policy, its inputs and the outcome (S25).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import NoReturn

from pynamodb.exceptions import UpdateError

from idp_core import audit, mail, observability
from idp_core.adaptive import devices
from idp_core.adaptive.decision import (
    DEVICE_LIMIT,
    Decision,
    address_rule,
    evaluate,
    remembered_networks,
    stricter,
)
from idp_core.adaptive.policies import CHALLENGE, DENY, policy_of
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock, readable_utc
from idp_core.config import WithMessaging
from idp_core.errors import Forbidden
from idp_core.mail import Mailer
from idp_core.models import App, AuditEvent, Device, User
from idp_core.scope import Browser, RequestScope


class AccessDenied(Forbidden):
    """The app's adaptive policy refuses this sign-in; the reference finds its audit event."""

    def __init__(self, reference: str) -> None:
        super().__init__(
            "Your organisation's sign-in policy does not allow this sign-in from this address or device. "
            f"If you need access, give your administrator this reference: {reference}."
        )
        self.reference = reference


def check_address(
    app: App | None, browser: Browser, *, context: AuditContext | None, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Refuse an address the app's policy denies, before anything else of the sign-in."""
    if app is None:
        return
    policy = policy_of(app)
    if policy is None:
        return
    result, reasons = address_rule(policy, browser.source_ip)
    if result != DENY:
        return
    _deny(
        {
            "policy": policy.name,
            "outcome": DENY,
            "reasons": ",".join(reasons),
            "ip_result": result,
            "app": app.name,
        },
        subject=None,
        context=context,
        clock=clock,
    )


def assess(
    app: App | None, user: User, browser: Browser, device: Device | None, *, clock: Clock = SYSTEM_CLOCK
) -> Decision | None:
    """The decision of the app's policy for ``user`` (None when the app has no policy)."""
    policy = policy_of(app)
    if policy is None:
        return None
    return evaluate(policy, user, source_ip=browser.source_ip, device=device, now=clock.now())


def limit_reached_instead(decision: Decision) -> Decision:
    """The decision once a parallel registration took the last place under the device limit."""
    return replace(
        decision,
        outcome=stricter(decision.outcome, decision.policy.on_exceed),
        reasons=(*decision.reasons, DEVICE_LIMIT),
        register=False,
        exceeded=True,
    )


def decision_event(
    decision: Decision, user: User, app: App, *, context: AuditContext | None, clock: Clock
) -> AuditEvent:
    """The decision's audit event, unwritten: the caller writes it with its own changes."""
    return audit.new_event(
        audit.EventType.ADAPTIVE_DECISION,
        decision.outcome,
        context=context,
        subject=user.username,
        details={**decision.details(), "app": app.name},
        clock=clock,
    )


def refuse(
    decision: Decision,
    user: User,
    app: App,
    browser: Browser,
    mailer: Mailer,
    *,
    context: AuditContext | None,
    clock: Clock = SYSTEM_CLOCK,
) -> NoReturn:
    if decision.exceeded:
        alert_device_limit(decision, user, app, browser, mailer, context=context, clock=clock)
    _deny({**decision.details(), "app": app.name}, subject=user.username, context=context, clock=clock)


def _deny(
    details: dict[str, object], *, subject: str | None, context: AuditContext | None, clock: Clock
) -> NoReturn:
    reference = secrets.token_hex(4).upper()
    audit.record(
        audit.EventType.ADAPTIVE_DECISION,
        DENY,
        context=context,
        subject=subject,
        details={**details, "reference": reference},
        clock=clock,
    )
    observability.count("AdaptiveDenied")
    raise AccessDenied(reference)


def alert_device_limit(
    decision: Decision,
    user: User,
    app: App,
    browser: Browser,
    mailer: Mailer,
    *,
    context: AuditContext | None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """E-mail the user (if the policy says so) and the policy's alert address that a sign-in
    from one more device than allowed was challenged or refused. Once per such sign-in."""
    policy = decision.policy
    browser_name, system = devices.summarize_user_agent(browser.user_agent)
    action = "refused" if decision.outcome == DENY else "asked for a second factor"
    where = f"{browser_name} on {system}, address {browser.source_ip or 'unknown'}"
    text = (
        f"A sign-in to {app.display_name} as {user.display_username} came from a new device "
        f"({where}) at {readable_utc(clock.now())}. "
        f"The account already has the {policy.max_devices} registered device(s) the policy allows, "
        f"so the sign-in was {action}."
    )
    subject = "Device limit reached for your account"
    if policy.alert_user:
        mail.notify(
            user,
            subject,
            mail.change_text(text),
            ses=mailer.ses(),
            messaging=mailer.messaging,
            context=context,
            clock=clock,
        )
    if policy.alert_email:
        mail.notify(
            user,
            f"Device limit reached for {user.display_username}",
            text,
            ses=mailer.ses(),
            messaging=mailer.messaging,
            to=[policy.alert_email],
            context=context,
            clock=clock,
        )


def complete(
    decision: Decision,
    user: User,
    app: App,
    device: Device | None,
    scope: RequestScope,
    *,
    trust_requested: bool = False,
) -> str | None:
    """What a successful sign-in under the policy changes for the scope's browser, whose
    ``device`` is the one its cookie names (None: none); returns a new device cookie value to
    set, if any. Raises ``devices.DeviceLimitReached`` (nothing written) when a parallel
    sign-in took the last place under the limit first."""
    browser, context, clock = scope.browser, scope.context, scope.clock
    policy = decision.policy
    trust_days = policy.trust_days if trust_requested else 0
    new_cookie = None
    networks = (
        remembered_networks(user, decision.network) if decision.new_network and decision.network else None
    )
    if decision.register:
        registration = devices.register(
            user, scope, max_devices=policy.max_devices, trust_days=trust_days, networks=networks
        )
        new_cookie = registration.new_cookie
    else:
        if device is not None:
            devices.seen(device, browser.source_ip, clock=clock)
            if trust_days:
                devices.trust(device, user, days=trust_days, context=context, clock=clock)
        if networks is not None:
            _remember_networks(user, networks)
    if decision.behaviour_change and policy.notify_new_sign_in:
        mailer = Mailer.for_settings(WithMessaging.of(scope.settings))
        _notify_new_sign_in(decision, user, app, browser, mailer, context=context, clock=clock)
    return new_cookie


def _remember_networks(user: User, networks: list[str]) -> None:
    try:
        user.update(actions=[User.known_networks.set(networks)], condition=User.username.exists())
    except UpdateError:
        # Only the heuristic's memory: a lost update means one more "new network" later.
        return


def _notify_new_sign_in(
    decision: Decision,
    user: User,
    app: App,
    browser: Browser,
    mailer: Mailer,
    *,
    context: AuditContext | None,
    clock: Clock,
) -> None:
    browser_name, system = devices.summarize_user_agent(browser.user_agent)
    what = "a new device" if "new-device" in decision.reasons else "a new network"
    text = (
        f"New sign-in to {app.display_name} from {what}: {browser_name} on {system}, "
        f"address {browser.source_ip or 'unknown'}, at {readable_utc(clock.now())}"
    )
    mail.notify(
        user,
        "New sign-in to your account",
        mail.change_text(text),
        ses=mailer.ses(),
        messaging=mailer.messaging,
        context=context,
        clock=clock,
    )


def challenged(decision: Decision | None) -> bool:
    return decision is not None and decision.outcome == CHALLENGE
