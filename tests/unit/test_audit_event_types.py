"""Audit event types are one closed enum (issue 14): the stored strings stay as they were,
no two types share a value, and nothing outside the enum is written."""

from __future__ import annotations

import re

import pytest

from idp_core import audit
from idp_core.audit import EventType, UnknownEventType
from idp_core.clock import FakeClock


def test_every_event_type_has_its_own_value():
    # StrEnum turns a member with a repeated value into an alias of the first one; the
    # members, aliases included, must be as many as the distinct values.
    values = [member.value for member in EventType.__members__.values()]
    assert len(values) == len(set(values))


def test_event_type_values_are_the_dotted_names_queries_filter_on():
    for member in EventType:
        assert re.fullmatch(r"[a-z]+(\.[a-z_]+)+", member.value), member
    # A few stored values, exactly as events written before the enum carry them.
    assert EventType.AUTH_SIGNIN == "auth.signin"
    assert EventType.MFA_FAILURE == "mfa.failure"
    assert EventType.APP_MFA_POLICY_CHANGED == "app.mfa_policy.changed"
    assert EventType.USER_LOCKED_TEMPORARILY == "user.locked_temporarily"


def test_an_event_stores_the_plain_string_value():
    event = audit.new_event(EventType.MFA_SUCCESS, "success", subject="alice", clock=FakeClock(1767225600.0))
    assert event.type == "mfa.success"
    assert type(event.type) is str


@pytest.mark.parametrize("event_type", ["mfa.made_up", "auth.signin", ""])
def test_attack_an_event_type_outside_the_enum_is_never_written(event_type):
    # Even a string equal to a known value is refused: every writer goes through the enum,
    # so a search of the code for a type finds all of its writers.
    with pytest.raises(UnknownEventType, match="not an audit event type"):
        audit.new_event(event_type, "success", clock=FakeClock(1767225600.0))  # type: ignore[arg-type]
    # record refuses before it reaches the table (no AWS is configured in unit tests).
    with pytest.raises(UnknownEventType):
        audit.record(event_type, "failure", subject="alice")  # type: ignore[arg-type]
