"""Phone numbers are stored in E.164 only when they are valid numbers of an allowed country."""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from idp_core.errors import BadRequest
from idp_core.mail import mask_email
from idp_core.phone import (
    REFUSED_TYPE_NAMES,
    NotAMobileNumber,
    ensure_mobile,
    mask_phone,
    normalize,
)

ALLOWED = ("US", "CA", "GB", "DE", "FR", "NL", "IE", "AU", "IN")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 7400 123456", "+447400123456"),
        ("447400123456", "+447400123456"),  # the country code without "+"
        ("0044 7400 123456", "+447400123456"),  # the international "00" prefix
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
            '"020 7946 0958" is not a valid phone number; include the country code, e.g. +44 7400 123456.',
        ),
        ("+1 555 555 0100", '"+1 555 555 0100" is not a valid phone number; include the country code'),
        ("+44 12", '"+44 12" is not a valid phone number'),
        ("+999 1234567", '"+999 1234567" is not a valid phone number'),
        ("12", '"12" is not a valid phone number'),
        ("", "Enter a phone number with its country code, e.g. +44 7400 123456."),
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
    assert normalize("+447400123456", allowed_countries=["gb"]) == "+447400123456"
    with pytest.raises(BadRequest, match="numbers in US"):
        normalize("+12015550123", allowed_countries=["GB"])


def test_masked_numbers_and_addresses_keep_only_what_helps_the_user_recognise_them() -> None:
    assert mask_phone("+442079460958") == "+44********58"
    assert mask_phone("+12015550123") == "+1********23"
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_email("not-an-address") == "***"


# ---------------------------------------------------------------- number types (S31)

# libphonenumber's own example number of each type, in every allowed country that has one.
REFUSED_TYPES = (
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
)
ACCEPTED_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def example_numbers(types: Iterable[int]) -> list[tuple[str, int, str]]:
    """(region, type, E.164) of each example number libphonenumber has for ``types``."""
    found = []
    for region in ALLOWED:
        for kind in types:
            number = phonenumbers.example_number_for_type(region, kind)
            # Some countries' example of one type is of another (US landlines are "fixed line or mobile").
            if number is not None and phonenumbers.number_type(number) == kind:
                found.append((region, kind, phonenumbers.format_number(number, PhoneNumberFormat.E164)))
    return found


def test_every_type_but_mobile_is_refused_and_has_real_examples_here() -> None:
    assert set(REFUSED_TYPE_NAMES) == set(REFUSED_TYPES)
    # Without this, a metadata package lacking the types would make the tests below vacuous.
    assert {kind for _, kind, _ in example_numbers(REFUSED_TYPES)} == set(REFUSED_TYPES)
    assert {kind for _, kind, _ in example_numbers(ACCEPTED_TYPES)} == set(ACCEPTED_TYPES)


@pytest.mark.parametrize(("region", "kind", "number"), example_numbers(REFUSED_TYPES))
def test_attack_numbers_that_are_not_mobile_cannot_be_enrolled_for_sms(
    region: str, kind: int, number: str
) -> None:
    # Premium-rate and shared-cost numbers earn money per text (SMS pumping); the others may
    # not reach a phone in the user's hand at all.
    with pytest.raises(BadRequest) as refused:
        normalize(number, allowed_countries=ALLOWED)
    assert refused.value.message == (
        f'"{number}" is {REFUSED_TYPE_NAMES[kind]}; codes are sent only to mobile phone numbers. '
        "Enter a mobile number, e.g. +44 7400 123456."
    )


def test_the_refusal_names_the_type_in_words() -> None:
    with pytest.raises(BadRequest) as refused:
        normalize("+44 909 876 5432", allowed_countries=["GB"])
    assert refused.value.message.startswith('"+44 909 876 5432" is a premium-rate number;')


@pytest.mark.parametrize(("region", "kind", "number"), example_numbers(ACCEPTED_TYPES))
def test_mobile_and_fixed_line_or_mobile_numbers_are_accepted(region: str, kind: int, number: str) -> None:
    assert normalize(number, allowed_countries=ALLOWED) == number
    ensure_mobile(number)


@pytest.mark.parametrize(("region", "kind", "number"), example_numbers(REFUSED_TYPES))
def test_a_stored_number_that_is_not_mobile_is_refused_before_a_send(
    region: str, kind: int, number: str
) -> None:
    with pytest.raises(NotAMobileNumber) as refused:
        ensure_mobile(number)
    assert refused.value.kind == REFUSED_TYPE_NAMES[kind]


def test_a_stored_number_of_unknown_type_is_refused() -> None:
    for number in ("+15555550100", "+999 1234567", "not a number"):
        with pytest.raises(NotAMobileNumber) as refused:
            ensure_mobile(number)
        assert refused.value.kind == "a number of unknown type"


def test_the_number_types_are_libphonenumbers_own() -> None:
    from phonenumbers import PhoneNumberType

    from idp_core import phone

    for name in ("FIXED_LINE", "MOBILE", "FIXED_LINE_OR_MOBILE", "TOLL_FREE", "PREMIUM_RATE", "SHARED_COST"):
        assert getattr(phone, name) == getattr(PhoneNumberType, name)
    for name in ("VOIP", "PERSONAL_NUMBER", "PAGER", "UAN", "VOICEMAIL"):
        assert getattr(phone, name) == getattr(PhoneNumberType, name)
