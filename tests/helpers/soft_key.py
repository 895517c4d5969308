"""A software security key for tests and benchmarks without a browser: an ES256 (P-256)
authenticator made with ``cryptography`` that answers the server's WebAuthn options as a
browser and a key would, so the server's checks (python-fido2) see real signatures.

The CBOR and COSE it produces come from fido2's own encoders; nothing is hand-written. Its
knobs make the answers an attacker would send: another origin, a counter that goes back, a
user not verified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor
from fido2.cose import ES256

# Flags of the authenticator data (W3C WebAuthn L2, 6.1).
USER_PRESENT = 0x01
USER_VERIFIED = 0x04
ATTESTED_DATA = 0x40
SOFT_KEY_AAGUID = bytes.fromhex("00000000000000000000000000000000")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftKey:
    """One credential of one key. ``origin`` is where the "browser" says it is."""

    origin: str
    user_verifies: bool = True
    sign_count: int = 0
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    user_handle: bytes = b""

    def _flags(self, extra: int = 0) -> int:
        return USER_PRESENT | (USER_VERIFIED if self.user_verifies else 0) | extra

    def _cose_public_key(self) -> bytes:
        return cbor.encode(dict(ES256.from_cryptography_key(self.private_key.public_key())))

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    def create(self, options_json: str) -> str:
        """The answer to ``navigator.credentials.create`` with "none" attestation, as JSON."""
        options = json.loads(options_json)
        self.user_handle = unb64url(options["user"]["id"])
        rp_id_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
        attested = (
            SOFT_KEY_AAGUID
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._cose_public_key()
        )
        auth_data = (
            rp_id_hash + bytes([self._flags(ATTESTED_DATA)]) + struct.pack(">I", self.sign_count) + attested
        )
        attestation = cbor.encode({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"])),
                    "attestationObject": b64url(attestation),
                    "transports": ["usb"],
                },
                "clientExtensionResults": {},
            }
        )

    def get(self, options_json: str, *, rp_id: str | None = None, count_up: int = 1) -> str:
        """The answer to ``navigator.credentials.get`` (the counter moves by ``count_up``)."""
        options: dict[str, Any] = json.loads(options_json)
        self.sign_count += count_up
        rp_hash = hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
        auth_data = rp_hash + bytes([self._flags()]) + struct.pack(">I", max(self.sign_count, 0))
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = self.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if self.user_handle:
            response["userHandle"] = b64url(self.user_handle)
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": response,
                "clientExtensionResults": {},
            }
        )
