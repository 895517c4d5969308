"""A SAML service provider's metadata, read through the one hardened parser (S20).

What an SP publishes decides where this IdP ever sends a Response: the assertion consumer
services (ACS) and single logout services read here are the only destinations used, and
the signing certificates read here the only keys its requests are checked with (S21).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from idp_core.errors import BadRequest
from idp_core.saml.aws import AssertionRuleViolation, check_recipient_url
from idp_core.saml.xml import NS_DS, NS_MD, parse_xml

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
MAX_ENTITY_ID_CHARS = 1024
MAX_CERTIFICATE_BYTES = 16 * 1024
MAX_INDEX_DIGITS = 5  # an unsignedShort


class MetadataRejected(BadRequest):
    """SP metadata (or its hand-entered equivalent) that cannot be used; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    """An ACS or SLO endpoint: its binding, URL, index (ACS only) and whether it is the default."""

    binding: str
    url: str
    index: int = 0
    is_default: bool = False
    response_url: str | None = None  # SLO only: where LogoutResponses go, if not ``url``


@dataclass(frozen=True)
class SpMetadata:
    entity_id: str
    acs: tuple[Endpoint, ...]
    slo: tuple[Endpoint, ...]
    certificates: tuple[str, ...]  # base64 DER of the SP's signing certificates
    requests_signed: bool

    def default_acs(self) -> Endpoint:
        """The explicit default, else the first with the lowest index (SAML metadata 2.4.4.1)."""
        post = [endpoint for endpoint in self.acs if endpoint.binding == BINDING_POST]
        for endpoint in post:
            if endpoint.is_default:
                return endpoint
        return min(post, key=lambda endpoint: endpoint.index)


def check_entity_id(entity_id: str) -> str:
    entity_id = (entity_id or "").strip()
    if not entity_id or len(entity_id) > MAX_ENTITY_ID_CHARS or not entity_id.isprintable():
        raise MetadataRejected(f"An SP entity id is 1-{MAX_ENTITY_ID_CHARS} printable characters.")
    return entity_id


def check_endpoint_url(url: str, what: str) -> str:
    url = (url or "").strip()
    try:
        check_recipient_url(url)
    except AssertionRuleViolation as exc:
        raise MetadataRejected(
            f"The {what} must be an https URL (http only on this machine's loopback), got {url!r}."
        ) from exc
    return url


def check_certificate(text: str) -> str:
    """The certificate as base64 DER, from PEM or bare base64; raise unless it is an X.509 certificate."""
    from cryptography import x509

    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    compact = "".join(body.split())
    try:
        der = base64.b64decode(compact, validate=True)
        if len(der) > MAX_CERTIFICATE_BYTES:
            raise ValueError("too large")
        x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise MetadataRejected("The SP certificate is not an X.509 certificate in PEM or base64.") from exc
    return base64.b64encode(der).decode("ascii")


def _endpoints(descriptor: object, tag: str, what: str) -> tuple[Endpoint, ...]:
    endpoints = []
    for element in descriptor.iterfind(f"{{{NS_MD}}}{tag}"):  # type: ignore[attr-defined]
        binding = element.get("Binding", "")
        if binding not in (BINDING_POST, BINDING_REDIRECT):
            continue  # Artifact, SOAP, PAOS: bindings this IdP does not answer on.
        index = element.get("index", "0")
        if not index.isdigit() or len(index) > MAX_INDEX_DIGITS:
            raise MetadataRejected(f"A {what} has the index {index!r}, which is not a small whole number.")
        response_url = element.get("ResponseLocation")
        endpoints.append(
            Endpoint(
                binding=binding,
                url=check_endpoint_url(element.get("Location", ""), what),
                index=int(index),
                is_default=element.get("isDefault", "false") in ("true", "1"),
                response_url=check_endpoint_url(response_url, what) if response_url else None,
            )
        )
    return tuple(endpoints)


def parse_sp_metadata(document: bytes) -> SpMetadata:
    """The SP's entity id, ACS and SLO endpoints and signing certificates, or MetadataRejected."""
    root = parse_xml(document)
    if root.tag == f"{{{NS_MD}}}EntitiesDescriptor":
        entities = root.findall(f"{{{NS_MD}}}EntityDescriptor")
        if len(entities) != 1:
            raise MetadataRejected("The metadata must describe exactly one service provider.")
        root = entities[0]
    if root.tag != f"{{{NS_MD}}}EntityDescriptor":
        raise MetadataRejected("The document is not SAML 2.0 metadata (no md:EntityDescriptor).")
    descriptors = root.findall(f"{{{NS_MD}}}SPSSODescriptor")
    if len(descriptors) != 1:
        raise MetadataRejected("The metadata must have exactly one SPSSODescriptor.")
    descriptor = descriptors[0]
    acs = _endpoints(descriptor, "AssertionConsumerService", "assertion consumer service")
    if not any(endpoint.binding == BINDING_POST for endpoint in acs):
        raise MetadataRejected("The SP publishes no assertion consumer service with the HTTP-POST binding.")
    certificates = []
    for key in descriptor.iterfind(f"{{{NS_MD}}}KeyDescriptor"):
        if key.get("use", "signing") != "signing":
            continue
        for cert in key.iterfind(f"{{{NS_DS}}}KeyInfo/{{{NS_DS}}}X509Data/{{{NS_DS}}}X509Certificate"):
            certificates.append(check_certificate(cert.text or ""))
    return SpMetadata(
        entity_id=check_entity_id(root.get("entityID", "")),
        acs=acs,
        slo=_endpoints(descriptor, "SingleLogoutService", "single logout service"),
        certificates=tuple(dict.fromkeys(certificates)),
        requests_signed=descriptor.get("AuthnRequestsSigned", "false") in ("true", "1"),
    )
