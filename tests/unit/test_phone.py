"""Phone numbers are stored in E.164 only when they are valid numbers of an allowed country."""

from __future__ import annotations

import pytest

from idp_core.errors import BadRequest
from idp_core.mfa.phone import mask_email, mask_phone, normalize

ALLOWED = ("US", "CA", "GB", "DE", "FR", "NL", "IE", "AU", "IN")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("442079460958", "+442079460958"),  # the country code without "+"
        ("0044 20 7946 0958", "+442079460958"),  # the international "00" prefix
        ("+1 (201) 555-0123", "+12015550123"),
        ("  +1.613.555.0123 ", "+16135550123"),
        ("+49 151 23456789", "+4915123456789"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+61 412 345 678", "+61412345678"),
        ("+91 98765 43210", "+919876543210"),
    ],
)
def test_valid_numbers_of_allowed_countries_are_returned_in_e164(raw: str, expected: str) -> None:
    assert normalize(raw, allowed_countries=ALLOWED) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "020 7946 0958",
            '"020 7946 0958" is not a valid phone number; include the country code, e.g. +44 20 7946 0958.',
        ),
        ("+1 555 555 0100", '"+1 555 555 0100" is not a valid phone number; include the country code'),
        ("+44 12", '"+44 12" is not a valid phone number'),
        ("+999 1234567", '"+999 1234567" is not a valid phone number'),
        ("12", '"12" is not a valid phone number'),
        ("", "Enter a phone number with its country code, e.g. +44 20 7946 0958."),
        ("   ", "Enter a phone number with its country code"),
        ("+44 20 7946 095x", "A phone number may contain only digits, spaces and the signs"),
        ("call me", "A phone number may contain only digits"),
        ("+1" + "2" * 10_000, "That is not a valid phone number; include the country code"),
    ],
)
def test_invalid_numbers_are_refused_with_a_sentence_naming_the_country_code(raw: str, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        normalize(raw, allowed_countries=ALLOWED)
    assert refused.value.message.startswith(message)
    assert refused.value.status == 400


def test_a_valid_number_of_a_country_not_in_the_allowlist_is_refused() -> None:
    with pytest.raises(BadRequest) as refused:
        normalize("+86 138 0013 8000", allowed_countries=ALLOWED)
    assert refused.value.message == (
        "Text messages to numbers in CN (+86) are not allowed here; "
        "allowed countries: AU, CA, DE, FR, GB, IE, IN, NL, US."
    )


def test_the_allowlist_is_case_insensitive_and_may_be_narrowed() -> None:
    assert normalize("+442079460958", allowed_countries=["gb"]) == "+442079460958"
    with pytest.raises(BadRequest, match="numbers in US"):
        normalize("+12015550123", allowed_countries=["GB"])


def test_masked_numbers_and_addresses_keep_only_what_helps_the_user_recognise_them() -> None:
    assert mask_phone("+442079460958") == "+44********58"
    assert mask_phone("+12015550123") == "+1********23"
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_email("not-an-address") == "***"
