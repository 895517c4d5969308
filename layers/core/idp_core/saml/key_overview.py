"""What the admin console's "Signing key" page shows of the SAML signing key's roll-over
(``idp signing-key rotate``, idp_core.saml.signing_keys): which key signs, the deployment's
other key and whether the metadata publishes it, the stage, and who made each step when.

Read-only, from what the sso function may read anyway: the rotation state and the stored
certificates (items of the settings table, the certificates those the metadata publishes)
and the steps' audit events. No KMS or IAM call: which IAM SAML providers hold the next
certificate is for ``idp signing-key rotate status``, run with an operator's IAM reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from idp_core import audit
from idp_core.clock import readable_utc
from idp_core.saml.certificate import stored_certificate
from idp_core.saml.signing_keys import DeploymentKeys, SigningKeys, current_keys

# How the stack names each of the deployment's keys (infra.constructs.keys): its output, and its
# alias after ``alias/STACK/``. The first is the one that signs before any rotation.
DEPLOYMENT_KEY_NAMES = (("SigningKeyId", "saml-signing"), ("NextSigningKeyId", "saml-signing-next"))


class Stage(StrEnum):
    NONE = "none"  # No rotation ever ran, or the deployment has one key.
    STARTED = "started"  # Both certificates are published; the current key still signs.
    FINISHED = "finished"  # The other key signs; the retired one is no longer published.


@dataclass(frozen=True)
class CertificateFacts:
    subject: str
    sha256: str  # colon-separated upper-case hex, as openssl and most SP consoles show it
    not_after: str


@dataclass(frozen=True)
class DeploymentKey:
    key_id: str
    output: str
    alias_suffix: str
    certificate: CertificateFacts | None  # None until /saml/metadata first publishes the key


@dataclass(frozen=True)
class RotationStep:
    at: str
    actor: str | None  # None when the trail no longer holds the step's event


@dataclass(frozen=True)
class SigningKeyOverview:
    stage: Stage
    signing: DeploymentKey
    other: DeploymentKey | None  # None on a deployment with one signing key
    started: RotationStep | None
    finished: RotationStep | None

    @property
    def other_published(self) -> bool:
        return self.stage == Stage.STARTED


def certificate_facts(certificate: x509.Certificate) -> CertificateFacts:
    return CertificateFacts(
        subject=certificate.subject.rfc4514_string(),
        sha256=certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
        not_after=readable_utc(certificate.not_valid_after_utc.timestamp()) or "",
    )


def signing_key_overview(deployment_keys: DeploymentKeys) -> SigningKeyOverview:
    """The roll-over as it stands, read afresh. A stored state that names a key not the
    deployment's raises ``SigningKeyStateRefused``, as the metadata and the sign-ins do."""
    keys = current_keys(deployment_keys, fresh=True)
    others = [key for key in deployment_keys if key and key != keys.signing]
    stage = Stage.STARTED if keys.next else Stage.FINISHED if keys.retired else Stage.NONE
    return SigningKeyOverview(
        stage=stage,
        signing=_deployment_key(keys.signing, deployment_keys),
        other=_deployment_key(others[0], deployment_keys) if others else None,
        started=_started(keys),
        finished=_finished(keys) if stage == Stage.FINISHED else None,
    )


def _deployment_key(key_id: str, deployment_keys: DeploymentKeys) -> DeploymentKey:
    output, alias_suffix = DEPLOYMENT_KEY_NAMES[deployment_keys.index(key_id)]
    certificate = stored_certificate(key_id)
    return DeploymentKey(
        key_id=key_id,
        output=output,
        alias_suffix=alias_suffix,
        certificate=certificate_facts(certificate) if certificate is not None else None,
    )


def _started(keys: SigningKeys) -> RotationStep | None:
    if keys.started_at is None:
        return None
    # The started event names the key the rotation moves to: the next one, or the signing one once finished.
    moving_to = keys.next or keys.signing
    return _step(audit.EventType.SIGNING_KEY_ROTATION_STARTED, keys.started_at, moving_to)


def _finished(keys: SigningKeys) -> RotationStep | None:
    if keys.switched_at is None:
        return None
    return _step(audit.EventType.SIGNING_KEY_ROTATION_FINISHED, keys.switched_at, keys.signing)


def _step(event_type: audit.EventType, at: float, subject: str) -> RotationStep:
    event = audit.event_near(event_type, at=at, subject=subject)
    return RotationStep(at=readable_utc(at) or "", actor=event.actor if event is not None else None)
