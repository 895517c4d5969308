"""Named adaptive policies (the product guide's "adaptive authentication"): IP allow and
deny lists, device registration limits and the action for a changed behaviour.

A policy validates itself when it is built, so an invalid one can never be stored: the
caller gets ``BadRequest`` with a sentence and nothing is written (S26). Policies are
small and few; each is one item of the settings table under ``adaptive-policy:<name>``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from time import monotonic as time_monotonic
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest, Conflict, Forbidden, NotFound
from idp_core.models import App, KeyValue, condition_failed
from idp_core.ttl_cache import TtlCache

ALLOW, CHALLENGE, DENY = "allow", "challenge", "deny"
ACTIONS = (ALLOW, CHALLENGE, DENY)
EXCEED_ACTIONS = (CHALLENGE, DENY)
MAX_CIDRS = 500
MAX_DEVICES = 100
MAX_TRUST_DAYS = 365
# Every sign-in for an app with a policy reads it; a container keeps a policy this long, so
# a change made elsewhere (the CLI, another container's console) applies within it.
POLICY_CACHE_SECONDS = 30.0
KEY_PREFIX = "adaptive-policy:"
# What `idp policy set APP --adaptive none` says: the app has no policy.
NO_POLICY = "none"
# "none" means no policy, and /admin/adaptive/new is the console's form for a new policy.
RESERVED_NAMES = (NO_POLICY, "new")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def clean_name(raw: str) -> str:
    name = (raw or "").strip().lower()
    if name in RESERVED_NAMES:
        raise BadRequest(f"{name!r} is reserved; choose another name for the policy.")
    if not _NAME.fullmatch(name):
        raise BadRequest(
            "A policy name is 1-63 lower-case letters, digits and hyphens, starting with a letter or digit."
        )
    return name


def parse_cidrs(values: Iterable[str], *, what: str) -> tuple[str, ...]:
    """IPv4 and IPv6 networks in CIDR form, without repeats; a bare address is one host.

    An address with host bits set (``10.0.0.1/8``) is refused rather than silently widened
    or narrowed: the admin meant something, and only they know what.
    """
    if isinstance(values, str):
        raise BadRequest(f"The {what} must be a list of networks such as 192.0.2.0/24 or 2001:db8::/32.")
    cleaned: list[str] = []
    for raw in values:
        text = str(raw).strip()
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError:
            raise BadRequest(
                f"{text!r} in the {what} is not a network in CIDR form such as 192.0.2.0/24 or 2001:db8::/32 "
                "(host bits must be zero)."
            ) from None
        if str(network) not in cleaned:
            cleaned.append(str(network))
    if len(cleaned) > MAX_CIDRS:
        raise BadRequest(f"The {what} may have at most {MAX_CIDRS} networks.")
    return tuple(cleaned)


def _choice(value: object, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise BadRequest(f"The {what} must be one of: {', '.join(choices)}.")
    return str(value)


@dataclass(frozen=True)
class AdaptivePolicy:
    name: str
    allow_cidrs: tuple[str, ...] = ()
    deny_cidrs: tuple[str, ...] = ()
    # The action for a sign-in from outside a non-empty allow list. The deny list always wins.
    outside_allow: str = DENY
    register_devices: bool = False
    max_devices: int = 5
    on_exceed: str = CHALLENGE
    alert_user: bool = False
    alert_email: str | None = None
    # The action for a sign-in from a device or address this user has not used before.
    on_new_device: str = ALLOW
    # E-mail the user "new sign-in from ..." on a new device or address.
    notify_new_sign_in: bool = False
    # Users may tick "Trust this device" for this many days after a second factor, and a
    # trusted device then skips the app's second factor (0: off).
    trust_days: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", clean_name(self.name))
        object.__setattr__(self, "allow_cidrs", parse_cidrs(self.allow_cidrs, what="allow list"))
        object.__setattr__(self, "deny_cidrs", parse_cidrs(self.deny_cidrs, what="deny list"))
        _choice(self.outside_allow, ACTIONS, "action outside the allow list")
        _choice(self.on_exceed, EXCEED_ACTIONS, "action when the device limit is exceeded")
        _choice(self.on_new_device, ACTIONS, "action for a new device or address")
        for flag, what in (
            (self.register_devices, "device registration"),
            (self.alert_user, "user alert"),
            (self.notify_new_sign_in, "new sign-in notice"),
        ):
            if not isinstance(flag, bool):
                raise BadRequest(f"The {what} is either on or off.")
        if not _whole(self.max_devices, 1, MAX_DEVICES):
            raise BadRequest(f"The number of devices allowed must be a whole number from 1 to {MAX_DEVICES}.")
        if not _whole(self.trust_days, 0, MAX_TRUST_DAYS):
            raise BadRequest(
                f"The days a device stays trusted must be a whole number from 0 (off) to {MAX_TRUST_DAYS}."
            )
        if self.trust_days and not self.register_devices:
            raise BadRequest("Trusted devices need device registration: turn on registering devices too.")
        if self.alert_email is not None and not _EMAIL.fullmatch(self.alert_email.strip()):
            raise BadRequest(f"{self.alert_email!r} is not an e-mail address.")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AdaptivePolicy:
        known = {name: value for name, value in data.items() if name in cls.__dataclass_fields__}
        for name in ("allow_cidrs", "deny_cidrs"):
            if name in known and isinstance(known[name], list):
                known[name] = tuple(known[name])
        return cls(**known)

    def networks(self) -> tuple[list[Network], list[Network]]:
        return (
            [ipaddress.ip_network(cidr) for cidr in self.allow_cidrs],
            [ipaddress.ip_network(cidr) for cidr in self.deny_cidrs],
        )


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def ip_decision(policy: AdaptivePolicy, source_ip: str | None) -> str:
    """``allow``, ``challenge`` or ``deny`` for a sign-in from ``source_ip``.

    The deny list always wins; outside a non-empty allow list the policy's action applies.
    An address that cannot be read is inside no list: it never passes a deny list by being
    unreadable, and with an allow list it gets the action for outsiders.
    """
    allow, deny = policy.networks()
    addresses = _addresses(source_ip)

    def inside(networks: list[Network]) -> bool:
        return any(a in n for a in addresses for n in networks if a.version == n.version)

    if deny and (not addresses or inside(deny)):
        return DENY
    if not allow:
        return ALLOW
    return ALLOW if inside(allow) else policy.outside_allow


def _addresses(source_ip: str | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        address = ipaddress.ip_address((source_ip or "").strip())
    except ValueError:
        return []
    # An IPv4 client may reach an IPv6 listener as ::ffff:a.b.c.d: check it as IPv4 too.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return [address, address.ipv4_mapped]
    return [address]


# ---------------------------------------------------------------- storage


def _key(name: str) -> str:
    return KEY_PREFIX + clean_name(name)


def get_policy(name: str) -> AdaptivePolicy:
    try:
        item = KeyValue.get(_key(name), consistent_read=True)
    except KeyValue.DoesNotExist:
        raise NotFound(f"There is no adaptive policy {clean_name(name)!r}.") from None
    return AdaptivePolicy.from_mapping(json.loads(item.value))


# Read through ``_monotonic`` so that tests move this container's time.
_monotonic = time_monotonic
# (settings table name, policy name) -> (the policy, or None when there is none,): a one-tuple,
# so that a policy known to be missing is kept too.
_policies: TtlCache[tuple[str, str], tuple[AdaptivePolicy | None]] = TtlCache(
    POLICY_CACHE_SECONDS, now=lambda: _monotonic()
)


def load_policy(name: str) -> AdaptivePolicy | None:
    """The policy an app names, as the sign-in reads it (cached for ``POLICY_CACHE_SECONDS``);
    None when it does not exist (deleting a policy that apps use is refused)."""
    key = (KeyValue.Meta.table_name, name)
    cached = _policies.get(key)
    if cached is not None:
        return cached[0]
    try:
        policy: AdaptivePolicy | None = get_policy(name)
    except NotFound:
        policy = None
    _policies.put(key, (policy,))
    return policy


class PolicyMissing(Forbidden):
    def __init__(self, app: App) -> None:
        super().__init__(
            f"The app {app.display_name!r} names a sign-in policy that does not exist, so nobody can sign in "
            "to it. Ask an administrator to choose another policy for the app."
        )


def policy_of(app: App | None) -> AdaptivePolicy | None:
    """The adaptive policy of ``app`` (None: it has none). A policy that has gone missing
    refuses every sign-in rather than letting them through unchecked."""
    if app is None or not app.adaptive_policy or app.disabled:
        return None
    policy = load_policy(str(app.adaptive_policy))
    if policy is None:
        raise PolicyMissing(app)
    return policy


def forget_cached_policies() -> None:
    _policies.clear()


def list_policies() -> list[AdaptivePolicy]:
    items = KeyValue.scan(KeyValue.name.startswith(KEY_PREFIX))
    return sorted(
        (AdaptivePolicy.from_mapping(json.loads(item.value)) for item in items), key=lambda p: p.name
    )


def save_policy(
    policy: AdaptivePolicy,
    *,
    create: bool,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> AdaptivePolicy:
    """Store a new policy (``create``) or replace an existing one; audited (S25)."""
    if not isinstance(policy, AdaptivePolicy):
        raise BadRequest("An adaptive policy is required.")
    checked = AdaptivePolicy.from_mapping(asdict(policy))  # Validates again, also a hand-built instance.
    item = KeyValue(_key(checked.name), value=checked.to_json(), updated_at=clock.now())
    condition = KeyValue.name.does_not_exist() if create else KeyValue.name.exists()
    try:
        item.save(condition=condition)
    except PutError as exc:
        if condition_failed(exc):
            if create:
                raise Conflict(f"The adaptive policy {checked.name!r} already exists.") from exc
            raise NotFound(f"There is no adaptive policy {checked.name!r}.") from exc
        raise
    forget_cached_policies()
    audit.record(
        audit.EventType.ADAPTIVE_POLICY_CREATED if create else audit.EventType.ADAPTIVE_POLICY_CHANGED,
        "success",
        context=context,
        subject=checked.name,
        details={
            "allow_cidrs": len(checked.allow_cidrs),
            "deny_cidrs": len(checked.deny_cidrs),
            "outside_allow": checked.outside_allow,
            "register_devices": checked.register_devices,
            "max_devices": checked.max_devices,
            "on_exceed": checked.on_exceed,
            "on_new_device": checked.on_new_device,
            "notify_new_sign_in": checked.notify_new_sign_in,
            "trust_days": checked.trust_days,
        },
        clock=clock,
    )
    return checked


def apps_using(name: str) -> list[str]:
    return sorted(app.name for app in App.scan(App.adaptive_policy == clean_name(name)))


def delete_policy(name: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
    """Delete a policy no app uses (an app must never lose its policy silently)."""
    key = _key(name)
    users = apps_using(name)
    if users:
        raise Conflict(
            f"The adaptive policy {clean_name(name)!r} is used by the app(s) {', '.join(users)}; "
            "choose another policy for them first (idp policy set APP --adaptive NAME|none)."
        )
    try:
        KeyValue(key).delete(condition=KeyValue.name.exists())
    except DeleteError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no adaptive policy {clean_name(name)!r}.") from exc
        raise
    forget_cached_policies()
    audit.record(
        audit.EventType.ADAPTIVE_POLICY_DELETED,
        "success",
        context=context,
        subject=clean_name(name),
        clock=clock,
    )
