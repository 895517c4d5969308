"""The adaptive decision without AWS: which rule wins, what counts as a behaviour change,
when a device is new, over the limit or trusted."""

from __future__ import annotations

import pytest

from idp_core.adaptive import decision as d
from idp_core.adaptive.devices import is_trusted
from idp_core.adaptive.policies import AdaptivePolicy
from idp_core.models import Device, User

NOW = 1_800_000_000.0


def _user(devices: int = 0, networks: tuple[str, ...] = (), epoch: int = 0, disabled: bool = False) -> User:
    return User(
        "ann",
        display_username="ann",
        device_count=devices,
        known_networks=list(networks) or None,
        trust_epoch=epoch,
        disabled=disabled,
        created_at=NOW,
        updated_at=NOW,
    )


def _device(trusted_until: float | None = None, epoch: int | None = 0) -> Device:
    return Device(
        "ann",
        "hash",
        device_id="abc",
        name="Chrome on Linux",
        first_seen_at=NOW,
        last_seen_at=NOW,
        trusted_until=trusted_until,
        trust_epoch=epoch if trusted_until else None,
    )


def _decide(
    policy: AdaptivePolicy, user: User, ip: str = "192.0.2.7", device: Device | None = None
) -> d.Decision:
    return d.evaluate(policy, user, source_ip=ip, device=device, now=NOW)


def test_without_rules_everything_is_allowed_and_no_device_is_tracked() -> None:
    decided = _decide(AdaptivePolicy(name="open"), _user())
    assert (decided.outcome, decided.reasons, decided.device, decided.register) == (
        "allow",
        (),
        "untracked",
        False,
    )


@pytest.mark.parametrize(
    ("ip", "outcome", "reasons"),
    [
        ("10.1.2.3", "allow", ()),
        ("10.9.9.9", "deny", ("deny-list",)),  # inside both lists: deny wins
        ("192.0.2.1", "challenge", ("outside-allow-list",)),
        ("2001:db8::1", "allow", ()),
        ("2001:db9::1", "challenge", ("outside-allow-list",)),
        ("not an address", "deny", ("deny-list",)),  # unreadable never passes a deny list
    ],
)
def test_ip_lists(ip: str, outcome: str, reasons: tuple[str, ...]) -> None:
    policy = AdaptivePolicy(
        name="office",
        allow_cidrs=("10.0.0.0/8", "2001:db8::/32"),
        deny_cidrs=("10.9.0.0/16",),
        outside_allow="challenge",
    )
    decided = _decide(policy, _user(), ip)
    assert (decided.outcome, decided.reasons) == (outcome, reasons)


def test_the_first_device_registers_without_being_a_behaviour_change() -> None:
    policy = AdaptivePolicy(name="p", register_devices=True, on_new_device="deny")
    decided = _decide(policy, _user())
    assert (decided.outcome, decided.register, decided.device) == ("allow", True, "new")


def test_a_second_new_device_is_a_behaviour_change() -> None:
    policy = AdaptivePolicy(name="p", register_devices=True, on_new_device="challenge")
    decided = _decide(policy, _user(devices=1, networks=("192.0.2.0/24",)))
    assert (decided.outcome, decided.reasons, decided.register) == ("challenge", ("new-device",), True)


def test_the_limit_action_overrides_the_behaviour_change_action() -> None:
    policy = AdaptivePolicy(
        name="p", register_devices=True, max_devices=2, on_exceed="challenge", on_new_device="deny"
    )
    decided = _decide(policy, _user(devices=2, networks=("192.0.2.0/24",)))
    assert (decided.outcome, decided.reasons, decided.exceeded, decided.register) == (
        "challenge",
        ("device-limit",),
        True,
        False,
    )


def test_the_stricter_rule_wins() -> None:
    policy = AdaptivePolicy(
        name="p",
        allow_cidrs=("10.0.0.0/8",),
        outside_allow="challenge",
        register_devices=True,
        max_devices=1,
        on_exceed="deny",
    )
    assert _decide(policy, _user(devices=1), "192.0.2.1").outcome == "deny"
    assert d.stricter("allow", "challenge") == "challenge" and d.stricter("deny", "challenge") == "deny"


def test_a_new_network_is_a_behaviour_change_but_a_new_address_in_a_known_one_is_not() -> None:
    policy = AdaptivePolicy(name="p", on_new_device="challenge")
    user = _user(networks=("192.0.2.0/24", "2001:db8:0:1::/64"))
    assert _decide(policy, user, "192.0.2.200").outcome == "allow"
    assert _decide(policy, user, "2001:db8:0:1:ffff::9").outcome == "allow"
    changed = _decide(policy, user, "198.51.100.4")
    assert (changed.outcome, changed.reasons, changed.network) == (
        "challenge",
        ("new-network",),
        "198.51.100.0/24",
    )


def test_networks() -> None:
    assert d.network_of("::ffff:192.0.2.9") == "192.0.2.0/24"
    assert d.network_of("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert d.network_of("nonsense") is None and d.network_of(None) is None
    user = _user(networks=tuple(f"10.0.{i}.0/24" for i in range(20)))
    kept = d.remembered_networks(user, "10.0.3.0/24")
    assert len(kept) == 20 and kept[-1] == "10.0.3.0/24" and kept.count("10.0.3.0/24") == 1
    kept = d.remembered_networks(user, "10.9.9.0/24")
    assert len(kept) == 20 and kept[0] == "10.0.1.0/24" and kept[-1] == "10.9.9.0/24"


def test_trust_counts_only_under_a_policy_that_allows_it_and_only_while_valid() -> None:
    trusting = AdaptivePolicy(name="p", register_devices=True, trust_days=30)
    no_trust = AdaptivePolicy(name="q", register_devices=True)
    device = _device(trusted_until=NOW + 10)
    assert _decide(trusting, _user(devices=1), device=device).trusted
    assert not _decide(no_trust, _user(devices=1), device=device).trusted
    assert not _decide(trusting, _user(devices=1, epoch=1), device=device).trusted  # a factor changed since
    assert not _decide(trusting, _user(devices=1), device=_device(trusted_until=NOW - 1)).trusted
    assert not is_trusted(device, _user(disabled=True), NOW)
    # A trusted device does not waive a challenge of the policy itself.
    fenced = AdaptivePolicy(
        name="r", register_devices=True, trust_days=30, allow_cidrs=("10.0.0.0/8",), outside_allow="challenge"
    )
    assert not _decide(fenced, _user(devices=1), "192.0.2.1", device).trusted
