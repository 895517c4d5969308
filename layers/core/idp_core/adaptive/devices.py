"""Registered devices: a long-lived random id in the device cookie, stored only as its hash.

A device registers on a successful sign-in when the app's adaptive policy allows it. The
user's ``device_count`` and the device item change in one DynamoDB transaction with a
condition on the count, so N parallel registrations under a cap of L leave exactly L
devices (DESIGN.md "Data": security counters change only through conditional updates).

Trust ("Trust this device") lasts until ``trusted_until`` and only while the user's
``trust_epoch`` equals the one recorded with it: disabling the user or changing a factor
raises the epoch (``end_trust``), which ends every trust at once without touching the
devices.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest, NotFound
from idp_core.models import Device, User, condition_failed, new_transaction
from idp_core.scope import RequestScope

DEVICE_COOKIE = "idp_device"
# Browsers keep a cookie at most 400 days; the device id is renewed on every registration.
DEVICE_COOKIE_MAX_AGE_SECONDS = 400 * 24 * 3600
# ``last_seen_at`` and ``last_ip`` move at most once a minute (or when the address changes).
LAST_SEEN_RESOLUTION_SECONDS = 60
MAX_NAME_CHARS = 64
MAX_DEVICE_ID_CHARS = 32
_MAX_TOKEN_CHARS = 128
# A parallel transaction on the same user item makes DynamoDB cancel one; try again.
_CONFLICT_RETRIES = 3


class DeviceLimitReached(Exception):
    """The user already has as many registered devices as the policy allows."""


@dataclass(frozen=True)
class Registration:
    device: Device
    # The cookie value to set: only when the browser had none (or an unusable one).
    new_cookie: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(b"device\x00" + token.encode("utf-8")).hexdigest()


def usable_token(token: str | None) -> str | None:
    """The device cookie's value when it can be one of ours (our values are 43 URL-safe chars)."""
    if token and len(token) <= _MAX_TOKEN_CHARS and re.fullmatch(r"[A-Za-z0-9_-]{32,}", token):
        return token
    return None


def item_key(username: str, token: str | None) -> tuple[str, str] | None:
    """The device item's key for ``models.get_items``; None without a usable cookie."""
    usable = usable_token(token)
    return (username, token_hash(usable)) if usable else None


# Ordered: the first match names the browser (Edge and Opera also say "Chrome", Chrome says "Safari").
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def summarize_user_agent(user_agent: str | None) -> tuple[str, str]:
    """(browser, operating system) for the devices page, e.g. ("Chrome", "Linux").

    Only a label for people to recognise their devices, never a security input, so a few
    well-known tokens do; a full user-agent database would cost the sign-in's cold start.
    """
    text = user_agent or ""
    browser = next((name for token, name in _BROWSERS if token in text), "Browser")
    system = next((name for token, name in _SYSTEMS if token in text), "unknown system")
    return browser, system


def is_trusted(device: Device | None, user: User, now: float) -> bool:
    """True while ``device`` is trusted: before its end, and no factor change or disabling since."""
    return (
        device is not None
        and device.trusted_until is not None
        and now < float(device.trusted_until)
        and int(device.trust_epoch or 0) == int(user.trust_epoch or 0)
        and not user.disabled
    )


def list_devices(username: str) -> list[Device]:
    return sorted(Device.query(username), key=lambda d: -float(d.last_seen_at))


def get_device(username: str, device_id: str) -> Device:
    if not device_id or len(device_id) > MAX_DEVICE_ID_CHARS:
        raise NotFound("There is no such device.")
    for device in Device.query(username):
        if secrets.compare_digest(device.device_id, device_id):
            return device
    raise NotFound(f"There is no device {device_id!r} for this user.")


def register(
    user: User,
    scope: RequestScope,
    *,
    max_devices: int,
    trust_days: int = 0,
    networks: list[str] | None = None,
) -> Registration:
    """Register the scope's browser (its device cookie, address and user agent) for ``user``
    unless that would exceed ``max_devices``.

    The device, the user's count (and ``networks``, the user's known networks when they
    change) and the audit event are one transaction. Raises ``DeviceLimitReached`` with
    nothing written when the user has ``max_devices`` already, also when a parallel
    registration took the last place first.
    """
    usable = usable_token(scope.browser.device_token)
    cookie = usable or secrets.token_urlsafe(32)
    new_cookie = None if usable else cookie
    now = scope.clock.now()
    browser, system = summarize_user_agent(scope.browser.user_agent)
    device = Device(
        user.username,
        token_hash(cookie),
        device_id=secrets.token_hex(6),
        name=f"{browser} on {system}",
        browser=browser,
        os=system,
        first_seen_at=now,
        last_seen_at=now,
        last_ip=scope.browser.source_ip,
        trusted_until=now + trust_days * 86400 if trust_days else None,
        trust_epoch=int(user.trust_epoch or 0) if trust_days else None,
    )
    under_cap = (User.device_count < max_devices) | User.device_count.does_not_exist()
    user_actions: list[Action] = [User.device_count.add(1)]
    if networks is not None:
        user_actions.append(User.known_networks.set(networks))
    event = audit.new_event(
        audit.EventType.DEVICE_REGISTERED,
        "success",
        context=scope.context,
        subject=user.username,
        details={"device": device.device_id, "name": device.name, "trusted": bool(trust_days)},
        clock=scope.clock,
    )
    for attempt in range(_CONFLICT_RETRIES):
        try:
            with new_transaction() as transaction:
                transaction.update(
                    User(user.username), actions=user_actions, condition=User.username.exists() & under_cap
                )
                transaction.save(device, condition=Device.key_hash.does_not_exist())
                transaction.save(event)
            break
        except TransactWriteError as exc:
            # PynamoDB sends the puts before the updates: the device, the event, then the count.
            reasons = [reason.code if reason else None for reason in exc.cancellation_reasons]
            device_reason, _, count_reason = [*reasons, None, None, None][:3]
            if count_reason == "ConditionalCheckFailed":
                raise DeviceLimitReached() from exc
            if device_reason == "ConditionalCheckFailed":
                # The same browser registered in a parallel request: that one stands.
                return Registration(Device.get(user.username, device.key_hash), new_cookie)
            if "TransactionConflict" not in reasons or attempt == _CONFLICT_RETRIES - 1:
                raise
    return Registration(device, new_cookie)


def seen(device: Device, source_ip: str | None, *, clock: Clock = SYSTEM_CLOCK) -> None:
    """Move the device's last-seen time and address; at most once a minute per address."""
    now = clock.now()
    if device.last_ip == source_ip and now - float(device.last_seen_at) < LAST_SEEN_RESOLUTION_SECONDS:
        return
    actions: list[Action] = [Device.last_seen_at.set(now)]
    actions.append(Device.last_ip.set(source_ip) if source_ip else Device.last_ip.remove())
    _update(device, actions)


def trust(
    device: Device,
    user: User,
    *,
    days: int,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Trust ``device`` for ``days`` under the user's current trust epoch."""
    until = clock.now() + days * 86400
    _update(device, [Device.trusted_until.set(until), Device.trust_epoch.set(int(user.trust_epoch or 0))])
    audit.record(
        audit.EventType.DEVICE_TRUSTED,
        "success",
        context=context,
        subject=user.username,
        details={"device": device.device_id, "days": days},
        clock=clock,
    )


def untrust(
    username: str, device_id: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> Device:
    device = get_device(username, device_id)
    _update(device, [Device.trusted_until.remove(), Device.trust_epoch.remove()])
    audit.record(
        audit.EventType.DEVICE_UNTRUSTED,
        "success",
        context=context,
        subject=username,
        details={"device": device_id},
        clock=clock,
    )
    return device


def clean_name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise BadRequest("Give the device a name.")
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise BadRequest(f"A device name is at most {MAX_NAME_CHARS} printable characters.")
    return name


def rename(
    username: str,
    device_id: str,
    raw_name: str,
    *,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Device:
    name = clean_name(raw_name)
    device = get_device(username, device_id)
    _update(device, [Device.name.set(name)])
    audit.record(
        audit.EventType.DEVICE_RENAMED,
        "success",
        context=context,
        subject=username,
        details={"device": device_id},
        clock=clock,
    )
    return device


def remove(
    username: str, device_id: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> Device:
    """Forget a device (and with it any trust); it frees a place under the cap."""
    device = get_device(username, device_id)
    try:
        with new_transaction() as transaction:
            transaction.delete(device, condition=Device.key_hash.exists())
            transaction.update(
                User(username),
                actions=[User.device_count.add(-1)],
                condition=User.username.exists() & (User.device_count > 0),
            )
    except TransactWriteError as exc:
        # PynamoDB sends the deletes before the updates: the device first, then the count.
        reasons = [reason.code if reason else None for reason in exc.cancellation_reasons]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise NotFound(f"There is no device {device_id!r} for this user.") from exc
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            # A user deleted meanwhile, or a count that drifted: the device still goes.
            device.delete()
        else:
            raise
    audit.record(
        audit.EventType.DEVICE_REMOVED,
        "success",
        context=context,
        subject=username,
        details={"device": device_id, "name": device.name},
        clock=clock,
    )
    return device


def remove_all(username: str) -> int:
    """Forget every device of a user that is being deleted; returns how many."""
    gone = 0
    with Device.batch_write() as batch:
        for device in Device.query(username):
            batch.delete(device)
            gone += 1
    return gone


def end_trust(username: str, *, also: Sequence[Action] = ()) -> None:
    """End the trust of every device of ``username`` (a factor changed, the user was disabled),
    with ``also`` in the same update of the user."""
    try:
        User(username).update(actions=[User.trust_epoch.add(1), *also], condition=User.username.exists())
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def _update(device: Device, actions: list[Action]) -> None:
    try:
        device.update(actions=actions, condition=Device.key_hash.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound("This device was removed in the meantime.") from exc
        raise
