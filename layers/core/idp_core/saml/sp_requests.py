"""SAML requests from service providers (AuthnRequest, LogoutRequest), as they arrive by the
HTTP-Redirect and HTTP-POST bindings: decoded within size caps, parsed by the one hardened
parser (S20), and their signatures checked against the SP's pinned certificates only (S21).

HTTP-Redirect signatures cover the query string as the SP encoded it. API Gateway's REST
proxy event (and so the local gateway's) hands the function the decoded parameters, not the
raw query, so the signed string is rebuilt from them in the encodings SP libraries use
(upper-case hex escapes with '+' or '%20' for a space, or lower-case hex as ADFS sends):
every one of them carries exactly the decoded values, so accepting each changes nothing of
what is signed.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from idp_core.errors import BadRequest, Forbidden
from idp_core.saml.xml import NS_DS, NS_SAML, NS_SAMLP, decode_base64, hardened_parser, inflate_raw, parse_xml

if TYPE_CHECKING:
    from cryptography import x509
    from lxml import etree

# An AuthnRequest or LogoutRequest is well under 8 KiB; 64 KiB leaves room for a signature
# with a certificate and extensions, and keeps a hostile request (or a DEFLATE bomb) cheap.
MAX_REQUEST_BYTES = 64 * 1024
# The bindings spec (3.4.3, 3.5.3) caps RelayState at 80 bytes, but SPs such as python3-saml
# and SimpleSAMLphp send the page to return to, often longer; 1024 bytes takes those and
# still bounds what is stored and sent back.
MAX_RELAY_STATE_BYTES = 1024
MAX_ID_CHARS = 256
# A request is accepted within this many seconds of its IssueInstant (clock skew either way
# included); the replay cache keeps its ID longer than that, so a request too old for the cache
# is refused by its age instead.
MAX_REQUEST_AGE_SECONDS = 600
MAX_CLOCK_SKEW_SECONDS = 180
_SIGNATURE_HASHES = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": "SHA256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": "SHA384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": "SHA512",
}


class SignatureRefused(Forbidden):
    """A request whose signature is missing where required, or does not verify (S21)."""


@dataclass(frozen=True)
class ReceivedMessage:
    """A decoded request before its signature is checked."""

    field: str  # SAMLRequest (or SAMLResponse)
    root: etree._Element
    binding: str  # "redirect" | "post"
    relay_state: str | None
    query: Mapping[str, str]  # the Redirect binding's decoded parameters

    @property
    def issuer(self) -> str:
        issuer = self.root.findtext(f"{{{NS_SAML}}}Issuer")
        if not issuer or not issuer.strip():
            raise BadRequest("The SAML request names no Issuer (the service provider's entity id).")
        return issuer.strip()


def _relay_state(values: Mapping[str, str]) -> str | None:
    relay_state = values.get("RelayState")
    if relay_state is None or relay_state == "":
        return None
    if len(relay_state.encode("utf-8")) > MAX_RELAY_STATE_BYTES:
        raise BadRequest(f"The RelayState is longer than {MAX_RELAY_STATE_BYTES} bytes; nothing is issued.")
    return relay_state


def _request_root(document: bytes, field: str) -> etree._Element:
    root = parse_xml(document, max_bytes=MAX_REQUEST_BYTES)
    if root.tag not in (f"{{{NS_SAMLP}}}AuthnRequest", f"{{{NS_SAMLP}}}LogoutRequest"):
        raise BadRequest(f"The {field} is not a SAML AuthnRequest or LogoutRequest.")
    return root


def read_redirect(query: Mapping[str, str], field: str = "SAMLRequest") -> ReceivedMessage:
    """The request of an HTTP-Redirect binding: base64 of raw DEFLATE in the query string."""
    compressed = decode_base64(query.get(field, ""), max_bytes=MAX_REQUEST_BYTES, what=field)
    document = inflate_raw(compressed, max_bytes=MAX_REQUEST_BYTES, what=field)
    return ReceivedMessage(field, _request_root(document, field), "redirect", _relay_state(query), query)


def read_post(form: Mapping[str, str], field: str = "SAMLRequest") -> ReceivedMessage:
    """The request of an HTTP-POST binding: base64 of the XML in a form field."""
    document = decode_base64(form.get(field, ""), max_bytes=MAX_REQUEST_BYTES, what=field)
    return ReceivedMessage(field, _request_root(document, field), "post", _relay_state(form), {})


def _signed_octets(message: ReceivedMessage) -> list[bytes]:
    """The query string the SP signed, in each encoding SP libraries use (module docstring)."""
    names = [message.field, "RelayState", "SigAlg"]
    present = [(name, message.query[name]) for name in names if name in message.query]

    def lower_hex(value: str) -> str:
        encoded = quote_plus(value, safe="")
        return "".join(
            part if i == 0 else part[:2].lower() + part[2:] for i, part in enumerate(encoded.split("%"))
        )

    encodings = (lambda v: quote_plus(v, safe=""), lambda v: quote(v, safe=""), lower_hex)
    variants = ["&".join(f"{name}={encode(value)}" for name, value in present) for encode in encodings]
    return [variant.encode("ascii") for variant in dict.fromkeys(variants)]


def _certificates(pinned: tuple[str, ...]) -> list[x509.Certificate]:
    from cryptography import x509

    return [x509.load_der_x509_certificate(base64.b64decode(der)) for der in pinned]


def _verify_redirect(message: ReceivedMessage, pinned: tuple[str, ...]) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    algorithm = _SIGNATURE_HASHES.get(message.query.get("SigAlg", ""))
    if algorithm is None:
        raise SignatureRefused(
            "The request's SigAlg is not an accepted signature algorithm (RSA with SHA-256, -384 or -512)."
        )
    try:
        signature = base64.b64decode(message.query["Signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureRefused("The request's Signature is not valid base64.") from exc
    for certificate in _certificates(pinned):
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        for octets in _signed_octets(message):
            try:
                key.verify(signature, octets, padding.PKCS1v15(), getattr(hashes, algorithm)())
            except InvalidSignature:
                continue
            return
    raise SignatureRefused("The request's signature does not verify with the service provider's certificate.")


def _verify_post(message: ReceivedMessage, pinned: tuple[str, ...], now: float) -> etree._Element:
    from signxml import InvalidInput, InvalidSignature, SignatureConfiguration, XMLVerifier  # type: ignore[attr-defined]
    from signxml.algorithms import DigestAlgorithm, SignatureMethod

    config = SignatureConfiguration(
        location="./",
        expect_references=1,
        signature_methods=frozenset(
            {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}
        ),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}),
        verification_time=datetime.datetime.fromtimestamp(now, tz=datetime.UTC),
    )
    for certificate in _certificates(pinned):
        try:
            result = XMLVerifier().verify(
                message.root,
                x509_cert=certificate,
                parser=hardened_parser(),
                expect_config=config,
                ignore_ambiguous_key_info=True,
            )
        except (InvalidSignature, InvalidInput):
            continue
        signed: etree._Element = result.signed_xml  # type: ignore[union-attr]
        # The signature must cover the request itself, not some element inside it.
        if signed.tag == message.root.tag and signed.get("ID") == message.root.get("ID"):
            return signed
    raise SignatureRefused("The request's signature does not verify with the service provider's certificate.")


def verified_root(
    message: ReceivedMessage, pinned: tuple[str, ...], *, required: bool, now: float
) -> etree._Element:
    """The request to act on: its signed content when signed (checked with ``pinned`` only), the
    request as received when unsigned and no signature is ``required``; else SignatureRefused.

    A signature that is present but cannot be checked (no certificate pinned) counts as none."""
    if message.binding == "redirect":
        signed = "Signature" in message.query
    else:
        signed = message.root.find(f"{{{NS_DS}}}Signature") is not None
    if signed and pinned:
        if message.binding == "redirect":
            _verify_redirect(message, pinned)
            return message.root
        return _verify_post(message, pinned, now)
    if required:
        raise SignatureRefused(
            "This service provider must sign its requests, and this one is unsigned; nothing is issued."
        )
    return message.root


def request_id(root: etree._Element) -> str:
    value = root.get("ID") or ""
    if not value or len(value) > MAX_ID_CHARS or not value.isprintable():
        raise BadRequest(f"The request's ID is missing or longer than {MAX_ID_CHARS} characters.")
    if root.get("Version") != "2.0":
        raise BadRequest("Only SAML 2.0 requests are accepted.")
    return value


def check_fresh(root: etree._Element, now: float) -> None:
    """Refuse a request issued too long ago or too far ahead (the replay cache's horizon)."""
    raw = root.get("IssueInstant") or ""
    try:
        issued = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest("The request's IssueInstant is missing or not a time.") from exc
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=datetime.UTC)
    age = now - issued.timestamp()
    if age > MAX_REQUEST_AGE_SECONDS or age < -MAX_CLOCK_SKEW_SECONDS:
        raise BadRequest("The request was issued too long ago (or in the future); start again at the app.")


def check_destination(root: etree._Element, expected: str) -> None:
    destination = root.get("Destination")
    if destination is not None and destination != expected:
        raise BadRequest(f"The request is addressed to {destination[:200]!r}, not to this identity provider.")


def flag(root: etree._Element, name: str) -> bool:
    value = root.get(name, "false")
    if value not in ("true", "false", "1", "0"):
        raise BadRequest(f"The request's {name} is not a boolean.")
    return value in ("true", "1")
