"""What comes in from service providers: their metadata and their requests' Redirect-binding
signatures (issue 16 point 1, S20, S21)."""

from __future__ import annotations

import base64
import time
import zlib
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idp_core.errors import BadRequest
from idp_core.saml import sp_requests
from idp_core.saml.sp_metadata import MetadataRejected, parse_sp_metadata
from idp_core.saml.sp_requests import SignatureRefused
from tests.helpers.saml_sp import key_pair

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
ARTIFACT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"


def metadata(services: str, *, wrap: bool = False, descriptors: int = 1) -> bytes:
    descriptor = (
        '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{services}</md:SPSSODescriptor>"
    ) * descriptors
    entity = (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example/m">'
        f"{descriptor}</md:EntityDescriptor>"
    )
    if wrap:
        entity = entity.replace(' xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"', "")
        namespace = 'xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
        entity = f"<md:EntitiesDescriptor {namespace}>{entity}</md:EntitiesDescriptor>"
    return entity.encode()


def acs(url: str, index: int, binding: str = POST, default: str = "") -> str:
    extra = f' isDefault="{default}"' if default else ""
    return f'<md:AssertionConsumerService Binding="{binding}" Location="{url}" index="{index}"{extra}/>'


def test_the_default_acs_is_the_marked_one_else_the_lowest_index_and_other_bindings_are_skipped() -> None:
    marked = parse_sp_metadata(
        metadata(acs("https://sp.example/a", 0) + acs("https://sp.example/b", 5, default="true"))
    )
    assert marked.default_acs().url == "https://sp.example/b"
    lowest = parse_sp_metadata(
        metadata(
            acs("https://sp.example/a", 3)
            + acs("https://sp.example/b", 1)
            + acs("https://sp.example/c", 0, ARTIFACT)
        ),
    )
    assert lowest.default_acs().url == "https://sp.example/b"
    assert [endpoint.url for endpoint in lowest.acs] == ["https://sp.example/a", "https://sp.example/b"]
    wrapped = parse_sp_metadata(metadata(acs("https://sp.example/a", 0), wrap=True))
    assert wrapped.entity_id == "https://sp.example/m"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            metadata(acs("https://sp.example/a", 0, ARTIFACT)),
            "no assertion consumer service with the HTTP-POST",
        ),
        (metadata(acs("http://sp.example/a", 0)), "must be an https URL"),
        (metadata(acs("https://sp.example/a", 0), descriptors=2), "exactly one SPSSODescriptor"),
        (metadata(acs("https://sp.example/a", 99999999)), "not a small whole number"),
        (b"<x/>", "not SAML 2.0 metadata"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', "DOCTYPE"),
        (
            metadata(
                '<md:KeyDescriptor xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:KeyInfo><ds:X509Data>'
                "<ds:X509Certificate>bm90IGEgY2VydA==</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
                "</md:KeyDescriptor>" + acs("https://sp.example/a", 0)
            ),
            "not an X.509 certificate",
        ),
    ],
)
def test_unusable_metadata_is_refused_with_the_reason(document: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_sp_metadata(document)


def test_loopback_http_is_allowed_for_a_local_sp() -> None:
    assert (
        parse_sp_metadata(metadata(acs("http://127.0.0.1:8080/acs", 0)))
        .default_acs()
        .url.startswith("http://")
    )
    assert isinstance(MetadataRejected("x"), BadRequest)


def signed_query(tmp_path: Path, encode: object, sig_alg: str = RSA_SHA256) -> tuple[dict[str, str], str]:
    """A Redirect-binding query as an SP would sign it with ``encode``, decoded as the gateway hands it."""
    keys = key_pair(tmp_path)
    key = serialization.load_pem_private_key(keys.key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    document = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0" '
        f'IssueInstant="{issued}"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">'
        "https://sp.example/m</saml:Issuer></samlp:AuthnRequest>"
    ).encode()
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    values = {
        "SAMLRequest": base64.b64encode(compressor.compress(document) + compressor.flush()).decode(),
        "RelayState": "back to ~/page one",
        "SigAlg": sig_alg,
    }
    signed = "&".join(f"{name}={encode(value)}" for name, value in values.items())  # type: ignore[operator]
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {**values, "Signature": base64.b64encode(signature).decode()}, keys.cert_b64


def lower_hex(value: str) -> str:
    encoded = quote_plus(value, safe="")
    return "".join(
        part if i == 0 else part[:2].lower() + part[2:] for i, part in enumerate(encoded.split("%"))
    )


@pytest.mark.parametrize(
    "encode",
    [lambda v: quote_plus(v, safe=""), lambda v: quote(v, safe=""), lower_hex],
    ids=["plus-for-space", "percent-20", "lower-case-hex"],
)
def test_a_redirect_signature_verifies_in_each_encoding_sp_libraries_use(
    tmp_path: Path, encode: object
) -> None:
    query, certificate = signed_query(tmp_path, encode)
    message = sp_requests.read_redirect(query)
    assert sp_requests.verified_root(message, (certificate,), required=True, now=time.time()) is message.root
    tampered = sp_requests.read_redirect({**query, "RelayState": "somewhere else"})
    with pytest.raises(SignatureRefused, match="does not verify"):
        sp_requests.verified_root(tampered, (certificate,), required=True, now=time.time())


def test_sha1_signatures_are_refused(tmp_path: Path) -> None:
    query, certificate = signed_query(tmp_path, lambda v: quote_plus(v, safe=""), RSA_SHA1)
    with pytest.raises(SignatureRefused, match="SigAlg"):
        sp_requests.verified_root(
            sp_requests.read_redirect(query), (certificate,), required=False, now=time.time()
        )
