"""From a SAMLResponse for AWS to credentials: the roles it offers, STS AssumeRoleWithSAML, and
the shared credentials file (or a credential_process answer).

The CLI reads the assertion without verifying its signature: STS verifies it against the IAM
SAML provider (and its validity by AWS's clock), so the CLI's reading only chooses a role and
says early, in a sentence, what STS would refuse (a role the assertion does not offer).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from idp_core.clock import Clock
from idp_core.saml.aws import ATTR_ROLE, ATTR_SESSION_DURATION, PROVIDER_ARN, ROLE_ARN
from idp_core.saml.xml import NS_SAML, NS_SAMLP, decode_base64, parse_xml

MAX_RESPONSE_BYTES = 128 * 1024
# Cached credentials are served while they have this long left; then a new sign-in.
CACHE_MARGIN_SECONDS = 300
# Profile names the CLI writes: nothing that could end a section header or a line.
PROFILE_NAME = re.compile(r"[A-Za-z0-9_.@+=,-]{1,64}", re.ASCII)
CREDENTIAL_PROCESS_VERSION = 1
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


class AssertionUnusable(Exception):
    """The SAMLResponse cannot give credentials (expired, no role, not for AWS); the message
    says why and what to do."""


@dataclass(frozen=True)
class RoleOffer:
    role_arn: str
    provider_arn: str


@dataclass(frozen=True)
class AwsAssertion:
    """What the CLI reads from the (unverified) SAMLResponse."""

    roles: tuple[RoleOffer, ...]
    recipient: str
    session_duration: int | None


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime.datetime
    assumed_role_arn: str

    def credential_process(self) -> dict[str, Any]:
        """The JSON a ``credential_process`` prints (the AWS CLI's and SDKs' Version 1)."""
        return {
            "Version": CREDENTIAL_PROCESS_VERSION,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": self.expiration.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def _q(tag: str, namespace: str = NS_SAML) -> str:
    return f"{{{namespace}}}{tag}"


def read_assertion(saml_response_b64: str) -> AwsAssertion:
    root = parse_xml(
        decode_base64(saml_response_b64, max_bytes=MAX_RESPONSE_BYTES, what="SAMLResponse"),
        max_bytes=MAX_RESPONSE_BYTES,
    )
    assertions = root.findall(_q("Assertion"))
    if root.tag != _q("Response", NS_SAMLP) or len(assertions) != 1:
        raise AssertionUnusable("The IdP's answer is not a SAML Response with one assertion.")
    assertion = assertions[0]
    subject = f"{_q('Subject')}/{_q('SubjectConfirmation')}/{_q('SubjectConfirmationData')}"
    confirmation = assertion.find(subject)
    if confirmation is None:
        raise AssertionUnusable("The assertion has no subject confirmation.")
    values: dict[str, list[str]] = {}
    for attribute in assertion.iterfind(f"{_q('AttributeStatement')}/{_q('Attribute')}"):
        values.setdefault(attribute.get("Name") or "", []).extend(
            (value.text or "").strip() for value in attribute.findall(_q("AttributeValue"))
        )
    durations = values.get(ATTR_SESSION_DURATION, [])
    return AwsAssertion(
        roles=tuple(offer for offer in map(_role_offer, values.get(ATTR_ROLE, [])) if offer),
        recipient=confirmation.get("Recipient") or "",
        session_duration=int(durations[0]) if len(durations) == 1 and durations[0].isdigit() else None,
    )


def _role_offer(value: str) -> RoleOffer | None:
    """A Role value, ``roleARN,providerARN`` in either order (as AWS reads it)."""
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != len(("role", "provider")):
        return None
    role, provider = parts if ROLE_ARN.fullmatch(parts[0]) else reversed(parts)
    if ROLE_ARN.fullmatch(role) and PROVIDER_ARN.fullmatch(provider):
        return RoleOffer(role, provider)
    return None


def choose_role(
    assertion: AwsAssertion, requested: str | None, ask: Callable[[Sequence[str]], int]
) -> RoleOffer:
    """The role ``requested`` (it must be one the assertion offers), the only one, or the user's
    choice among several (``ask`` gets the role ARNs and returns an index)."""
    offered = ", ".join(offer.role_arn for offer in assertion.roles)
    if not assertion.roles:
        raise AssertionUnusable("The IdP offers you no AWS role in this app; ask an administrator.")
    if requested is not None:
        for offer in assertion.roles:
            if offer.role_arn == requested:
                return offer
        raise AssertionUnusable(f"You may not take the role {requested}; this app offers you: {offered}.")
    if len(assertion.roles) == 1:
        return assertion.roles[0]
    return assertion.roles[ask([offer.role_arn for offer in assertion.roles])]


def assume_role(sts: Any, offer: RoleOffer, saml_response_b64: str, assertion: AwsAssertion) -> Credentials:
    """STS AssumeRoleWithSAML for ``offer``, for as long as the app's session duration says."""
    options: dict[str, Any] = {}
    if assertion.session_duration is not None:
        # STS's own default is an hour; the app's SessionDuration is what the admin chose.
        options["DurationSeconds"] = assertion.session_duration
    answer = sts.assume_role_with_saml(
        RoleArn=offer.role_arn, PrincipalArn=offer.provider_arn, SAMLAssertion=saml_response_b64, **options
    )
    credentials = answer["Credentials"]
    return Credentials(
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
        expiration=credentials["Expiration"],
        assumed_role_arn=answer["AssumedRoleUser"]["Arn"],
    )


# ---------------------------------------------------------------- the shared files


def check_profile_name(name: str) -> str:
    if not PROFILE_NAME.fullmatch(name):
        raise ValueError(
            f"The profile name {name!r} must be 1-64 letters, digits or _ . @ + = , - characters."
        )
    return name


def credentials_file() -> Path:
    return Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")


def config_file() -> Path:
    return Path(os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config")


def config_section(profile: str) -> str:
    """The config file names a profile ``[profile NAME]``, except ``[default]``."""
    return profile if profile == "default" else f"profile {profile}"


def _section_name(line: str) -> str | None:
    stripped = line.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        return stripped[1:-1].strip()
    return None


def _key_of(line: str) -> str:
    return line.split("=", 1)[0].strip() if "=" in line else ""


def set_keys(path: Path, section: str, keys: Mapping[str, str]) -> None:
    """Set ``keys`` in ``[section]`` of the INI file ``path``, leaving every other line as it is
    (other profiles, comments, the section's other keys), and replace the file in one step with
    mode 0600: a failure leaves the old file whole, and no other user may read the secrets."""
    path = path.resolve()  # A linked file (dotfiles kept elsewhere) is updated, not replaced.
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    start = next((index for index, line in enumerate(lines) if _section_name(line) == section), None)
    new_lines = [f"{key} = {value}" for key, value in keys.items()]
    if start is None:
        lines = [*lines, *([""] if lines and lines[-1].strip() else []), f"[{section}]", *new_lines]
    else:
        end = next(
            (index for index in range(start + 1, len(lines)) if _section_name(lines[index]) is not None),
            len(lines),
        )
        kept = [line for line in lines[start + 1 : end] if _key_of(line) not in keys]
        while kept and not kept[-1].strip():
            kept.pop()
        gap = [""] if end < len(lines) else []
        lines = [*lines[: start + 1], *kept, *new_lines, *gap, *lines[end:]]
    _replace(path, "\n".join(lines) + "\n")


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), FILE_MODE)
            stream.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_credentials(profile: str, credentials: Credentials) -> Path:
    path = credentials_file()
    set_keys(
        path,
        profile,
        {
            "aws_access_key_id": credentials.access_key_id,
            "aws_secret_access_key": credentials.secret_access_key,
            "aws_session_token": credentials.session_token,
        },
    )
    return path


# ---------------------------------------------------------------- the credential_process cache


def cache_file(choices: Sequence[str | None], *, profile: str) -> Path:
    """Where credential-process keeps the credentials of these choices (IdP, app, role): another
    app or role of the same profile never gets them."""
    key = hashlib.sha256(json.dumps([profile, *choices]).encode("utf-8")).hexdigest()[:32]
    return config_file().parent / "idp-cache" / f"{key}.json"


def read_cache(path: Path, clock: Clock) -> dict[str, Any] | None:
    """The cached credential_process answer, unless it is missing, unreadable or ends soon."""
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        expires = datetime.datetime.fromisoformat(str(cached["Expiration"]).replace("Z", "+00:00"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(cached, dict) or expires.timestamp() - clock.now() < CACHE_MARGIN_SECONDS:
        return None
    return cached


def write_cache(path: Path, answer: Mapping[str, Any]) -> None:
    _replace(path, json.dumps(answer))


def device_file(idp_origin: str) -> Path:
    """Where the IdP's device cookie for this terminal is kept (mode 0600: a trusted device's
    cookie waives the second factor, so it is as private as the credentials)."""
    key = hashlib.sha256(idp_origin.encode("utf-8")).hexdigest()[:32]
    return config_file().parent / "idp-cache" / f"device-{key}.json"


def read_device_cookies(path: Path) -> list[dict[str, Any]]:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [item for item in saved if isinstance(item, dict)] if isinstance(saved, list) else []


def write_device_cookies(path: Path, cookies: Sequence[Mapping[str, Any]]) -> None:
    if cookies:
        _replace(path, json.dumps(list(cookies)))
