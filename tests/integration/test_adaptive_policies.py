"""Adaptive policies in the settings table: create, replace, list, delete; audited (S25);
bad input and unknown names are clear errors that write nothing (S26)."""

from __future__ import annotations

import dataclasses

import pytest

from idp_core.adaptive import policies
from idp_core.adaptive.policies import AdaptivePolicy
from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.models import AuditEvent, KeyValue


def test_a_policy_is_created_read_replaced_listed_and_deleted(tables: Tables, clock: FakeClock) -> None:
    office = AdaptivePolicy("office", allow_cidrs=("192.0.2.0/24",), outside_allow="challenge")
    policies.save_policy(office, create=True, clock=clock)
    assert policies.get_policy("OFFICE") == office
    with pytest.raises(Conflict):
        policies.save_policy(office, create=True, clock=clock)
    stricter = dataclasses.replace(office, outside_allow="deny", register_devices=True, max_devices=2)
    policies.save_policy(stricter, create=False, clock=clock)
    policies.save_policy(AdaptivePolicy("anywhere"), create=True, clock=clock)
    assert [p.name for p in policies.list_policies()] == ["anywhere", "office"]
    assert policies.get_policy("office") == stricter
    policies.delete_policy("office", clock=clock)
    with pytest.raises(NotFound):
        policies.get_policy("office")
    events = sorted((e.type, e.subject) for e in AuditEvent.scan() if e.type.startswith("adaptive."))
    assert events == [
        ("adaptive.policy.changed", "office"),
        ("adaptive.policy.created", "anywhere"),
        ("adaptive.policy.created", "office"),
        ("adaptive.policy.deleted", "office"),
    ]


def test_unknown_names_and_invalid_policies_write_nothing(tables: Tables, clock: FakeClock) -> None:
    with pytest.raises(NotFound):
        policies.save_policy(AdaptivePolicy("ghost"), create=False, clock=clock)
    with pytest.raises(NotFound):
        policies.delete_policy("ghost", clock=clock)
    forged = AdaptivePolicy("office")
    object.__setattr__(forged, "deny_cidrs", ("10.0.0.1/8",))  # bypasses the constructor's checks
    with pytest.raises(BadRequest):
        policies.save_policy(forged, create=True, clock=clock)
    assert list(KeyValue.scan()) == []
    assert list(AuditEvent.scan()) == []
