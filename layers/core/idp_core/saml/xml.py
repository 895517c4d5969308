"""The one hardened parser for every piece of XML that comes in (S20), and shared namespaces.

Outgoing XML is built with lxml's element API elsewhere in this package, never from string
templates, so that no value can change the structure of a document.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import TYPE_CHECKING

from idp_core.errors import BadRequest, PayloadTooLarge

if TYPE_CHECKING:
    from lxml import etree

NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NAMESPACES = {"samlp": NS_SAMLP, "saml": NS_SAML, "ds": NS_DS, "md": NS_MD}

# A SAML response or IdP metadata document is a few kilobytes; 256 KiB leaves room for many
# certificates and attributes while keeping a hostile document from costing much memory.
MAX_XML_BYTES = 256 * 1024


class XmlRejected(BadRequest):
    """Incoming XML that the hardened parser refuses; the message says why."""


def _parser() -> etree.XMLParser:
    # lxml loads with the first parse, not with the modules that import the namespaces here.
    from lxml import etree

    # A parser per call: lxml parsers keep state and are not meant to be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def hardened_parser() -> etree.XMLParser:
    """A parser with the same settings, for libraries (signxml) that re-parse what they verify."""
    return _parser()


def parse_xml(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, no network, no comments, at most ``max_bytes``."""
    if not isinstance(data, bytes):
        raise XmlRejected("The XML document must be given as bytes.")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The XML document is larger than {max_bytes} bytes.")
    # Checked before parsing too, so a DTD is never even read (the parse check below also
    # catches a DOCTYPE hidden by another encoding).
    if b"<!doctype" in data.lower():
        raise XmlRejected("XML with a document type declaration (DOCTYPE) is not accepted.")
    from lxml import etree

    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"The XML document is not well-formed: {exc.msg}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlRejected("XML with a document type declaration (DOCTYPE) is not accepted.")
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise XmlRejected("XML with entity references is not accepted.")
    return root


def decode_base64(value: str, *, max_bytes: int = MAX_XML_BYTES, what: str = "SAML message") -> bytes:
    """Strict base64 with a size cap checked before decoding (from the encoded length) and after."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"The {what} is missing.")
    compact = "".join(value.split())
    if len(compact) > (max_bytes * 4) // 3 + 4:
        raise PayloadTooLarge(f"The {what} is larger than {max_bytes} bytes.")
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"The {what} is not valid base64.") from exc
    if len(decoded) > max_bytes:
        raise PayloadTooLarge(f"The {what} is larger than {max_bytes} bytes.")
    return decoded


def inflate_raw(data: bytes, *, max_bytes: int = MAX_XML_BYTES, what: str = "SAML message") -> bytes:
    """Raw DEFLATE (HTTP-Redirect binding) that stops at ``max_bytes`` instead of inflating a bomb."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise BadRequest(f"The {what} is not valid DEFLATE data.") from exc
    if len(inflated) > max_bytes or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"The {what} inflates to more than {max_bytes} bytes.")
    return inflated


def parse_base64_xml(
    value: str, *, max_bytes: int = MAX_XML_BYTES, what: str = "SAML message"
) -> etree._Element:
    """Decode a base64 form field (HTTP-POST binding) and parse it with the hardened parser."""
    return parse_xml(decode_base64(value, max_bytes=max_bytes, what=what), max_bytes=max_bytes)
