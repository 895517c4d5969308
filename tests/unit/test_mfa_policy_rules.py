"""MFA settings validation and the methods an app accepts, without AWS."""

from __future__ import annotations

import dataclasses

import pytest

from idp_core.config import MessagingConfig
from idp_core.errors import BadRequest
from idp_core.mfa import methods
from idp_core.mfa.policy import MfaSettings, SmsLimits, app_methods, sms_countries
from idp_core.models import App


def test_defaults_are_safe_and_valid():
    settings = MfaSettings()
    assert settings.default_method == "totp"
    assert settings.allowed_methods == methods.kinds()
    assert settings.enrol_at_sign_in is True
    assert settings.sms == SmsLimits()
    assert (SmsLimits().per_user_per_hour, SmsLimits().per_number_per_day) == (5, 10)
    assert (SmsLimits().per_ip_per_hour, SmsLimits().account_per_day) == (20, 1000)
    assert SmsLimits().first_resend_wait_seconds == 30
    assert "US" in SmsLimits().allowed_countries


@pytest.mark.parametrize(
    "changes",
    [
        {"allowed_methods": ()},
        {"allowed_methods": ("totp", "carrier-pigeon")},
        {"default_method": "email", "allowed_methods": ("totp",)},
        {"default_method": "nope"},
        {"default_method": "sms", "allowed_methods": ("sms",)},
        {"allowed_methods": "totp"},
    ],
)
def test_invalid_settings_are_refused_with_a_sentence(changes):
    with pytest.raises(BadRequest) as caught:
        dataclasses.replace(MfaSettings(), **changes)
    assert caught.value.message.endswith(".")


def test_sms_cannot_be_the_only_method_offered():
    with pytest.raises(BadRequest, match="SMS"):
        MfaSettings(default_method="sms", allowed_methods=("sms",))
    assert MfaSettings(default_method="totp", allowed_methods=("sms", "totp")).allowed_methods == (
        "totp",
        "sms",
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"per_user_per_hour": 0},
        {"per_user_per_hour": -5},
        {"per_number_per_day": 10**9},
        {"account_per_day": True},
        {"first_resend_wait_seconds": "30"},
        {"allowed_countries": ("ZZ",)},
        {"allowed_countries": "US"},
    ],
)
def test_sms_limits_are_positive_bounded_and_countries_known(changes):
    with pytest.raises(BadRequest):
        dataclasses.replace(SmsLimits(), **changes)


def test_countries_are_normalised_and_deduplicated():
    assert SmsLimits(allowed_countries=("us", " gb", "US")).allowed_countries == ("US", "GB")


def test_app_methods_put_the_default_first_and_use_the_apps_own_list_within_the_allowed_ones():
    settings = MfaSettings(default_method="backup", allowed_methods=("totp", "email", "backup"))
    everything = App("a", mfa_methods=None)
    assert app_methods(everything, settings) == ("backup", "totp", "email")
    # S28: a method the MFA settings do not allow counts for no app, whatever its own list says.
    own = App("b", mfa_methods={"token", "totp"})
    assert app_methods(own, settings) == ("totp",)


def test_sms_countries_are_the_admins_list_within_the_deployments_bound() -> None:
    admins = MfaSettings(sms=SmsLimits(allowed_countries=("US", "GB", "DE")))
    assert sms_countries(admins, MessagingConfig()) == ("US", "GB", "DE")
    assert sms_countries(admins, MessagingConfig(sms_countries=("GB", "FR"))) == ("GB",)
    assert sms_countries(admins, MessagingConfig(sms_countries=("FR",))) == ()
