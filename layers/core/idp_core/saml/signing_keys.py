"""Which KMS key signs SAML now, and which certificates the metadata publishes: the roll-over
of the signing key (``idp signing-key rotate start|finish|status``).

A deployment has two asymmetric KMS keys (infra.constructs.keys), ``SIGNING_KEY_ID`` and
``NEXT_SIGNING_KEY_ID``. A rotation has two steps, each an operator's act, so no sign-in fails
on the way: ``start`` publishes the other key's certificate beside the signing one, so every
service provider can add it while the current key still signs; ``finish`` switches signing to
it and drops the old certificate from the metadata. The next rotation goes back to the key
retired by the previous one. The state is one item of the settings table; without it the
deployment's first key signs alone, as before rotations existed.

The sso function keeps the state ``CACHE_SECONDS`` per container, as it keeps the MFA settings:
after ``finish`` a warm container may sign with the old key that long, which is why the old
key's deletion is refused until then (the providers still hold its certificate).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from time import monotonic as time_monotonic
from typing import Any

from pynamodb.exceptions import PutError

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import Clock
from idp_core.config import ENV_NEXT_SIGNING_KEY_ID, ConfigurationError
from idp_core.errors import Conflict
from idp_core.models import KeyValue, condition_failed
from idp_core.saml.certificate import SigningIdentity, signing_identity
from idp_core.ttl_cache import TtlCache

STATE_ITEM = "saml-signing-keys"
CACHE_SECONDS = 60.0
# KMS waits at least 7 and at most 30 days before it deletes a key.
MIN_DELETION_DAYS = 7
MAX_DELETION_DAYS = 30
ENABLED = "Enabled"


# The deployment's signing keys: SIGNING_KEY_ID and NEXT_SIGNING_KEY_ID (None on a stack
# deployed before rotations existed).
DeploymentKeys = tuple[str, str | None]


class RotationRefused(Conflict):
    """A rotation step that would make sign-ins fail, or that does not fit the current state."""


class SigningKeyStateRefused(ConfigurationError):
    """The stored state names a key that is not the deployment's: nothing signs with it."""


@dataclass(frozen=True)
class SigningKeys:
    """The key that signs, the next one while a rotation is under way, and the one the last
    rotation retired (still held by providers until their admins remove its certificate).
    ``started_at`` is when the last rotation started (None before rotations kept it): with
    ``switched_at``, it finds the steps' audit events for the console's signing key page."""

    signing: str
    next: str | None = None
    retired: str | None = None
    switched_at: float | None = None
    started_at: float | None = None

    @property
    def published(self) -> tuple[str, ...]:
        """The keys whose certificates the metadata carries, the signing one first."""
        return (self.signing,) if self.next is None else (self.signing, self.next)

    def to_json(self) -> str:
        return json.dumps(
            {
                "signing": self.signing,
                "next": self.next,
                "retired": self.retired,
                "switched_at": self.switched_at,
                "started_at": self.started_at,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> SigningKeys:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("signing"), str):
            raise ValueError("not an object with a signing key")
        switched_at, started_at = data.get("switched_at"), data.get("started_at")
        return cls(
            signing=data["signing"],
            next=data.get("next") or None,
            retired=data.get("retired") or None,
            switched_at=float(switched_at) if switched_at is not None else None,
            started_at=float(started_at) if started_at is not None else None,
        )


@dataclass(frozen=True)
class _Stored:
    """What the table holds: the state and its item's text (None: no rotation ever ran)."""

    keys: SigningKeys | None
    text: str | None


# Read through ``_monotonic`` so that tests move this container's time.
_monotonic = time_monotonic
_cache: TtlCache[str, _Stored] = TtlCache(CACHE_SECONDS, now=lambda: _monotonic())


def current_keys(deployment_keys: DeploymentKeys, *, fresh: bool = False) -> SigningKeys:
    """The rotation state (the deployment's first key signing alone when no rotation ever ran);
    read afresh with ``fresh``, else at most every ``CACHE_SECONDS``. A state that names a key
    other than the deployment's two is refused: whoever can write the settings table must not
    get a key of their choosing published or used (S32)."""
    return _checked(deployment_keys, _read(fresh=fresh))


def _checked(deployment_keys: DeploymentKeys, stored: _Stored) -> SigningKeys:
    keys = stored.keys or SigningKeys(signing=deployment_keys[0])
    foreign = [key for key in (keys.signing, keys.next, keys.retired) if key and key not in deployment_keys]
    if foreign:
        raise SigningKeyStateRefused(
            f"The stored signing key state names {', '.join(foreign)}, which is not one of this "
            f"deployment's signing keys ({', '.join(key for key in deployment_keys if key)}): nothing is "
            f"signed or published until the item {STATE_ITEM!r} of the settings table is corrected."
        )
    return keys


def forget_cached_keys() -> None:
    """Read the state from the table next time (tests, and a local stack that restarts)."""
    _cache.clear()


def signing_identity_now(kms_client: Any, deployment_keys: DeploymentKeys, clock: Clock) -> SigningIdentity:
    """The identity that signs assertions, responses and logout answers now."""
    return signing_identity(kms_client, current_keys(deployment_keys).signing, clock)


def published_identities(
    kms_client: Any, deployment_keys: DeploymentKeys, clock: Clock
) -> list[SigningIdentity]:
    """The identities whose certificates the metadata publishes, the signing one first. Read
    afresh: the metadata is fetched rarely, and a rotation's start must show in it at once."""
    keys = current_keys(deployment_keys, fresh=True)
    return [signing_identity(kms_client, key_id, clock) for key_id in keys.published]


def start_rotation(
    kms_client: Any,
    deployment_keys: DeploymentKeys,
    *,
    context: AuditContext | None,
    clock: Clock,
) -> SigningKeys:
    """Publish the deployment's other key beside the signing one (nothing signs with it yet)."""
    first, second = deployment_keys
    stored = _read(fresh=True)
    keys = _checked(deployment_keys, stored)
    if keys.next is not None:
        raise RotationRefused(
            f"A rotation is already under way: {keys.next} is published beside {keys.signing}. "
            "Finish it first (idp signing-key rotate finish)."
        )
    if second is None:
        raise RotationRefused(
            "This deployment has one signing key: redeploy the stack, which adds the second one "
            f"({ENV_NEXT_SIGNING_KEY_ID}, output NextSigningKeyId), then start the rotation."
        )
    following = second if keys.signing == first else first
    state = kms_client.describe_key(KeyId=following)["KeyMetadata"].get("KeyState")
    if state != ENABLED:
        raise RotationRefused(
            f"The deployment's other signing key {following} is {state}, not Enabled: cancel its "
            f"deletion and enable it (aws kms cancel-key-deletion, aws kms enable-key) to rotate to it."
        )
    started = replace(
        keys,
        next=following,
        retired=None if keys.retired == following else keys.retired,
        started_at=clock.now(),
    )
    _save(started, stored, clock)
    audit.record(
        audit.EventType.SIGNING_KEY_ROTATION_STARTED,
        "success",
        context=context,
        subject=following,
        details={"signing": keys.signing, "next": following},
        clock=clock,
    )
    return started


def finish_rotation(
    deployment_keys: DeploymentKeys,
    *,
    lacking: Sequence[str],
    force: bool,
    context: AuditContext | None,
    clock: Clock,
) -> SigningKeys:
    """Sign with the next key and retire the old one from the metadata, once no provider in
    ``lacking`` (those that do not hold the next certificate) would refuse its signatures."""
    stored = _read(fresh=True)
    keys = _checked(deployment_keys, stored)
    if keys.next is None:
        raise RotationRefused("No rotation is under way: start one first (idp signing-key rotate start).")
    if lacking and not force:
        audit.record(
            audit.EventType.SIGNING_KEY_ROTATION_FINISHED,
            "failure",
            context=context,
            subject=keys.next,
            details={"reason": "providers lack the next certificate", "providers": ",".join(lacking)},
            clock=clock,
        )
        raise RotationRefused(
            f"Not switching to {keys.next}: {len(lacking)} SAML provider(s) do not hold its certificate "
            f"yet ({', '.join(lacking)}), and AWS would refuse every sign-in through them. Upload the "
            "metadata (idp metadata) to each, or finish with --force to accept that."
        )
    finished = SigningKeys(
        signing=keys.next, retired=keys.signing, switched_at=clock.now(), started_at=keys.started_at
    )
    _save(finished, stored, clock)
    audit.record(
        audit.EventType.SIGNING_KEY_ROTATION_FINISHED,
        "success",
        context=context,
        subject=keys.next,
        details={
            "signing": keys.next,
            "retired": keys.signing,
            "forced": force,
            "lacking": ",".join(lacking),
        },
        clock=clock,
    )
    return finished


def schedule_retired_deletion(
    kms_client: Any, deployment_keys: DeploymentKeys, *, days: int, context: AuditContext | None, clock: Clock
) -> str:
    """Schedule the deletion of the key the last rotation retired; its id."""
    if not MIN_DELETION_DAYS <= days <= MAX_DELETION_DAYS:
        raise RotationRefused(
            f"KMS deletes a key after {MIN_DELETION_DAYS} to {MAX_DELETION_DAYS} days, not {days}."
        )
    keys = current_keys(deployment_keys, fresh=True)
    if keys.retired is None or keys.switched_at is None:
        raise RotationRefused("No retired signing key to delete: finish a rotation first.")
    ready_at = keys.switched_at + 2 * CACHE_SECONDS
    if clock.now() < ready_at:
        raise RotationRefused(
            f"Warm functions may still sign with {keys.retired} until {int(ready_at - clock.now())} s from "
            "now (they re-read the signing key every minute): schedule its deletion after that."
        )
    kms_client.schedule_key_deletion(KeyId=keys.retired, PendingWindowInDays=days)
    audit.record(
        audit.EventType.SIGNING_KEY_DELETION_SCHEDULED,
        "success",
        context=context,
        subject=keys.retired,
        details={"days": days},
        clock=clock,
    )
    return keys.retired


def _read(*, fresh: bool) -> _Stored:
    table = KeyValue.Meta.table_name
    cached = None if fresh else _cache.get(table)
    if cached is not None:
        return cached
    try:
        item = KeyValue.get(STATE_ITEM, consistent_read=True)
    except KeyValue.DoesNotExist:
        return _cache.put(table, _Stored(None, None))
    try:
        keys = SigningKeys.from_json(item.value)
    except (ValueError, TypeError) as exc:
        # No safe default: guessing the key would sign with one the providers may not trust.
        raise ConfigurationError(f"The stored signing key state {STATE_ITEM!r} is damaged: {exc}.") from exc
    return _cache.put(table, _Stored(keys, item.value))


def _save(keys: SigningKeys, previous: _Stored, clock: Clock) -> None:
    """Write the state only over the one this step read, so two operators' steps never interleave."""
    item = KeyValue(STATE_ITEM, value=keys.to_json(), updated_at=clock.now())
    condition = KeyValue.name.does_not_exist() if previous.text is None else KeyValue.value == previous.text
    try:
        item.save(condition=condition)
    except PutError as exc:
        if not condition_failed(exc):
            raise
        raise RotationRefused(
            "The signing key state changed while this step ran (another operator?): check "
            "idp signing-key rotate status and try again."
        ) from exc
    _cache.put(KeyValue.Meta.table_name, _Stored(keys, item.value))
