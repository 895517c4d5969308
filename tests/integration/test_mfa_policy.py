"""MFA settings and per-app policies stored in DynamoDB: validation first, nothing written on bad input."""

from __future__ import annotations

import dataclasses

import pytest

from idp_core import accounts, apps
from idp_core.errors import BadRequest, NotFound
from idp_core.mfa import policy
from idp_core.models import App, AuditEvent, KeyValue


@pytest.fixture
def demo_app(tables):
    accounts.create_group("admins")
    return apps.create_aws_app(
        "demo", apps.AwsAppChoices(account_id="123456789012", roles=[("Admin", "admins")])
    )


def test_settings_default_when_nothing_is_stored_and_round_trip(tables, clock):
    assert policy.load_settings() == policy.MfaSettings()
    chosen = policy.MfaSettings(
        default_method="email",
        allowed_methods=("email", "sms", "backup"),
        enrol_at_sign_in=False,
        sms=policy.SmsLimits(per_user_per_hour=3, allowed_countries=("de", "FR")),
    )
    policy.save_settings(chosen, clock=clock)
    loaded = policy.load_settings()
    assert loaded == chosen
    assert loaded.sms.allowed_countries == ("DE", "FR")
    events = [e for e in AuditEvent.scan() if e.type == "mfa.settings.changed"]
    assert len(events) == 1 and events[0].details["default_method"] == "email"


def test_invalid_settings_write_nothing(tables, clock):
    good = policy.MfaSettings()
    for changes in ({"allowed_methods": ()}, {"default_method": "sms", "allowed_methods": ("sms",)}):
        with pytest.raises(BadRequest):
            policy.save_settings(dataclasses.replace(good, **changes), clock=clock)
    forged = policy.MfaSettings()
    object.__setattr__(forged, "allowed_methods", ("sms",))  # bypasses the constructor's checks
    object.__setattr__(forged, "default_method", "sms")
    with pytest.raises(BadRequest):
        policy.save_settings(forged, clock=clock)
    assert list(KeyValue.scan()) == []
    assert list(AuditEvent.scan()) == []


def test_damaged_stored_settings_fall_back_to_the_defaults(tables, clock):
    KeyValue(
        policy.SETTINGS_KEY, value='{"allowed_methods": ["sms"], "default_method": "sms"}', updated_at=0
    ).save()
    assert policy.load_settings() == policy.MfaSettings()
    KeyValue(policy.SETTINGS_KEY, value="not json", updated_at=0).save()
    policy.forget_cached_settings()
    assert policy.load_settings() == policy.MfaSettings()


def test_settings_saved_elsewhere_apply_once_the_cache_expires(tables, clock, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(policy, "_monotonic", lambda: now[0])
    policy.save_settings(policy.MfaSettings(enrol_at_sign_in=False), clock=clock)
    assert policy.load_settings().enrol_at_sign_in is False  # this container saw its own change
    # Another container (or the CLI) turns enrolment on: this one applies it within the cache time.
    KeyValue(policy.SETTINGS_KEY, value=policy.MfaSettings().to_json(), updated_at=0).save()
    now[0] += policy.SETTINGS_CACHE_SECONDS - 1
    assert policy.load_settings().enrol_at_sign_in is False
    now[0] += 2
    assert policy.load_settings().enrol_at_sign_in is True


def test_app_policy_changes_are_validated_stored_and_audited(demo_app, clock):
    assert demo_app.mfa_required is True
    app = policy.set_app_policy("demo", methods=["token", "totp", "totp"], clock=clock)
    assert set(App.get("demo").mfa_methods) == {"totp", "token"}
    assert policy.app_methods(app, policy.MfaSettings()) == ("totp", "token")
    policy.set_app_policy("demo", mfa_required=False, methods=[], clock=clock)
    stored = App.get("demo")
    assert stored.mfa_required is False and stored.mfa_methods is None
    # With MFA on, an empty list also means every method the settings allow (never none).
    policy.set_app_policy("demo", mfa_required=True, methods=["totp"], clock=clock)
    again = policy.set_app_policy("demo", methods=[], clock=clock)
    assert App.get("demo").mfa_methods is None
    assert policy.app_methods(again, policy.MfaSettings()) == policy.MfaSettings().allowed_methods
    assert [e.type for e in AuditEvent.scan() if e.type.startswith("app.mfa")] == [
        "app.mfa_policy.changed"
    ] * 4


def test_bad_app_policy_writes_nothing(demo_app, clock):
    policy.set_app_policy("demo", methods=["totp"], clock=clock)
    before = App.get("demo").serialize()
    for kwargs in (
        {"methods": ["totp", "fax"]},
        {"methods": "totp"},
        {"mfa_required": "yes"},
    ):
        with pytest.raises(BadRequest):
            policy.set_app_policy("demo", clock=clock, **kwargs)
    with pytest.raises(NotFound):
        policy.set_app_policy("no-such-app", mfa_required=False, clock=clock)
    assert App.get("demo").serialize() == before
