"""The IdP metadata document, for the CLI and the local stack (no moto import here)."""

from __future__ import annotations

from typing import Any

from idp_core.clock import Clock
from idp_core.config import ConfigurationError, Settings


def idp_metadata_xml(settings: Settings, kms_client: Any, clock: Clock) -> str:
    """The IdP metadata, built by the same code as /saml/metadata (the document IAM holds)."""
    from idp_core.saml.metadata import published_metadata

    if not settings.public_base_url:
        raise ConfigurationError("The IdP metadata needs the public base URL (PUBLIC_BASE_URL).")
    xml = published_metadata(kms_client, settings.signing_key_ids, settings.public_base_url, clock)
    return xml.decode("utf-8")
