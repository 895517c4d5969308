"""SAML 2.0 responses for the AWS console (S18): the rules AWS enforces, and signed building.

``check_aws_rules`` refuses, with a sentence naming the rule, anything AWS would refuse, so an
assertion that breaks an AWS rule is never sent. ``build_signed_response`` builds the Response
with lxml's element API and signs the Assertion and then the Response with the KMS key.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from idp_core.clock import Clock
from idp_core.errors import IdpError
from idp_core.saml.xml import NS_DS, NS_SAML, NS_SAMLP

if TYPE_CHECKING:
    from lxml import etree
    from signxml import XMLSigner  # type: ignore[attr-defined]

    from idp_core.saml.certificate import SigningIdentity

AWS_AUDIENCE = "urn:amazon:webservices"
AWS_SIGNIN_URL = "https://signin.aws.amazon.com/saml"
ATTR_PREFIX = "https://aws.amazon.com/SAML/Attributes/"
ATTR_ROLE = ATTR_PREFIX + "Role"
ATTR_ROLE_SESSION_NAME = ATTR_PREFIX + "RoleSessionName"
ATTR_SESSION_DURATION = ATTR_PREFIX + "SessionDuration"
ATTR_SOURCE_IDENTITY = ATTR_PREFIX + "SourceIdentity"
ATTR_PRINCIPAL_TAG_PREFIX = ATTR_PREFIX + "PrincipalTag:"

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_FORMATS = (NAMEID_PERSISTENT, NAMEID_UNSPECIFIED)
ATTRNAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
# AuthnContextClassRef: how the user signed in (idp_core.launch.authn_context_class). A
# password over TLS, or the REFEDS MFA profile (two independent factors) when the session
# proved a second factor the app accepts.
PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105
REFEDS_MFA = "https://refeds.org/profile/mfa"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

MAX_VALIDITY_SECONDS = 300
MIN_SESSION_DURATION = 900
MAX_SESSION_DURATION = 43200
MAX_PRINCIPAL_TAGS = 50
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256
MAX_NAME_ID_CHARS = 256
MAX_ISSUER_CHARS = 1024
MAX_AUDIENCE_CHARS = 1024

_PARTITIONS = r"aws|aws-cn|aws-us-gov"
ROLE_ARN = re.compile(
    rf"arn:({_PARTITIONS}):iam::(\d{{12}}):role/((?:[\w+=,.@-]+/)*[\w+=,.@-]{{1,64}})", re.ASCII
)
PROVIDER_ARN = re.compile(rf"arn:({_PARTITIONS}):iam::(\d{{12}}):saml-provider/([\w.-]{{1,128}})", re.ASCII)
ROLE_SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}", re.ASCII)
SOURCE_IDENTITY = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}", re.ASCII)
# IAM tag keys and values: letters, digits, spaces and _ . : / = + - @ (Unicode letters allowed).
TAG_KEY = re.compile(r"[\w .:/=+\-@]+")
TAG_VALUE = re.compile(r"[\w .:/=+\-@]*")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class AssertionRuleViolation(IdpError):
    """An assertion would break a rule AWS enforces (S18); it is never built or sent."""

    status = 400

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class AwsAssertion:
    """Everything that goes into one AWS sign-in assertion."""

    issuer: str  # the IdP entity id
    acs_url: str  # Destination of the Response and Recipient of the SubjectConfirmation
    name_id: str
    roles: tuple[tuple[str, str], ...]  # (role ARN, SAML provider ARN)
    role_session_name: str
    session_duration: int
    audience: str = AWS_AUDIENCE
    name_id_format: str = NAMEID_PERSISTENT
    source_identity: str | None = None
    principal_tags: Mapping[str, str] = field(default_factory=dict)
    validity_seconds: int = MAX_VALIDITY_SECONDS
    authn_instant: float | None = None  # when the user signed in; defaults to now
    # How the user signed in; the weakest claim unless the caller knows better.
    authn_context: str = PASSWORD_PROTECTED_TRANSPORT


def _violation(rule: str, message: str) -> AssertionRuleViolation:
    return AssertionRuleViolation(message, rule=rule)


def check_role_pair(role_arn: str, provider_arn: str) -> None:
    """Raise unless ``role_arn`` and ``provider_arn`` are well-formed ARNs of one account."""
    role = ROLE_ARN.fullmatch(role_arn)
    if role is None:
        raise _violation(
            "role-arn",
            f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<path/name>).",
        )
    provider = PROVIDER_ARN.fullmatch(provider_arn)
    if provider is None:
        raise _violation(
            "provider-arn",
            f"{provider_arn!r} is not an IAM SAML provider ARN "
            "(arn:aws:iam::<12-digit account>:saml-provider/<name>).",
        )
    if role.group(1, 2) != provider.group(1, 2):
        raise _violation(
            "role-account",
            f"The role {role_arn} and the SAML provider {provider_arn} are in different AWS accounts.",
        )


def check_role_session_name(name: str) -> None:
    if not ROLE_SESSION_NAME.fullmatch(name or ""):
        raise _violation(
            "role-session-name",
            f"The AWS role session name {name!r} must be 2-64 characters of letters, digits "
            "and _ + = , . @ -.",
        )


def check_session_duration(seconds: int) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise _violation("session-duration", "The AWS session duration must be a whole number of seconds.")
    if not MIN_SESSION_DURATION <= seconds <= MAX_SESSION_DURATION:
        raise _violation(
            "session-duration",
            f"The AWS session duration must be between {MIN_SESSION_DURATION} and {MAX_SESSION_DURATION} "
            f"seconds, got {seconds}.",
        )


def check_recipient_url(url: str) -> None:
    """The ACS URL is https; plain http is allowed only for loopback hosts (the local stack)."""
    try:
        parts = urlsplit(url or "")
        host = parts.hostname
    except ValueError as exc:
        raise _violation("recipient", f"The ACS URL {url!r} is not a valid URL.") from exc
    loopback_http = parts.scheme == "http" and host in LOOPBACK_HOSTS
    if not host or (parts.scheme != "https" and not loopback_http) or parts.username or parts.password:
        raise _violation("recipient", f"The ACS URL (Recipient) must be an https URL, got {url!r}.")


def check_aws_rules(assertion: AwsAssertion) -> None:
    """Raise ``AssertionRuleViolation`` for the first S18 rule that ``assertion`` breaks."""
    if not assertion.issuer or len(assertion.issuer) > MAX_ISSUER_CHARS:
        raise _violation("issuer", f"The IdP entity id (Issuer) must be 1-{MAX_ISSUER_CHARS} characters.")
    check_recipient_url(assertion.acs_url)
    if not assertion.audience or len(assertion.audience) > MAX_AUDIENCE_CHARS:
        raise _violation("audience", f"The Audience must be 1-{MAX_AUDIENCE_CHARS} characters.")
    if (
        not assertion.name_id
        or len(assertion.name_id) > MAX_NAME_ID_CHARS
        or not assertion.name_id.isprintable()
    ):
        raise _violation("name-id", f"The NameID must be 1-{MAX_NAME_ID_CHARS} printable characters.")
    if assertion.name_id_format not in NAMEID_FORMATS:
        raise _violation("name-id-format", f"The NameID format must be one of {', '.join(NAMEID_FORMATS)}.")
    if not assertion.roles:
        raise _violation("role", "An AWS assertion needs at least one Role (roleARN,providerARN).")
    for role_arn, provider_arn in assertion.roles:
        check_role_pair(role_arn, provider_arn)
    check_role_session_name(assertion.role_session_name)
    check_session_duration(assertion.session_duration)
    if assertion.source_identity is not None and not SOURCE_IDENTITY.fullmatch(assertion.source_identity):
        raise _violation(
            "source-identity",
            "The AWS source identity must be 2-64 characters of letters, digits and _ + = , . @ -.",
        )
    if len(assertion.principal_tags) > MAX_PRINCIPAL_TAGS:
        raise _violation("principal-tags", f"AWS accepts at most {MAX_PRINCIPAL_TAGS} principal tags.")
    for key, value in assertion.principal_tags.items():
        if not 1 <= len(key) <= MAX_TAG_KEY_CHARS or not TAG_KEY.fullmatch(key):
            raise _violation(
                "principal-tag-key",
                f"The principal tag key {key!r} must be 1-{MAX_TAG_KEY_CHARS} characters of letters, digits, "
                "spaces and _ . : / = + - @.",
            )
        if len(value) > MAX_TAG_VALUE_CHARS or not TAG_VALUE.fullmatch(value):
            raise _violation(
                "principal-tag-value",
                f"The value of the principal tag {key!r} must be at most {MAX_TAG_VALUE_CHARS} characters of "
                "letters, digits, spaces and _ . : / = + - @.",
            )
    if not 0 < assertion.validity_seconds <= MAX_VALIDITY_SECONDS:
        raise _violation(
            "validity", f"An assertion may be valid for at most {MAX_VALIDITY_SECONDS} seconds (5 minutes)."
        )


def new_id() -> str:
    """A SAML ID: an NCName (so it starts with '_') with 128 random bits."""
    return "_" + secrets.token_hex(16)


def saml_time(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch_seconds)))


def _saml(tag: str) -> str:
    return f"{{{NS_SAML}}}{tag}"


def _samlp(tag: str) -> str:
    return f"{{{NS_SAMLP}}}{tag}"


# lxml and signxml load when a response is built, not with the sign-in that imports these rules:
# a cold start needs neither (tests/unit/test_cold_start.py).


def _placeholder(parent: etree._Element) -> None:
    from lxml import etree

    # signxml puts the Signature where this placeholder is: right after Issuer, as the schema requires.
    etree.SubElement(parent, f"{{{NS_DS}}}Signature", {"Id": "placeholder"}, nsmap={"ds": NS_DS})


def _attribute(statement: etree._Element, name: str, values: list[str]) -> None:
    from lxml import etree

    attribute = etree.SubElement(statement, _saml("Attribute"), Name=name, NameFormat=ATTRNAME_FORMAT_URI)
    for value in values:
        etree.SubElement(attribute, _saml("AttributeValue")).text = value


def _build_assertion(assertion: AwsAssertion, now: float) -> etree._Element:
    from lxml import etree

    issued = saml_time(now)
    expires = saml_time(now + assertion.validity_seconds)
    root = etree.Element(
        _saml("Assertion"),
        {"ID": new_id(), "Version": "2.0", "IssueInstant": issued},
        nsmap={"saml": NS_SAML},
    )
    etree.SubElement(root, _saml("Issuer")).text = assertion.issuer
    _placeholder(root)
    subject = etree.SubElement(root, _saml("Subject"))
    etree.SubElement(subject, _saml("NameID"), Format=assertion.name_id_format).text = assertion.name_id
    confirmation = etree.SubElement(subject, _saml("SubjectConfirmation"), Method=BEARER)
    etree.SubElement(
        confirmation, _saml("SubjectConfirmationData"), NotOnOrAfter=expires, Recipient=assertion.acs_url
    )
    conditions = etree.SubElement(root, _saml("Conditions"), NotBefore=issued, NotOnOrAfter=expires)
    restriction = etree.SubElement(conditions, _saml("AudienceRestriction"))
    etree.SubElement(restriction, _saml("Audience")).text = assertion.audience
    authn_instant = assertion.authn_instant if assertion.authn_instant is not None else now
    statement = etree.SubElement(
        root, _saml("AuthnStatement"), AuthnInstant=saml_time(authn_instant), SessionIndex=new_id()
    )
    context = etree.SubElement(statement, _saml("AuthnContext"))
    etree.SubElement(context, _saml("AuthnContextClassRef")).text = assertion.authn_context
    attributes = etree.SubElement(root, _saml("AttributeStatement"))
    _attribute(attributes, ATTR_ROLE, [f"{role},{provider}" for role, provider in assertion.roles])
    _attribute(attributes, ATTR_ROLE_SESSION_NAME, [assertion.role_session_name])
    _attribute(attributes, ATTR_SESSION_DURATION, [str(assertion.session_duration)])
    if assertion.source_identity is not None:
        _attribute(attributes, ATTR_SOURCE_IDENTITY, [assertion.source_identity])
    for key, value in assertion.principal_tags.items():
        _attribute(attributes, ATTR_PRINCIPAL_TAG_PREFIX + key, [value])
    return root


def _signer() -> XMLSigner:
    from signxml import SignatureConstructionMethod, XMLSigner  # type: ignore[attr-defined]

    return XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=RSA_SHA256,
        digest_algorithm=SHA256,
        c14n_algorithm=EXC_C14N,
    )


def _sign(element: etree._Element, identity: SigningIdentity) -> etree._Element:
    # signxml receives the KMS key object, never PEM: the private key does not exist here (S19).
    signed: etree._Element = _signer().sign(element, key=identity.key, cert=[identity.certificate_pem])
    return signed


def build_signed_response(assertion: AwsAssertion, identity: SigningIdentity, clock: Clock) -> bytes:
    """The serialized, signed SAML Response for ``assertion`` (after ``check_aws_rules``)."""
    from lxml import etree

    check_aws_rules(assertion)
    now = clock.now()
    signed_assertion = _sign(_build_assertion(assertion, now), identity)
    response = etree.Element(
        _samlp("Response"),
        {"ID": new_id(), "Version": "2.0", "IssueInstant": saml_time(now), "Destination": assertion.acs_url},
        nsmap={"samlp": NS_SAMLP, "saml": NS_SAML},
    )
    etree.SubElement(response, _saml("Issuer")).text = assertion.issuer
    _placeholder(response)
    status = etree.SubElement(response, _samlp("Status"))
    etree.SubElement(status, _samlp("StatusCode"), Value=STATUS_SUCCESS)
    response.append(signed_assertion)
    signed_response = _sign(response, identity)
    return bytes(etree.tostring(signed_response, encoding="UTF-8", xml_declaration=False))
