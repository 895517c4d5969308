"""The IdP metadata document, for the CLI and the local stack (no moto import here)."""

from __future__ import annotations

from typing import Any

from idp_core.clock import Clock
from idp_core.config import ConfigurationError, Settings


def idp_metadata_xml(settings: Settings, kms_client: Any, clock: Clock) -> str:
    """The IdP metadata, built by the same code as /saml/metadata (the document IAM holds)."""
    from idp_core.saml.certificate import signing_identity
    from idp_core.saml.metadata import build_idp_metadata, entity_id_for

    if not settings.public_base_url:
        raise ConfigurationError("The IdP metadata needs the public base URL (PUBLIC_BASE_URL).")
    identity = signing_identity(kms_client, settings.signing_key_id, clock)
    xml = build_idp_metadata(
        entity_id=entity_id_for(settings.public_base_url),
        base_url=settings.public_base_url,
        certificate_der_b64=identity.certificate_der_b64,
    )
    return xml.decode("utf-8")
