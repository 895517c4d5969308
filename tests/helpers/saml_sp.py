"""Service providers no one here wrote, for SP-initiated sign-in tests: pysaml2 and
python3-saml (OneLogin), each with its own key pair, making AuthnRequests and checking the
IdP's Responses with its own code."""

from __future__ import annotations

import datetime
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

SP_HOST = "sp.example.test"
SP_ENTITY = f"https://{SP_HOST}/metadata"
ACS_URL = f"https://{SP_HOST}/acs"
SLO_URL = f"https://{SP_HOST}/slo"
_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_ACTION = re.compile(r'<form id="saml-post" method="post" action="([^"]+)">')


@dataclass(frozen=True)
class KeyPair:
    key_pem: str
    cert_pem: str
    key_file: str
    cert_file: str

    @property
    def cert_b64(self) -> str:
        return "".join(line for line in self.cert_pem.splitlines() if not line.startswith("-----"))


def key_pair(folder: Path, name: str = "sp") -> KeyPair:
    """A fresh RSA key and its self-signed certificate, as files (pysaml2 reads files)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    folder.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    key_file.write_text(key_pem)
    cert_file.write_text(cert_pem)
    return KeyPair(key_pem, cert_pem, str(key_file), str(cert_file))


@dataclass(frozen=True)
class PostedForm:
    """What the IdP's auto-posting page sends, and where."""

    action: str
    fields: dict[str, str]


def posted_form(page: str) -> PostedForm:
    action = _ACTION.search(page)
    assert action, page[:500]
    return PostedForm(
        html.unescape(action.group(1)),
        {name: html.unescape(value) for name, value in _FIELD.findall(page)},
    )


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class PySaml2Sp:
    """pysaml2's Saml2Client as the SP."""

    def __init__(
        self,
        idp_metadata: str,
        keys: KeyPair,
        *,
        sign_requests: bool,
        name_id_format: str,
        want_signed: tuple[bool, bool] = (False, True),
    ) -> None:
        """``want_signed``: whether pysaml2 insists on a signed (Response, Assertion)."""
        config = SPConfig()
        config.load(
            {
                "entityid": SP_ENTITY,
                "key_file": keys.key_file,
                "cert_file": keys.cert_file,
                "metadata": {"inline": [idp_metadata]},
                "service": {
                    "sp": {
                        "endpoints": {
                            "assertion_consumer_service": [(ACS_URL, BINDING_HTTP_POST)],
                            "single_logout_service": [(SLO_URL, BINDING_HTTP_POST)],
                        },
                        "authn_requests_signed": sign_requests,
                        "allow_unsolicited": True,
                        "want_response_signed": want_signed[0],
                        "want_assertions_signed": want_signed[1],
                        "name_id_format": name_id_format,
                    }
                },
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "allow_unknown_attributes": True,
            }
        )
        self.client = Saml2Client(config=config)
        self.sign_requests = sign_requests
        self.name_id_format = name_id_format

    def metadata(self) -> bytes:
        return bytes(create_metadata_string(None, config=self.client.config, valid=24))

    def request(
        self, binding: str, relay_state: str = "", **options: Any
    ) -> tuple[str, str | dict[str, str]]:
        """(request id, the Redirect URL or the POST form's fields)."""
        request_id, info = self.client.prepare_for_authenticate(
            relay_state=relay_state,
            binding=binding,
            nameid_format=self.name_id_format,
            sign=self.sign_requests,
            sigalg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
            **options,
        )
        if binding == BINDING_HTTP_REDIRECT:
            return request_id, dict(info["headers"])["Location"]
        return request_id, {name: html.unescape(value) for name, value in _POST_FIELD.findall(info["data"])}

    def accept(self, saml_response: str, request_id: str | None) -> Any:
        """The Response checked by pysaml2; ``request_id`` None for an unsolicited one."""
        outstanding = {request_id: "/"} if request_id else {}
        return self.client.parse_authn_request_response(
            saml_response, BINDING_HTTP_POST, outstanding=outstanding
        )


_POST_FIELD = re.compile(r'<input\s+type="hidden"\s+name="([^"]+)"\s+value="([^"]*)"')


class OneLoginSp:
    """python3-saml's OneLogin_Saml2_Auth as the SP (strict mode)."""

    def __init__(
        self,
        *,
        idp_entity: str,
        sso_url: str,
        idp_cert: str,
        keys: KeyPair,
        sign_requests: bool,
        name_id_format: str,
    ) -> None:
        self.settings = {
            "strict": True,
            "sp": {
                "entityId": SP_ENTITY,
                "assertionConsumerService": {"url": ACS_URL, "binding": BINDING_HTTP_POST},
                "singleLogoutService": {"url": SLO_URL, "binding": BINDING_HTTP_REDIRECT},
                "NameIDFormat": name_id_format,
                "x509cert": keys.cert_b64,
                "privateKey": keys.key_pem,
            },
            "idp": {
                "entityId": idp_entity,
                "singleSignOnService": {"url": sso_url, "binding": BINDING_HTTP_REDIRECT},
                "singleLogoutService": {
                    "url": sso_url.replace("/sso", "/slo"),
                    "binding": BINDING_HTTP_REDIRECT,
                },
                "x509cert": idp_cert,
            },
            "security": {
                "authnRequestsSigned": sign_requests,
                "logoutRequestSigned": True,
                "wantAssertionsSigned": True,
                "wantMessagesSigned": True,
                "signatureAlgorithm": SIG_RSA_SHA256,
                "digestAlgorithm": DIGEST_SHA256,
                "requestedAuthnContext": False,
            },
        }

    def _auth(
        self,
        post_data: dict[str, str] | None = None,
        *,
        path: str = "/acs",
        get_data: dict[str, str] | None = None,
    ) -> OneLogin_Saml2_Auth:
        request = {
            "https": "on",
            "http_host": SP_HOST,
            "script_name": path,
            "server_port": "443",
            "get_data": get_data or {},
            "post_data": post_data or {},
        }
        return OneLogin_Saml2_Auth(request, self.settings)

    def metadata(self) -> bytes:
        return OneLogin_Saml2_Settings(self.settings, sp_validation_only=True).get_sp_metadata()

    def login_url(self, return_to: str) -> tuple[str, str]:
        auth = self._auth()
        url = auth.login(return_to=return_to)
        return str(auth.get_last_request_id()), url

    def accept(self, form: PostedForm, request_id: str) -> OneLogin_Saml2_Auth:
        auth = self._auth(form.fields)
        auth.process_response(request_id=request_id)
        return auth

    def logout_url(self, name_id: str) -> tuple[str, str]:
        auth = self._auth()
        url = auth.logout(name_id=name_id, return_to="https://sp.example.test/bye")
        return str(auth.get_last_request_id()), url

    def accept_logout(self, query: dict[str, str], request_id: str) -> OneLogin_Saml2_Auth:
        auth = self._auth(path="/slo", get_data=query)
        auth.process_slo(request_id=request_id, keep_local_session=True)
        return auth
