"""Sending one-time codes by SMS (SNS) and e-mail (SES), behind the S9 limits.

``send_code`` checks every limit BEFORE anything is sent: the destination country and number
type (only mobile numbers, S31), the growing wait between sends of one transaction, and the
per-user, per-destination, per-IP and account-wide counters. All of them are counted in one
DynamoDB transaction (see ``ratelimit``), so a refusal moves no counter, sends nothing, and
says which limit refused and when to try again. Only then is a new code issued and handed to SNS or SES.
Audit events name the channel and a masked destination, never the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from idp_core import audit, aws, observability
from idp_core.audit import AuditContext
from idp_core.config import MessagingConfig, WithMessaging
from idp_core.errors import BadRequest, IdpError
from idp_core.mfa import DestinationRefused, SendRefused, codes, methods, ratelimit
from idp_core.mfa.methods import Channel
from idp_core.mfa.policy import MfaSettings, SmsLimits
from idp_core.models import Factor, Transaction
from idp_core.scope import RequestScope

__all__ = ["DeliveryFailed", "MessagingConfig", "Senders", "message_text", "send_code"]

DEFAULT_ISSUER = "Identity"
# Resend waits double from ``first_resend_wait_seconds``; beyond an hour the per-user
# limit has long taken over, so the wait stops growing there.
MAX_RESEND_WAIT_SECONDS = 3600


class DeliveryFailed(IdpError):
    """SNS or SES did not accept the message; the counters were spent, the user may retry."""

    status = 503

    def __init__(self) -> None:
        super().__init__(
            "The code could not be sent just now. Try again in a minute or choose another method."
        )


def message_text(code: str, issuer: str) -> str:
    """The SMS and e-mail body: the code first (phones show it in notifications), no links."""
    minutes = codes.CODE_TTL_SECONDS // 60
    return f"{code} is your verification code for {issuer}. It expires in {minutes} minutes."


def resend_wait_seconds(sends: int, first_wait_seconds: int) -> int:
    """How long after the last send the next one may go: 0 for the first send, then the
    first wait doubling with every further send (30 s, 60 s, 120 s, ...)."""
    if sends <= 0:
        return 0
    return min(MAX_RESEND_WAIT_SECONDS, first_wait_seconds * 2 ** min(sends - 1, 16))


def _channel(factor: Factor) -> tuple[Channel, str]:
    """The channel that sends the factor's codes, and where to."""
    channel = methods.channel(factor.kind)
    destination = channel.destination(factor) if channel is not None else None
    if channel is None or not destination:
        raise BadRequest("This method does not receive codes by text message or e-mail.")
    return channel, destination


def _resend_guard(txn: Transaction, limits: SmsLimits, now: float) -> ratelimit.Guard:
    sends = int(txn.sends or 0)
    wait = resend_wait_seconds(sends, limits.first_resend_wait_seconds)
    last = float(txn.last_sent_at) if txn.last_sent_at is not None else None
    condition = Transaction.id_hash.exists() & (Transaction.expires_at > now)
    # ``sends = :seen`` makes the wait computed from this read the one that holds: of two
    # parallel sends, one passes and the other is refused as too soon.
    if sends:
        condition &= Transaction.sends == sends
    else:
        condition &= Transaction.sends.does_not_exist() | (Transaction.sends == 0)
    if wait and last is not None:
        condition &= Transaction.last_sent_at <= now - wait
    retry = (last + wait - now) if (wait and last is not None) else 1
    return ratelimit.Guard(
        item=Transaction(id_hash=txn.id_hash),
        actions=[Transaction.sends.add(1), Transaction.last_sent_at.set(now)],
        condition=condition,
        refusal=f"A code was sent a moment ago. You can ask for another {ratelimit.describe_wait(retry)}.",
        name="resend_wait",
    )


def _limits(
    channel: Channel, username: str, destination: str, source_ip: str | None, limits: SmsLimits
) -> list[ratelimit.Limit]:
    what, target, name = channel.sent_words, channel.destination_words, channel.name
    hour, day = ratelimit.HOUR, ratelimit.DAY
    # A request without a known source shares one counter with all such requests.
    ip = source_ip or "unknown"
    return [
        ratelimit.Limit(
            f"{name}:user:{username}",
            limits.per_user_per_hour,
            hour,
            f"{what} to your account",
            "per_user",
        ),
        ratelimit.Limit(
            f"{name}:dest:{destination}",
            limits.per_number_per_day,
            day,
            f"{what} to {target}",
            "per_destination",
        ),
        ratelimit.Limit(
            f"{name}:ip:{ip}", limits.per_ip_per_hour, hour, f"{what} from your network", "per_ip"
        ),
        ratelimit.Limit(
            f"{name}:account", limits.account_per_day, day, f"{what} by this service", "account_per_day"
        ),
    ]


@dataclass(frozen=True)
class Senders:
    """What hands a code over: the SNS and SES clients (boto3), and the name the message says
    the code is for (``message_text``)."""

    sns: Any
    ses: Any
    issuer: str = DEFAULT_ISSUER


def send_code(
    txn: Transaction,
    factor: Factor,
    scope: RequestScope,
    *,
    mfa_settings: MfaSettings,
    code_key: bytes,
    senders: Senders,
) -> None:
    """Send a new code for ``factor`` in ``txn`` by SMS or e-mail, or raise ``SendRefused``.

    ``mfa_settings`` are the ``MfaSettings`` (their SMS limits and country allowlist apply to
    both channels, each with its own counters; the allowlist only to SMS); the scope gives the
    messaging settings, the address the per-IP limit counts, and the clock. On refusal nothing
    is sent and no counter moves.
    """
    if factor.username != txn.username:
        raise BadRequest("This method does not belong to the account that is signing in.")
    channel, destination = _channel(factor)
    limits = mfa_settings.sms
    messaging = WithMessaging.of(scope.settings).messaging
    source_ip, clock = scope.browser.source_ip, scope.clock
    # A scope that names no actor: the events name the user the code is for, who asked for it.
    context = (
        scope.context if scope.actor is not None else AuditContext(source_ip=source_ip, actor=txn.username)
    )
    details = {"channel": channel.name, "to": channel.mask(destination), "purpose": txn.purpose}

    def refuse(exc: SendRefused, reason: str) -> SendRefused:
        audit.record(
            audit.EventType.OTP_SEND_REFUSED,
            "failure",
            context=context,
            subject=txn.username,
            details={**details, "reason": reason, "message": exc.message},
            clock=clock,
        )
        return exc

    now = clock.now()
    if float(txn.expires_at) <= now:
        raise codes.TransactionExpired()
    try:
        channel.check_destination(destination, mfa_settings, messaging)
    except DestinationRefused as exc:
        raise refuse(exc, exc.reason) from exc.__cause__

    guard = _resend_guard(txn, limits, now)
    rules = _limits(channel, txn.username, destination, source_ip, limits)
    try:
        ratelimit.consume_all(rules, clock=clock, guards=[guard])
    except ratelimit.LimitReached as exc:
        raise refuse(exc, exc.reason) from exc
    txn.sends = int(txn.sends or 0) + 1
    txn.last_sent_at = now

    code = codes.issue_code(txn, factor, key=code_key, clock=clock)
    text = message_text(code, senders.issuer)
    try:
        channel.deliver(
            destination, text, issuer=senders.issuer, messaging=messaging, sns=senders.sns, ses=senders.ses
        )
    except (BotoCoreError, ClientError) as exc:
        observability.count("DeliveryFailed")
        observability.logger.error(
            "the %s code to %s was not sent: %s",
            channel.name,
            details["to"],
            aws.failure_reason(exc, hide=(code, destination)),
            extra={"failed": channel.provider_call, "user": txn.username},
        )
        # The provider's error may quote the request; only its type goes to the audit trail.
        audit.record(
            audit.EventType.OTP_SENT,
            "failure",
            context=context,
            subject=txn.username,
            details={**details, "error": type(exc).__name__},
            clock=clock,
        )
        raise DeliveryFailed() from exc
    observability.count(channel.metric)
    audit.record(
        audit.EventType.OTP_SENT,
        "success",
        context=context,
        subject=txn.username,
        details=details,
        clock=clock,
    )
