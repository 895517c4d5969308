"""The IdP's SAML metadata (what an admin uploads to IAM as the SAML provider document)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lxml import etree

from idp_core.clock import Clock
from idp_core.saml.aws import NAMEID_PERSISTENT, NAMEID_UNSPECIFIED
from idp_core.saml.signing_keys import DeploymentKeys, published_identities
from idp_core.saml.xml import NS_DS, NS_MD

PROTOCOL_SAML2 = "urn:oasis:names:tc:SAML:2.0:protocol"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
SSO_PATH = "/saml/sso"
SLO_PATH = "/saml/slo"
# The NameID formats SAML apps may choose (idp_core.saml_apps), besides the two above.
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
METADATA_PATH = "/saml/metadata"


def entity_id_for(base_url: str) -> str:
    """The IdP entity id is its metadata URL, the convention AWS documents."""
    return base_url.rstrip("/") + METADATA_PATH


def build_idp_metadata(
    *, entity_id: str, base_url: str, certificate_der_b64: str, next_certificates_der_b64: Sequence[str] = ()
) -> bytes:
    """An EntityDescriptor with one IDPSSODescriptor signing with ``certificate_der_b64``; during
    a key rotation, one signing KeyDescriptor more for each of ``next_certificates_der_b64``
    (a service provider, an IAM SAML provider too, then accepts signatures by any of them)."""
    md = f"{{{NS_MD}}}"
    ds = f"{{{NS_DS}}}"
    root = etree.Element(f"{md}EntityDescriptor", entityID=entity_id, nsmap={"md": NS_MD, "ds": NS_DS})
    idp = etree.SubElement(
        root,
        f"{md}IDPSSODescriptor",
        WantAuthnRequestsSigned="false",
        protocolSupportEnumeration=PROTOCOL_SAML2,
    )
    for certificate in (certificate_der_b64, *next_certificates_der_b64):
        key_descriptor = etree.SubElement(idp, f"{md}KeyDescriptor", use="signing")
        key_info = etree.SubElement(key_descriptor, f"{ds}KeyInfo")
        x509_data = etree.SubElement(key_info, f"{ds}X509Data")
        etree.SubElement(x509_data, f"{ds}X509Certificate").text = certificate
    slo_url = base_url.rstrip("/") + SLO_PATH
    for binding in (BINDING_REDIRECT, BINDING_POST):
        etree.SubElement(idp, f"{md}SingleLogoutService", Binding=binding, Location=slo_url)
    for name_id_format in (NAMEID_PERSISTENT, NAMEID_EMAIL, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED):
        etree.SubElement(idp, f"{md}NameIDFormat").text = name_id_format
    sso_url = base_url.rstrip("/") + SSO_PATH
    for binding in (BINDING_REDIRECT, BINDING_POST):
        etree.SubElement(idp, f"{md}SingleSignOnService", Binding=binding, Location=sso_url)
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True))


def published_metadata(
    kms_client: Any, deployment_keys: DeploymentKeys, base_url: str, clock: Clock
) -> bytes:
    """The IdP metadata (/saml/metadata, ``idp metadata``): the signing certificate, and during
    a rotation the next one."""
    signing, *following = published_identities(kms_client, deployment_keys, clock)
    return build_idp_metadata(
        entity_id=entity_id_for(base_url),
        base_url=base_url,
        certificate_der_b64=signing.certificate_der_b64,
        next_certificates_der_b64=[identity.certificate_der_b64 for identity in following],
    )
