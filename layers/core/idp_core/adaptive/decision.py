"""The adaptive decision: from a policy and what a request brings (address, device) to
allow, challenge or deny. Pure: no reads, no writes, so it is the same at the password
step and at every launch, and tests run it without AWS.

The outcome is the strictest of the rules that apply:
- the IP lists (``policies.ip_decision``; the deny list always wins);
- a new device beyond the device limit: the policy's action for that (it overrides the
  action for a behaviour change, as the product guide says);
- a behaviour change, i.e. a new device or a sign-in from a network (IPv4 /24, IPv6 /64)
  the user has not signed in from recently: the action for a behaviour change. A user's
  first device and first network are no change: there is nothing to compare with.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from idp_core.adaptive import devices
from idp_core.adaptive.policies import ALLOW, CHALLENGE, DENY, AdaptivePolicy, ip_decision
from idp_core.models import Device, User

STRICTNESS = {ALLOW: 0, CHALLENGE: 1, DENY: 2}
# How many recent networks a user keeps (newest last).
KNOWN_NETWORKS = 20

# Why a decision is not a plain allow (also the audit event's ``reasons``).
DENY_LIST = "deny-list"
OUTSIDE_ALLOW_LIST = "outside-allow-list"
DEVICE_LIMIT = "device-limit"
NEW_DEVICE = "new-device"
NEW_NETWORK = "new-network"

# What the policy knows of the browser.
TRUSTED, KNOWN, NEW, UNTRACKED = "trusted", "known", "new", "untracked"


def stricter(first: str, second: str) -> str:
    return first if STRICTNESS[first] >= STRICTNESS[second] else second


def network_of(source_ip: str | None) -> str | None:
    """The network a behaviour change is judged by: the /24 of an IPv4 address, the /64 of IPv6."""
    try:
        address = ipaddress.ip_address((source_ip or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if isinstance(address, ipaddress.IPv4Address) else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass(frozen=True)
class Decision:
    policy: AdaptivePolicy
    outcome: str
    reasons: tuple[str, ...]
    ip_result: str
    device: str  # TRUSTED, KNOWN, NEW or UNTRACKED (the policy does not register devices)
    # Register this browser once the sign-in succeeds (a new device under the limit).
    register: bool
    # A new device while the user already has as many as the policy allows.
    exceeded: bool
    network: str | None
    new_network: bool

    @property
    def trusted(self) -> bool:
        """A trusted device may skip the app's second factor, never a challenge of this policy."""
        return self.device == TRUSTED and self.outcome == ALLOW

    @property
    def behaviour_change(self) -> bool:
        return NEW_DEVICE in self.reasons or NEW_NETWORK in self.reasons

    def details(self) -> dict[str, object]:
        """The audit event's view: the policy, its inputs and the outcome (S25)."""
        return {
            "policy": self.policy.name,
            "outcome": self.outcome,
            "reasons": ",".join(self.reasons) or "none",
            "ip_result": self.ip_result,
            "device": self.device,
            "network": self.network or "unknown",
        }


def evaluate(
    policy: AdaptivePolicy,
    user: User,
    *,
    source_ip: str | None,
    device: Device | None,
    now: float,
) -> Decision:
    """Decide for ``user`` signing in from ``source_ip`` with ``device`` (their registered
    device behind the request's device cookie, or None)."""
    ip_result, ip_reasons = address_rule(policy, source_ip)
    outcome = ip_result
    reasons = list(ip_reasons)

    state, register, exceeded = UNTRACKED, False, False
    if policy.register_devices:
        if device is not None:
            # Trust counts only where this policy lets trusted devices skip the second factor.
            trusted = policy.trust_days > 0 and devices.is_trusted(device, user, now)
            state = TRUSTED if trusted else KNOWN
        else:
            state = NEW
            count = int(user.device_count or 0)
            if count >= policy.max_devices:
                exceeded = True
                reasons.append(DEVICE_LIMIT)
                outcome = stricter(outcome, policy.on_exceed)
            else:
                register = True
                if count > 0:
                    reasons.append(NEW_DEVICE)
                    outcome = stricter(outcome, policy.on_new_device)

    network = network_of(source_ip)
    known = list(user.known_networks or ())
    new_network = network is not None and network not in known
    if new_network and known:
        reasons.append(NEW_NETWORK)
        outcome = stricter(outcome, policy.on_new_device)
    return Decision(
        policy=policy,
        outcome=outcome,
        reasons=tuple(reasons),
        ip_result=ip_result,
        device=state,
        register=register,
        exceeded=exceeded,
        network=network,
        new_network=new_network,
    )


def address_rule(policy: AdaptivePolicy, source_ip: str | None) -> tuple[str, tuple[str, ...]]:
    """The IP lists' outcome for ``source_ip`` and why: on the deny list, or outside the allow list."""
    result = ip_decision(policy, source_ip)
    if result == ALLOW:
        return result, ()
    on_deny_list = policy.deny_cidrs and (
        ip_decision(AdaptivePolicy(name=policy.name, deny_cidrs=policy.deny_cidrs), source_ip) == DENY
    )
    return result, (DENY_LIST if on_deny_list else OUTSIDE_ALLOW_LIST,)


def remembered_networks(user: User, network: str) -> list[str]:
    """The user's known networks with ``network`` as the newest, at most ``KNOWN_NETWORKS``."""
    kept = [known for known in (user.known_networks or ()) if known != network]
    return [*kept, network][-KNOWN_NETWORKS:]
