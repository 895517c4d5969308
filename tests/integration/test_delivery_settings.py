"""The messaging settings (sender id, origination number, e-mail sender) are read and checked at start."""

from __future__ import annotations

import pytest

from idp_core.config import ConfigurationError, MessagingConfig, Settings, Tables

BASE = {**Tables.with_prefix("x-").to_env(), "SIGNING_KEY_ID": "key"}


def test_messaging_settings_are_optional_and_round_trip_through_the_environment() -> None:
    assert Settings.from_env(BASE).messaging == MessagingConfig()
    env = {
        **BASE,
        "SMS_SENDER_ID": "AcmeIdP",
        "SMS_ORIGINATION_NUMBER": "+12065550100",
        "EMAIL_SENDER": "Sign-in <no-reply@idp.example.com>",
        "SMS_ALLOWED_COUNTRIES": "us, gb",
    }
    settings = Settings.from_env(env)
    assert settings.messaging == MessagingConfig(
        "AcmeIdP", "+12065550100", "Sign-in <no-reply@idp.example.com>", ("US", "GB")
    )
    assert settings.messaging.email_address == "no-reply@idp.example.com"
    assert Settings.from_env(settings.to_env()).messaging == settings.messaging


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMS_SENDER_ID", "TooLongSender1"),
        ("SMS_SENDER_ID", "12345"),
        ("SMS_SENDER_ID", "Acme IdP"),
        ("SMS_ORIGINATION_NUMBER", "2065550100"),
        ("EMAIL_SENDER", "not-an-address"),
        ("EMAIL_SENDER", "Name <idp@localhost>"),
        ("SMS_ALLOWED_COUNTRIES", "USA,GB"),
    ],
)
def test_malformed_messaging_settings_fail_at_start_with_the_variable_name(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({**BASE, name: value})
