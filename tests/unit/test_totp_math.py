"""TOTP arithmetic, code window, URI and QR code, without AWS (S6)."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, urlparse

import pytest

from idp_core.clock import FakeClock
from idp_core.errors import BadRequest
from idp_core.mfa import WrongCode, totp

# RFC 6238 appendix B: the seeds are ASCII "1234567890" repeated to the hash's block length.
SEED_SHA1 = b"12345678901234567890"
SEED_SHA256 = b"12345678901234567890123456789012"
SEED_SHA512 = b"1234567890" * 6 + b"1234"
RFC6238_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("when", "sha1", "sha256", "sha512"), RFC6238_VECTORS)
def test_rfc6238_appendix_b_vectors_with_injected_clock(when, sha1, sha256, sha512):
    clock = FakeClock(when)
    assert totp.totp_at(SEED_SHA1, clock.now(), digits=8) == sha1
    assert totp.totp_at(SEED_SHA256, clock.now(), digits=8, digest="sha256") == sha256
    assert totp.totp_at(SEED_SHA512, clock.now(), digits=8, digest="sha512") == sha512


def test_rfc6238_sha1_vectors_are_accepted_by_the_step_matcher():
    for when, sha1, _, _ in RFC6238_VECTORS:
        step = totp.matching_step(SEED_SHA1, sha1, now=when, digits=8, period=30)
        assert step == when // 30


def test_window_is_one_step_either_side_at_29_31_and_61_seconds():
    secret = totp.new_secret()
    start = 1_800_000_000 - 1_800_000_000 % 30  # the first second of a time step
    clock = FakeClock(start)
    code = totp.totp_at(secret, clock.now())
    step = start // 30

    clock.advance(29)  # same step
    assert totp.matching_step(secret, code, now=clock.now(), digits=6, period=30) == step
    clock.advance(2)  # 31 s: next step, the code is one step old
    assert totp.matching_step(secret, code, now=clock.now(), digits=6, period=30) == step
    clock.advance(30)  # 61 s: two steps old
    assert totp.matching_step(secret, code, now=clock.now(), digits=6, period=30) is None


def test_a_code_from_two_steps_in_the_future_is_refused():
    secret = totp.new_secret()
    clock = FakeClock(1_800_000_000)
    future = totp.totp_at(secret, clock.now() + 60)
    assert totp.matching_step(secret, future, now=clock.now(), digits=6, period=30) is None


def test_secret_has_160_bits_and_base32_has_no_padding():
    secret = totp.new_secret()
    assert len(secret) == 20
    encoded = totp.secret_base32(secret)
    assert "=" not in encoded and len(encoded) == 32
    assert base64.b32decode(encoded) == secret
    assert totp.new_secret() != secret


def test_otpauth_uri_has_issuer_account_and_the_parameters_apps_read():
    uri = totp.otpauth_uri(
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", issuer="Example Corp", account="alice@example.com"
    )
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert parsed.path == "/Example%20Corp:alice@example.com"
    query = parse_qs(parsed.query)
    assert query == {
        "secret": ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"],
        "issuer": ["Example Corp"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }
    with pytest.raises(BadRequest):
        totp.otpauth_uri("AAAA", issuer="bad:issuer", account="alice")


def test_qr_code_is_an_svg_of_at_least_200_pixels_with_a_title():
    svg = totp.qr_svg(totp.otpauth_uri(totp.secret_base32(totp.new_secret()), issuer="IdP", account="bob"))
    assert svg.startswith("<svg")
    width_match, height_match = re.search(r'width="(\d+)"', svg), re.search(r'height="(\d+)"', svg)
    assert width_match and height_match, svg[:200]
    width, height = int(width_match.group(1)), int(height_match.group(1))
    assert width >= 200 and height >= 200
    assert "<title>" in svg


@pytest.mark.parametrize(
    "bad",
    ["", "12345", "1234567", "12a456", "\uff11\uff12\uff13\uff14\uff15\uff16", "1" * 1_000_000, None, 123456],
)
def test_codes_of_the_wrong_shape_are_wrong_codes(bad):
    with pytest.raises(WrongCode) as caught:
        totp.clean_code(bad, 6)
    assert caught.value.message == WrongCode().message


def test_spaces_and_dashes_in_a_code_are_ignored():
    assert totp.clean_code(" 123-456 ", 6) == "123456"
