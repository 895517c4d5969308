"""S20: one hardened parser for incoming XML."""

from __future__ import annotations

import base64
import zlib

import pytest

from idp_core.errors import PayloadTooLarge
from idp_core.saml.xml import XmlRejected, decode_base64, inflate_raw, parse_base64_xml, parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""
EXTERNAL_ENTITY = (
    b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>"""
)


def test_plain_xml_parses_and_comments_are_dropped() -> None:
    root = parse_xml(b"<a><b>al<!-- comment -->ice</b></a>")
    assert root.findtext("b") == "alice"


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY, b"<!doctype a><a/>"])
def test_any_doctype_is_refused(document: bytes) -> None:
    with pytest.raises(XmlRejected, match="DOCTYPE"):
        parse_xml(document)


def test_doctype_hidden_in_utf16_is_refused() -> None:
    document = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'.encode(
        "utf-16"
    )
    with pytest.raises(XmlRejected):
        parse_xml(document)


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_xml(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)


def test_oversized_base64_is_refused_before_and_after_decoding() -> None:
    big = base64.b64encode(b"<a>" + b"x" * 5000 + b"</a>").decode("ascii")
    with pytest.raises(PayloadTooLarge):
        decode_base64(big, max_bytes=1000)
    with pytest.raises(PayloadTooLarge):
        parse_base64_xml(big, max_bytes=1000)


def test_invalid_base64_is_a_clear_bad_request() -> None:
    with pytest.raises(Exception, match="not valid base64"):
        decode_base64("@@@")


def test_deflate_bomb_stops_at_the_cap() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = compressor.compress(b"<a>" + b"x" * 10_000_000 + b"</a>") + compressor.flush()
    assert len(bomb) < 20_000
    with pytest.raises(PayloadTooLarge):
        inflate_raw(bomb, max_bytes=100_000)


def test_malformed_xml_is_refused_with_a_reason() -> None:
    with pytest.raises(XmlRejected, match="not well-formed"):
        parse_xml(b"<a><b></a>")
