"""Adaptive policies without AWS: what a valid policy is, and the IP decision (IPv4, IPv6,
allow, deny, deny wins, the action outside the allow list)."""

from __future__ import annotations

import pytest

from idp_core.adaptive.policies import ALLOW, CHALLENGE, DENY, MAX_CIDRS, AdaptivePolicy, ip_decision
from idp_core.errors import BadRequest

OFFICE = ("192.0.2.0/24", "2001:db8:10::/48")


def test_defaults_are_valid_and_cidrs_are_normalised_without_repeats() -> None:
    policy = AdaptivePolicy(
        "Office-Only", allow_cidrs=("192.0.2.0/24", "192.0.2.0/24", "2001:DB8::/32", "198.51.100.7")
    )
    assert policy.name == "office-only"
    assert policy.allow_cidrs == ("192.0.2.0/24", "2001:db8::/32", "198.51.100.7/32")
    assert (policy.outside_allow, policy.on_exceed, policy.on_new_device) == (DENY, CHALLENGE, ALLOW)
    assert AdaptivePolicy.from_mapping({**policy.__dict__, "allow_cidrs": list(policy.allow_cidrs)}) == policy


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"allow_cidrs": ("10.0.0.1/8",)}, "host bits must be zero"),
        ({"deny_cidrs": ("300.1.2.0/24",)}, "not a network in CIDR form"),
        ({"deny_cidrs": ("2001:db8::/129",)}, "not a network in CIDR form"),
        ({"allow_cidrs": "192.0.2.0/24"}, "must be a list of networks"),
        ({"allow_cidrs": tuple(f"10.{i // 256}.{i % 256}.0/24" for i in range(MAX_CIDRS + 1))}, "at most"),
        ({"outside_allow": "maybe"}, "must be one of: allow, challenge, deny"),
        ({"on_exceed": ALLOW}, "must be one of: challenge, deny"),
        ({"on_new_device": ""}, "must be one of"),
        ({"max_devices": 0}, "from 1 to 100"),
        ({"max_devices": -3}, "from 1 to 100"),
        ({"max_devices": 10**9}, "from 1 to 100"),
        ({"max_devices": True}, "from 1 to 100"),
        ({"register_devices": "yes"}, "either on or off"),
        ({"alert_email": "not-an-address"}, "is not an e-mail address"),
        ({"name": "bad name!"}, "A policy name is"),
    ],
)
def test_invalid_policies_are_refused_with_a_sentence(fields: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        AdaptivePolicy(**{"name": "office", **fields})  # type: ignore[arg-type]
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("source_ip", "expected"),
    [
        ("192.0.2.55", ALLOW),  # inside the IPv4 allow list
        ("2001:db8:10::42", ALLOW),  # inside the IPv6 allow list
        ("::ffff:192.0.2.55", ALLOW),  # IPv4 seen through an IPv6 listener
        ("192.0.2.66", DENY),  # inside the allow list and the deny list: deny wins
        ("2001:db8:10:6::1", DENY),  # the same for IPv6
        ("203.0.113.9", CHALLENGE),  # outside the allow list
        ("2001:db8:99::1", CHALLENGE),
        (None, DENY),  # unreadable: never past a deny list
        ("not an address", DENY),
    ],
)
def test_ip_decision(source_ip: str | None, expected: str) -> None:
    policy = AdaptivePolicy(
        "office",
        allow_cidrs=OFFICE,
        deny_cidrs=("192.0.2.64/28", "2001:db8:10:6::/64"),
        outside_allow=CHALLENGE,
    )
    assert ip_decision(policy, source_ip) == expected


def test_without_an_allow_list_everything_but_the_deny_list_is_allowed() -> None:
    policy = AdaptivePolicy("block-one", deny_cidrs=("198.51.100.0/24",))
    assert ip_decision(policy, "203.0.113.9") == ALLOW
    assert ip_decision(policy, "198.51.100.1") == DENY
    open_policy = AdaptivePolicy("open")
    assert ip_decision(open_policy, None) == ALLOW
    assert ip_decision(AdaptivePolicy("office", allow_cidrs=OFFICE), None) == DENY  # outsiders: deny
