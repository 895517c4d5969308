"""A local stand-in for https://signin.aws.amazon.com/saml (the AWS console's SAML endpoint).

It checks a SAMLResponse the way AWS does: the signatures of the Response and of the Assertion
against the certificate in the IdP metadata registered as the IAM SAML provider (never the
certificate in KeyInfo, S21), Destination and Recipient, Audience, the validity window, exactly
one assertion, the Role, RoleSessionName and SessionDuration rules, and for session tags
(PrincipalTag) IAM's tag rules and sts:TagSession in the role's trust policy. It shows a role chooser
when several roles are offered, then calls STS AssumeRoleWithSAML and shows the assumed role.
moto's STS checks no signature and breaks on several Role values, so every check lives here.

Accounts: moto scopes IAM and STS by account, which it takes from the ``x-moto-account-id``
request header (when the ``MOTO_ACCOUNT_ID`` environment variable is not set; that variable
overrides the header and pins every call to one account). The emulator sends the account of the
role being assumed in that header, so any 12-digit account id an admin configures works.

For local convenience a missing SAML provider is registered with the IdP's current metadata,
and a missing role is created with a SAML trust policy for that provider: in any account, or
with ``home_account`` (the local stack's) only there, so that a second account is trusted
only once its provider holds this IdP's metadata (``idp aws member-template``), as at AWS.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError
from cryptography import x509
from lxml import etree
from signxml import InvalidInput, InvalidSignature, SignatureConfiguration, XMLVerifier  # type: ignore[attr-defined]
from signxml.algorithms import DigestAlgorithm, SignatureMethod

from idp_core.apps import saml_trust_policy
from idp_core.clock import Clock
from idp_core.errors import IdpError
from idp_core.saml.aws import (
    ATTR_PRINCIPAL_TAG_PREFIX,
    ATTR_ROLE,
    ATTR_ROLE_SESSION_NAME,
    ATTR_SESSION_DURATION,
    ATTR_SOURCE_IDENTITY,
    AWS_AUDIENCE,
    BEARER,
    LOOPBACK_HOSTS,
    MAX_PRINCIPAL_TAGS,
    MAX_TAG_KEY_CHARS,
    MAX_TAG_VALUE_CHARS,
    PROVIDER_ARN,
    ROLE_ARN,
    SOURCE_IDENTITY,
    STATUS_SUCCESS,
    TAG_KEY,
    TAG_VALUE,
    AssertionRuleViolation,
    check_role_pair,
    check_role_session_name,
    check_session_duration,
)
from idp_core.saml.xml import NS_DS, NS_MD, NS_SAML, NS_SAMLP, decode_base64, hardened_parser, parse_xml

DEFAULT_ACS_URL = "http://127.0.0.1:8000/_local/aws/saml"
DEFAULT_SESSION_DURATION = 3600
# AWS tolerates a small clock difference on NotBefore; NotOnOrAfter is enforced exactly.
NOT_BEFORE_SKEW_SECONDS = 60
MAX_RESPONSE_BYTES = 128 * 1024
MAX_PROVIDERS_PER_RESPONSE = 10
ROLE_PAIR_PARTS = 2  # A role ARN and a provider ARN.
ACCOUNT_HEADER = "x-moto-account-id"

_SIGNATURE_METHODS = frozenset(
    {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}
)
_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
_NOT_FOUND_CODES = frozenset({"NoSuchEntity", "NotFoundException", "NotFound"})


class SignInRefused(Exception):
    """AWS would refuse this sign-in; ``reason`` is shown to the user like AWS's error page."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class RolePair:
    role_arn: str
    provider_arn: str

    @property
    def account_id(self) -> str:
        match = ROLE_ARN.fullmatch(self.role_arn)
        return match.group(2) if match else ""


@dataclass(frozen=True)
class VerifiedClaims:
    """Claims read only from the signed bytes of the Response and its Assertion."""

    provider_arn: str
    roles: tuple[RolePair, ...]
    role_session_name: str
    session_duration: int
    assertion: etree._Element  # the verified Assertion element
    # Session tags (PrincipalTag:<key>), in the order of the assertion.
    principal_tags: tuple[tuple[str, str], ...] = ()
    source_identity: str | None = None


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _parse_time(value: str | None, what: str) -> float:
    if not value:
        raise SignInRefused(403, f"The SAML response has no {what}.")
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignInRefused(403, f"The {what} {value!r} is not a valid SAML time.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def _role_pair(value: str) -> RolePair:
    """A Role value: a role ARN and a provider ARN separated by a comma, in either order (as AWS)."""
    parts = [part.strip() for part in (value or "").split(",")]
    if len(parts) != ROLE_PAIR_PARTS:
        raise AssertionRuleViolation(f"The Role value {value!r} must be 'roleARN,providerARN'.", rule="role")
    first, second = parts
    role, provider = (second, first) if PROVIDER_ARN.fullmatch(first) else (first, second)
    check_role_pair(role, provider)
    return RolePair(role, provider)


def _principal_tags(assertion: etree._Element) -> tuple[tuple[str, str], ...]:
    """The session tags, each one key with one value, checked against IAM's tag rules."""
    tags: dict[str, str] = {}
    for attribute in assertion.iterfind(f"{_q(NS_SAML, 'AttributeStatement')}/{_q(NS_SAML, 'Attribute')}"):
        name = attribute.get("Name") or ""
        if not name.startswith(ATTR_PRINCIPAL_TAG_PREFIX):
            continue
        key = name[len(ATTR_PRINCIPAL_TAG_PREFIX) :]
        values = [value.text or "" for value in attribute.findall(_q(NS_SAML, "AttributeValue"))]
        if len(values) != 1 or key.lower() in (known.lower() for known in tags):
            raise SignInRefused(403, f"The session tag {key!r} must appear once, with exactly one value.")
        tags[key] = values[0]
        if not 1 <= len(key) <= MAX_TAG_KEY_CHARS or not TAG_KEY.fullmatch(key):
            raise SignInRefused(403, f"The session tag key {key!r} breaks IAM's rules for tag keys.")
        if len(values[0]) > MAX_TAG_VALUE_CHARS or not TAG_VALUE.fullmatch(values[0]):
            raise SignInRefused(
                403, f"The value of the session tag {key!r} breaks IAM's rules for tag values."
            )
    if len(tags) > MAX_PRINCIPAL_TAGS:
        raise SignInRefused(403, f"AWS accepts at most {MAX_PRINCIPAL_TAGS} session tags.")
    return tuple(tags.items())


def _source_identity(assertion: etree._Element) -> str | None:
    """The SourceIdentity, if any: one value that AWS's rules for it accept."""
    values = _attribute_values(assertion, ATTR_SOURCE_IDENTITY)
    if not values:
        return None
    if len(values) != 1 or not SOURCE_IDENTITY.fullmatch(values[0]):
        raise SignInRefused(
            403, "The SourceIdentity must be one value of 2-64 letters, digits and _ + = , . @ -."
        )
    return values[0]


def _session_duration(assertion: etree._Element) -> int:
    """The SessionDuration asked for, checked against AWS's range; the default when absent."""
    durations = _attribute_values(assertion, ATTR_SESSION_DURATION)
    if not durations:
        return DEFAULT_SESSION_DURATION
    if len(durations) != 1 or not durations[0].isdigit():
        raise SignInRefused(403, "The SessionDuration must be one whole number of seconds.")
    duration = int(durations[0])
    check_session_duration(duration)
    return duration


def _attribute_values(assertion: etree._Element, name: str) -> list[str]:
    values: list[str] = []
    for statement in assertion.findall(_q(NS_SAML, "AttributeStatement")):
        for attribute in statement.findall(_q(NS_SAML, "Attribute")):
            if attribute.get("Name") == name:
                values.extend(
                    (value.text or "").strip() for value in attribute.findall(_q(NS_SAML, "AttributeValue"))
                )
    return values


class AwsSignInEmulator:
    """The logic of the local ``POST /_local/aws/saml``; the local gateway does the HTTP plumbing."""

    def __init__(
        self,
        iam_client: Any,
        sts_client: Any,
        clock: Clock,
        idp_metadata_provider: Callable[[], bytes | str],
        acs_url: str = DEFAULT_ACS_URL,
        *,
        audience: str = AWS_AUDIENCE,
        home_account: str | None = None,
    ) -> None:
        self._iam = iam_client
        self._sts = sts_client
        self._clock = clock
        self._idp_metadata = idp_metadata_provider
        self.acs_url = acs_url
        self.audience = audience
        # With a home account, only that account gets a missing provider or role made for it:
        # every other account must hold them already (the member template), as at AWS.
        self.home_account = home_account
        self._account = threading.local()
        for client, service in ((iam_client, "iam"), (sts_client, "sts")):
            client.meta.events.register(f"before-sign.{service}.*", self._add_account_header)

    # -- HTTP-independent entry point ---------------------------------------------------------

    def handle(self, form: Mapping[str, str]) -> tuple[int, str]:
        """Process one POST of the sign-in form; return the HTTP status and an HTML page."""
        try:
            return self._handle(form)
        except SignInRefused as exc:
            return exc.status, _error_page(exc.reason)
        except AssertionRuleViolation as exc:
            return 403, _error_page(exc.message)
        except IdpError as exc:
            return exc.status, _error_page(exc.message)

    def _handle(self, form: Mapping[str, str]) -> tuple[int, str]:
        saml_response = form.get("SAMLResponse") or ""
        relay_state = form.get("RelayState") or ""
        raw = decode_base64(saml_response, max_bytes=MAX_RESPONSE_BYTES, what="SAMLResponse")
        root = parse_xml(raw, max_bytes=MAX_RESPONSE_BYTES)
        if root.tag != _q(NS_SAMLP, "Response"):
            raise SignInRefused(400, "The SAMLResponse is not a SAML 2.0 Response.")
        providers = self._candidate_providers(root)
        claims = self._verified_claims(root, providers[0])

        if len(claims.roles) > 1 and not form.get("roleIndex"):
            return 200, _role_chooser_page(self.acs_url, saml_response, relay_state, claims)
        chosen = self._chosen_role(claims, form.get("roleIndex"))
        if chosen.provider_arn != claims.provider_arn:
            # The trust anchor is the provider of the role actually assumed, as at AWS.
            claims = self._verified_claims(root, chosen.provider_arn)
        assertion_for_sts = self._assertion_for_sts(root, raw, claims, chosen)
        with self._in_account(chosen.account_id):
            self._ensure_role_trusts_provider(
                chosen, tagged=bool(claims.principal_tags), sourced=claims.source_identity is not None
            )
            try:
                result = self._sts.assume_role_with_saml(
                    RoleArn=chosen.role_arn,
                    PrincipalArn=chosen.provider_arn,
                    SAMLAssertion=assertion_for_sts,
                    DurationSeconds=claims.session_duration,
                )
            except ClientError as exc:
                raise SignInRefused(
                    403, f"AWS STS refused the sign-in: {_client_error_message(exc)}"
                ) from exc
        return 200, _signed_in_page(
            assumed_role_arn=result["AssumedRoleUser"]["Arn"],
            expiration=result["Credentials"]["Expiration"],
            relay_state=relay_state,
            session_tags=claims.principal_tags,
            source_identity=claims.source_identity,
        )

    # -- account scoping for moto ------------------------------------------------------------

    def _add_account_header(self, request: Any, **_: Any) -> None:
        account = getattr(self._account, "id", None)
        if account:
            request.headers[ACCOUNT_HEADER] = account

    @contextmanager
    def _in_account(self, account_id: str) -> Iterator[None]:
        previous = getattr(self._account, "id", None)
        self._account.id = account_id
        try:
            yield
        finally:
            self._account.id = previous

    # -- signature verification (S21) --------------------------------------------------------

    def _candidate_providers(self, root: etree._Element) -> list[str]:
        """Provider ARNs named in the (not yet verified) Role values: they only pick the trust anchor."""
        providers: list[str] = []
        for assertion in root.findall(_q(NS_SAML, "Assertion")):
            for value in _attribute_values(assertion, ATTR_ROLE):
                for part in value.split(","):
                    part = part.strip()
                    if PROVIDER_ARN.fullmatch(part) and part not in providers:
                        providers.append(part)
        if not providers:
            raise SignInRefused(403, "The SAML response has no valid Role attribute (roleARN,providerARN).")
        return providers[:MAX_PROVIDERS_PER_RESPONSE]

    def _provider_trust(self, provider_arn: str) -> tuple[str, list[x509.Certificate]]:
        """Entity id and signing certificates from the provider's registered metadata."""
        match = PROVIDER_ARN.fullmatch(provider_arn)
        if match is None:
            raise SignInRefused(403, f"{provider_arn!r} is not a SAML provider ARN.")
        with self._in_account(match.group(2)):
            try:
                document = self._iam.get_saml_provider(SAMLProviderArn=provider_arn)["SAMLMetadataDocument"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _NOT_FOUND_CODES:
                    raise SignInRefused(403, f"IAM refused: {_client_error_message(exc)}") from exc
                self._refuse_outside_home(match.group(2), f"SAML provider {provider_arn}")
                document = self._register_provider(match.group(3))
        metadata = parse_xml(document.encode("utf-8") if isinstance(document, str) else document)
        if metadata.tag != _q(NS_MD, "EntityDescriptor"):
            raise SignInRefused(403, f"The metadata of {provider_arn} is not a SAML EntityDescriptor.")
        certificates = []
        for descriptor in metadata.iterfind(f"{_q(NS_MD, 'IDPSSODescriptor')}/{_q(NS_MD, 'KeyDescriptor')}"):
            if descriptor.get("use", "signing") != "signing":
                continue
            path = f"{_q(NS_DS, 'KeyInfo')}/{_q(NS_DS, 'X509Data')}/{_q(NS_DS, 'X509Certificate')}"
            for element in descriptor.iterfind(path):
                der = base64.b64decode("".join((element.text or "").split()))
                certificates.append(x509.load_der_x509_certificate(der))
        if not certificates:
            raise SignInRefused(403, f"The metadata of {provider_arn} has no signing certificate.")
        return metadata.get("entityID") or "", certificates

    def _refuse_outside_home(self, account_id: str, what: str) -> None:
        if self.home_account is not None and account_id != self.home_account:
            raise SignInRefused(
                403,
                f"Account {account_id} has no {what}: deploy the member template there "
                "(`idp aws member-template`).",
            )

    def _register_provider(self, name: str) -> str:
        document = self._idp_metadata()
        text = document.decode("utf-8") if isinstance(document, bytes) else document
        self._iam.create_saml_provider(SAMLMetadataDocument=text, Name=name)
        return text

    def _verify(
        self, element: etree._Element, location: str, certificate: x509.Certificate
    ) -> etree._Element:
        config = SignatureConfiguration(
            location=location,
            expect_references=1,
            signature_methods=_SIGNATURE_METHODS,
            digest_algorithms=_DIGESTS,
            verification_time=datetime.datetime.fromtimestamp(self._clock.now(), tz=datetime.UTC),
        )
        result = XMLVerifier().verify(
            element, x509_cert=certificate, parser=hardened_parser(), expect_config=config
        )
        signed: etree._Element = result.signed_xml  # type: ignore[union-attr]
        return signed

    def _verified_elements(
        self, root: etree._Element, certificate: x509.Certificate
    ) -> tuple[etree._Element, etree._Element]:
        response = self._verify(root, "./", certificate)
        if response.tag != _q(NS_SAMLP, "Response") or response.get("ID") != root.get("ID"):
            raise SignInRefused(403, "The Response signature does not cover the Response itself.")
        if response.findall(_q(NS_SAML, "EncryptedAssertion")):
            raise SignInRefused(403, "Encrypted assertions are not supported by this stand-in.")
        assertions = response.findall(_q(NS_SAML, "Assertion"))
        if len(assertions) != 1:
            raise SignInRefused(
                403, f"The SAML response must contain exactly one Assertion, found {len(assertions)}."
            )
        assertion = self._verify(response, f"./{_q(NS_SAML, 'Assertion')}/", certificate)
        if assertion.tag != _q(NS_SAML, "Assertion") or assertion.get("ID") != assertions[0].get("ID"):
            raise SignInRefused(403, "The Assertion signature does not cover the Assertion itself.")
        return response, assertion

    def _verified_claims(self, root: etree._Element, provider_arn: str) -> VerifiedClaims:
        entity_id, certificates = self._provider_trust(provider_arn)
        failure = "no certificate"
        for certificate in certificates:
            try:
                response, assertion = self._verified_elements(root, certificate)
                break
            except (InvalidSignature, InvalidInput) as exc:
                failure = str(exc)
        else:
            raise SignInRefused(
                403,
                f"The signature of the SAML response does not verify against the certificate registered for "
                f"{provider_arn} ({failure}).",
            )
        return self._claims(response, assertion, provider_arn, entity_id)

    # -- the rules AWS applies to the verified claims ----------------------------------------

    def _claims(
        self, response: etree._Element, assertion: etree._Element, provider_arn: str, entity_id: str
    ) -> VerifiedClaims:
        now = self._clock.now()
        self._check_response(response)
        issuer = assertion.findtext(_q(NS_SAML, "Issuer")) or ""
        if entity_id and issuer.strip() != entity_id:
            raise SignInRefused(
                403, f"The assertion Issuer {issuer!r} does not match the provider's entity id {entity_id!r}."
            )
        self._check_subject(assertion, now)
        self._check_conditions(assertion, now)
        role_values = _attribute_values(assertion, ATTR_ROLE)
        if not role_values:
            raise SignInRefused(403, "The assertion has no Role attribute.")
        roles = tuple(_role_pair(value) for value in role_values)
        session_names = _attribute_values(assertion, ATTR_ROLE_SESSION_NAME)
        if len(session_names) != 1:
            raise SignInRefused(403, "The assertion must have exactly one RoleSessionName value.")
        check_role_session_name(session_names[0])
        return VerifiedClaims(
            provider_arn,
            roles,
            session_names[0],
            _session_duration(assertion),
            assertion,
            _principal_tags(assertion),
            _source_identity(assertion),
        )

    def _check_response(self, response: etree._Element) -> None:
        if response.get("Destination") != self.acs_url:
            raise SignInRefused(
                403,
                f"The Response Destination {response.get('Destination')!r} is not this endpoint "
                f"({self.acs_url}).",
            )
        status = response.find(f"{_q(NS_SAMLP, 'Status')}/{_q(NS_SAMLP, 'StatusCode')}")
        if status is None or status.get("Value") != STATUS_SUCCESS:
            raise SignInRefused(403, "The SAML response does not report success.")

    def _check_subject(self, assertion: etree._Element, now: float) -> None:
        """A NameID and one bearer confirmation, for this endpoint and not expired."""
        subject = assertion.find(_q(NS_SAML, "Subject"))
        if subject is None or not (subject.findtext(_q(NS_SAML, "NameID")) or "").strip():
            raise SignInRefused(403, "The assertion has no NameID.")
        confirmations = subject.findall(_q(NS_SAML, "SubjectConfirmation"))
        if len(confirmations) != 1 or confirmations[0].get("Method") != BEARER:
            raise SignInRefused(403, "The assertion must have exactly one bearer SubjectConfirmation.")
        data = confirmations[0].find(_q(NS_SAML, "SubjectConfirmationData"))
        if data is None or data.get("Recipient") != self.acs_url:
            recipient = None if data is None else data.get("Recipient")
            raise SignInRefused(403, f"The Recipient {recipient!r} is not this endpoint ({self.acs_url}).")
        if now >= _parse_time(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter"):
            raise SignInRefused(403, "The SAML response has expired (SubjectConfirmationData NotOnOrAfter).")

    def _check_conditions(self, assertion: etree._Element, now: float) -> None:
        """Conditions whose validity window holds ``now`` and whose audiences include AWS's."""
        conditions = assertion.find(_q(NS_SAML, "Conditions"))
        if conditions is None:
            raise SignInRefused(403, "The assertion has no Conditions.")
        if now + NOT_BEFORE_SKEW_SECONDS < _parse_time(conditions.get("NotBefore"), "Conditions NotBefore"):
            raise SignInRefused(403, "The SAML response is not yet valid (Conditions NotBefore).")
        if now >= _parse_time(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter"):
            raise SignInRefused(403, "The SAML response has expired (Conditions NotOnOrAfter).")
        audiences = [
            (element.text or "").strip()
            for element in conditions.iterfind(
                f"{_q(NS_SAML, 'AudienceRestriction')}/{_q(NS_SAML, 'Audience')}"
            )
        ]
        if self.audience not in audiences:
            raise SignInRefused(
                403, f"The Audience must be {self.audience}, got {', '.join(audiences) or 'none'}."
            )

    def _chosen_role(self, claims: VerifiedClaims, role_index: str | None) -> RolePair:
        if len(claims.roles) == 1 and not role_index:
            return claims.roles[0]
        if role_index is None or not role_index.isdigit() or int(role_index) >= len(claims.roles):
            raise SignInRefused(400, "Choose one of the offered roles.")
        return claims.roles[int(role_index)]

    # -- STS ----------------------------------------------------------------------------------

    def _assertion_for_sts(
        self, root: etree._Element, raw: bytes, claims: VerifiedClaims, chosen: RolePair
    ) -> str:
        """The SAMLResponse for STS; with several Role values, a copy that keeps only the chosen one.

        moto's STS reads the first AttributeValue of Role and fails on a list of them; it checks no
        signature, so the copy (whose content was verified above) serves it the chosen role.
        """
        if len(claims.roles) == 1:
            return base64.b64encode(raw).decode("ascii")
        reduced = copy.deepcopy(root)
        for attribute in reduced.iterfind(f".//{_q(NS_SAML, 'Attribute')}"):
            if attribute.get("Name") != ATTR_ROLE:
                continue
            for value in attribute.findall(_q(NS_SAML, "AttributeValue")):
                if _role_pair((value.text or "").strip()) != chosen:
                    attribute.remove(value)
        return base64.b64encode(etree.tostring(reduced)).decode("ascii")

    def _ensure_role_trusts_provider(
        self, chosen: RolePair, *, tagged: bool = False, sourced: bool = False
    ) -> None:
        """Create a missing role (local convenience); refuse a role that does not trust the provider
        (and, for an assertion with session tags or a source identity, does not allow sts:TagSession
        or sts:SetSourceIdentity, as AWS refuses it)."""
        path_and_name = ROLE_ARN.fullmatch(chosen.role_arn)
        if path_and_name is None:
            raise SignInRefused(403, f"{chosen.role_arn!r} is not an IAM role ARN.")
        *path_parts, name = path_and_name.group(3).split("/")
        try:
            role = self._iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _NOT_FOUND_CODES:
                raise SignInRefused(403, f"IAM refused: {_client_error_message(exc)}") from exc
            self._refuse_outside_home(chosen.account_id, f"role {chosen.role_arn}")
            role = self._iam.create_role(
                RoleName=name,
                Path="/" + "".join(f"{part}/" for part in path_parts),
                AssumeRolePolicyDocument=json.dumps(saml_trust_policy(chosen.provider_arn, self.acs_url)),
                Description="Created by the local AWS sign-in stand-in for SAML federation.",
            )["Role"]
        if role.get("Arn") != chosen.role_arn:
            raise SignInRefused(403, f"The role {chosen.role_arn} does not exist (found {role.get('Arn')}).")
        document = role.get("AssumeRolePolicyDocument")
        if not _trusts_provider(document, chosen.provider_arn):
            raise SignInRefused(
                403,
                f"Not authorized to perform sts:AssumeRoleWithSAML: the trust policy of {chosen.role_arn} "
                f"does not trust {chosen.provider_arn}.",
            )
        if tagged and not _trusts_provider(document, chosen.provider_arn, "sts:TagSession"):
            raise SignInRefused(
                403,
                f"Not authorized to perform sts:TagSession: the trust policy of {chosen.role_arn} does not "
                f"allow {chosen.provider_arn} to pass session tags (PrincipalTag attributes).",
            )
        if sourced and not _trusts_provider(document, chosen.provider_arn, "sts:SetSourceIdentity"):
            raise SignInRefused(
                403,
                f"Not authorized to perform sts:SetSourceIdentity: the trust policy of {chosen.role_arn} "
                f"does not allow {chosen.provider_arn} to set a source identity (SourceIdentity attribute).",
            )


def _trusts_provider(document: Any, provider_arn: str, action: str = "sts:AssumeRoleWithSAML") -> bool:
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return False
    if not isinstance(document, dict):
        return False
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        federated = principal.get("Federated", []) if isinstance(principal, dict) else []
        federated = [federated] if isinstance(federated, str) else federated
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if provider_arn in federated and action in actions:
            return True
    return False


def _client_error_message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()


# -- pages ----------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}"
    "code{word-break:break-all}.error{border-left:4px solid #d13212;padding-left:1rem}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<p><small>Local stand-in for https://signin.aws.amazon.com/saml</small></p>{body}</body></html>"
    )


def _error_page(reason: str) -> str:
    return _page(
        "Your request included an invalid SAML response",
        '<div class="error"><h1>Your request included an invalid SAML response</h1>'
        f'<p id="reason">{escape(reason)}</p></div>',
    )


def _role_chooser_page(acs_url: str, saml_response: str, relay_state: str, claims: VerifiedClaims) -> str:
    """AWS's "Select a role" page: the roles grouped by account, one radio button each."""
    by_account: dict[str, list[str]] = {}
    for index, role in enumerate(claims.roles):
        by_account.setdefault(role.account_id, []).append(
            f'<div><input type="radio" id="role-{index}" name="roleIndex" value="{index}"'
            f"{' checked' if index == 0 else ''}>"
            f'<label for="role-{index}">{escape(role.role_arn)}</label></div>'
        )
    accounts = "".join(
        f'<fieldset class="account"><legend>Account: {escape(account)}</legend>{"".join(options)}</fieldset>'
        for account, options in by_account.items()
    )
    relay = f'<input type="hidden" name="RelayState" value="{escape(relay_state)}">' if relay_state else ""
    return _page(
        "Select a role",
        "<h1>Select a role</h1>"
        f'<form method="post" action="{escape(acs_url)}">{accounts}'
        f'<input type="hidden" name="SAMLResponse" value="{escape(saml_response)}">{relay}'
        '<button type="submit">Sign In</button></form>',
    )


def _signed_in_page(
    *,
    assumed_role_arn: str,
    expiration: Any,
    relay_state: str,
    session_tags: tuple[tuple[str, str], ...] = (),
    source_identity: str | None = None,
) -> str:
    expires = expiration.isoformat() if isinstance(expiration, datetime.datetime) else str(expiration)
    destination = "<p>No RelayState was given.</p>"
    if relay_state:
        parts = urlsplit(relay_state)
        safe_link = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)
        shown = escape(relay_state)
        destination = (
            f'<p>AWS would now open <a id="relay-state" href="{shown}">{shown}</a>.</p>'
            if safe_link
            else f'<p>AWS would now open <code id="relay-state">{shown}</code>.</p>'
        )
    return _page(
        "Signed in to AWS",
        "<h1>Signed in to AWS</h1>"
        f'<p>Assumed role: <code id="assumed-role">{escape(assumed_role_arn)}</code></p>'
        f'<p>Credentials expire at <time id="expiration">{escape(expires)}</time>.</p>'
        f"{_source_identity_line(source_identity)}{_session_tags_list(session_tags)}{destination}",
    )


def _source_identity_line(source_identity: str | None) -> str:
    if source_identity is None:
        return ""
    return f'<p>Source identity: <code id="source-identity">{escape(source_identity)}</code></p>'


def _session_tags_list(tags: tuple[tuple[str, str], ...]) -> str:
    if not tags:
        return ""
    items = "".join(f"<li><code>{escape(key)}</code>: {escape(value)}</li>" for key, value in tags)
    return f'<p>Session tags:</p><ul id="session-tags">{items}</ul>'
