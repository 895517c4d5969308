"""SAML 2.0 Responses for any service provider, and the signed answers without an assertion
(a NoPassive status, a LogoutResponse).

Built with lxml's element API and signed with the KMS key like the AWS assertions
(``idp_core.saml.aws``), whose signing helpers and time format these share. What is signed
(the Response, the Assertion or both) is the app's choice; at least one always is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from idp_core.clock import Clock
from idp_core.saml.aws import (
    BEARER,
    MAX_NAME_ID_CHARS,
    MAX_VALIDITY_SECONDS,
    PASSWORD_PROTECTED_TRANSPORT,
    RSA_SHA256,
    STATUS_SUCCESS,
    AssertionRuleViolation,
    _placeholder,
    _sign,
    check_recipient_url,
    new_id,
    saml_time,
)
from idp_core.saml.xml import NS_SAML, NS_SAMLP

if TYPE_CHECKING:
    from lxml import etree

    from idp_core.saml.certificate import SigningIdentity

STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"


@dataclass(frozen=True)
class SpAttribute:
    name: str
    name_format: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class SpAssertion:
    """Everything that goes into one Response for a service provider."""

    issuer: str
    acs_url: str
    audience: str  # the SP's entity id
    name_id: str
    name_id_format: str
    in_response_to: str | None = None  # the AuthnRequest's ID (SP-initiated), None otherwise
    attributes: tuple[SpAttribute, ...] = ()
    sign_response: bool = True
    sign_assertion: bool = True
    authn_instant: float | None = None
    authn_context: str = PASSWORD_PROTECTED_TRANSPORT
    session_index: str | None = None
    validity_seconds: int = MAX_VALIDITY_SECONDS


def _saml(tag: str) -> str:
    return f"{{{NS_SAML}}}{tag}"


def _samlp(tag: str) -> str:
    return f"{{{NS_SAMLP}}}{tag}"


def check_sp_rules(assertion: SpAssertion) -> None:
    """Raise ``AssertionRuleViolation`` for what no SP should be sent."""
    check_recipient_url(assertion.acs_url)
    if (
        not assertion.name_id
        or len(assertion.name_id) > MAX_NAME_ID_CHARS
        or not assertion.name_id.isprintable()
    ):
        raise AssertionRuleViolation(
            f"The NameID must be 1-{MAX_NAME_ID_CHARS} printable characters.", rule="name-id"
        )
    if not (assertion.sign_response or assertion.sign_assertion):
        raise AssertionRuleViolation("Either the Response or the Assertion must be signed.", rule="signing")
    if not 0 < assertion.validity_seconds <= MAX_VALIDITY_SECONDS:
        raise AssertionRuleViolation(
            f"An assertion may be valid for at most {MAX_VALIDITY_SECONDS} seconds.", rule="validity"
        )


def _response(
    issuer: str, destination: str, in_response_to: str | None, now: float, tag: str = "Response"
) -> etree._Element:
    from lxml import etree

    attributes = {
        "ID": new_id(),
        "Version": "2.0",
        "IssueInstant": saml_time(now),
        "Destination": destination,
    }
    if in_response_to:
        attributes["InResponseTo"] = in_response_to
    response = etree.Element(_samlp(tag), attributes, nsmap={"samlp": NS_SAMLP, "saml": NS_SAML})
    etree.SubElement(response, _saml("Issuer")).text = issuer
    return response


def _status(response: etree._Element, code: str, second_level: str | None = None) -> None:
    from lxml import etree

    status = etree.SubElement(response, _samlp("Status"))
    top = etree.SubElement(status, _samlp("StatusCode"), Value=code)
    if second_level:
        etree.SubElement(top, _samlp("StatusCode"), Value=second_level)


def _assertion(assertion: SpAssertion, now: float) -> etree._Element:
    from lxml import etree

    issued, expires = saml_time(now), saml_time(now + assertion.validity_seconds)
    root = etree.Element(
        _saml("Assertion"),
        {"ID": new_id(), "Version": "2.0", "IssueInstant": issued},
        nsmap={"saml": NS_SAML},
    )
    etree.SubElement(root, _saml("Issuer")).text = assertion.issuer
    if assertion.sign_assertion:
        _placeholder(root)
    subject = etree.SubElement(root, _saml("Subject"))
    etree.SubElement(
        subject, _saml("NameID"), Format=assertion.name_id_format, SPNameQualifier=assertion.audience
    ).text = assertion.name_id
    confirmation = etree.SubElement(subject, _saml("SubjectConfirmation"), Method=BEARER)
    data = {"NotOnOrAfter": expires, "Recipient": assertion.acs_url}
    if assertion.in_response_to:
        data["InResponseTo"] = assertion.in_response_to
    etree.SubElement(confirmation, _saml("SubjectConfirmationData"), data)
    conditions = etree.SubElement(root, _saml("Conditions"), NotBefore=issued, NotOnOrAfter=expires)
    restriction = etree.SubElement(conditions, _saml("AudienceRestriction"))
    etree.SubElement(restriction, _saml("Audience")).text = assertion.audience
    authn_instant = assertion.authn_instant if assertion.authn_instant is not None else now
    statement = etree.SubElement(
        root,
        _saml("AuthnStatement"),
        AuthnInstant=saml_time(authn_instant),
        SessionIndex=assertion.session_index or new_id(),
    )
    context = etree.SubElement(statement, _saml("AuthnContext"))
    etree.SubElement(context, _saml("AuthnContextClassRef")).text = assertion.authn_context
    if assertion.attributes:
        statement = etree.SubElement(root, _saml("AttributeStatement"))
        for attribute in assertion.attributes:
            element = etree.SubElement(
                statement, _saml("Attribute"), Name=attribute.name, NameFormat=attribute.name_format
            )
            for value in attribute.values:
                etree.SubElement(element, _saml("AttributeValue")).text = value
    return root


def _serialize(element: etree._Element) -> bytes:
    from lxml import etree

    return bytes(etree.tostring(element, encoding="UTF-8", xml_declaration=False))


def build_sp_response(assertion: SpAssertion, identity: SigningIdentity, clock: Clock) -> bytes:
    """The serialized Response for ``assertion``, signed as the app asks (after ``check_sp_rules``)."""
    check_sp_rules(assertion)
    now = clock.now()
    inner = _assertion(assertion, now)
    if assertion.sign_assertion:
        inner = _sign(inner, identity)
    response = _response(assertion.issuer, assertion.acs_url, assertion.in_response_to, now)
    if assertion.sign_response:
        _placeholder(response)
    _status(response, STATUS_SUCCESS)
    response.append(inner)
    return _serialize(_sign(response, identity) if assertion.sign_response else response)


@dataclass(frozen=True)
class Reply:
    """Who answers which request, and where the answer goes."""

    issuer: str
    destination: str
    in_response_to: str


def _signed_reply(
    reply: Reply, status: tuple[str, str | None], tag: str, identity: SigningIdentity, clock: Clock
) -> bytes:
    check_recipient_url(reply.destination)
    response = _response(reply.issuer, reply.destination, reply.in_response_to, clock.now(), tag=tag)
    _placeholder(response)
    _status(response, *status)
    return _serialize(_sign(response, identity))


def build_status_response(
    reply: Reply, status: tuple[str, str | None], *, identity: SigningIdentity, clock: Clock
) -> bytes:
    """A signed Response without an assertion: e.g. Responder/NoPassive to an IsPassive request."""
    return _signed_reply(reply, status, "Response", identity, clock)


def build_logout_response(reply: Reply, *, identity: SigningIdentity, clock: Clock) -> bytes:
    """A signed LogoutResponse with the Success status (the session here has ended)."""
    return _signed_reply(reply, (STATUS_SUCCESS, None), "LogoutResponse", identity, clock)


def signed_redirect_query(
    *, field: str, document: bytes, relay_state: str | None, identity: SigningIdentity
) -> str:
    """The query string of the HTTP-Redirect binding: DEFLATE + base64 of ``document``, the
    RelayState, SigAlg and the KMS signature over exactly those encoded parameters."""
    import base64
    import zlib
    from urllib.parse import quote_plus

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated = compressor.compress(document) + compressor.flush()
    parts = [(field, base64.b64encode(deflated).decode("ascii"))]
    if relay_state:
        parts.append(("RelayState", relay_state))
    parts.append(("SigAlg", RSA_SHA256))
    signed = "&".join(f"{name}={quote_plus(value, safe='')}" for name, value in parts)
    signature = identity.key.sign(signed.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signed}&Signature={quote_plus(base64.b64encode(signature).decode('ascii'), safe='')}"
