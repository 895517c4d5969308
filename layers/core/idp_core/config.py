"""Typed settings, read once from the environment at cold start.

Logic never reads ``os.environ``; it receives a settings object. A missing required
setting fails at start-up with the name of the variable, never later with a ``KeyError``.

Each function's settings are composed of pieces that match what its role may do:
``FunctionSettings`` (the tables it may touch, its address, cookies and session policy) and
``WithSigning``, ``WithLockout``, ``WithMessaging`` (both: ``WithSignIn``), ``WithDataKey``; the
function reads exactly their variables and infra gives it exactly those. ``Settings`` is the whole
deployment's, for the CLI, the local stack and the tests; a function takes its pieces of it
(``FunctionSettings.narrow``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed."""


# Environment variable names shared by the CDK constructs (infra/) and the functions.
ENV_SIGNING_KEY_ID = "SIGNING_KEY_ID"
# The deployment's second signing key, which a rotation switches to (idp_core.saml.signing_keys).
ENV_NEXT_SIGNING_KEY_ID = "NEXT_SIGNING_KEY_ID"
ENV_PUBLIC_BASE_URL = "PUBLIC_BASE_URL"
ENV_COOKIE_SECURE = "COOKIE_SECURE"
ENV_SESSION_IDLE_SECONDS = "SESSION_IDLE_SECONDS"
ENV_SESSION_MAX_SECONDS = "SESSION_MAX_SECONDS"
ENV_LOCKOUT_MAX_FAILURES = "LOCKOUT_MAX_FAILURES"
ENV_LOCKOUT_FAILURE_FACTOR = "LOCKOUT_FAILURE_FACTOR"
ENV_LOCKOUT_WAIT_INCREMENT_SECONDS = "LOCKOUT_WAIT_INCREMENT_SECONDS"
ENV_LOCKOUT_MAX_WAIT_SECONDS = "LOCKOUT_MAX_WAIT_SECONDS"
ENV_DATA_KEY_ID = "DATA_KEY_ID"
ENV_SMS_SENDER_ID = "SMS_SENDER_ID"
ENV_SMS_ORIGINATION_NUMBER = "SMS_ORIGINATION_NUMBER"
ENV_EMAIL_SENDER = "EMAIL_SENDER"
ENV_SMS_ALLOWED_COUNTRIES = "SMS_ALLOWED_COUNTRIES"


@dataclass(frozen=True)
class Tables:
    """One DynamoDB table per concern; each is named by the variable ``<CONCERN>_TABLE``."""

    users: str
    groups: str
    apps: str
    sessions: str
    settings: str
    audit: str
    factors: str
    tokens: str
    transactions: str
    rate_limits: str
    devices: str
    directories: str
    directory_entries: str
    credentials: str

    @staticmethod
    def env_name(concern: str) -> str:
        return f"{concern.upper()}_TABLE"

    @staticmethod
    def output_name(concern: str) -> str:
        """The CloudFormation output that names the table, e.g. ``RateLimitsTable``."""
        return "".join(part.title() for part in concern.split("_")) + "Table"

    @classmethod
    def concerns(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Tables:
        return cls(**{concern: _required(env, cls.env_name(concern)) for concern in cls.concerns()})

    @classmethod
    def with_prefix(cls, prefix: str) -> Tables:
        """Table names used by the local stack and the tests."""
        return cls(**{concern: f"{prefix}{concern.replace('_', '-')}" for concern in cls.concerns()})

    def to_env(self) -> dict[str, str]:
        return {self.env_name(concern): getattr(self, concern) for concern in self.concerns()}

    def by_concern(self) -> dict[str, str]:
        return {concern: getattr(self, concern) for concern in self.concerns()}


class TableSet(Protocol):
    """Table names by concern, as ``idp_core.models.bind_tables`` binds them."""

    def by_concern(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class GrantedTables:
    """The tables one function may touch (the ones its role grants), by concern. The models
    of other tables stay unbound, so a use of one fails at once, as IAM would refuse it."""

    names: Mapping[str, str]

    def by_concern(self) -> Mapping[str, str]:
        return self.names

    @classmethod
    def from_env(cls, env: Mapping[str, str], concerns: tuple[str, ...]) -> GrantedTables:
        unknown = sorted(set(concerns) - set(Tables.concerns()))
        if unknown:
            raise ConfigurationError(f"unknown table concern(s) {unknown}")
        return cls({concern: _required(env, Tables.env_name(concern)) for concern in concerns})


@dataclass(frozen=True)
class SessionPolicy:
    """S15: idle timeout and absolute lifetime of a signed-in session."""

    idle_seconds: int = 30 * 60
    max_seconds: int = 12 * 60 * 60


DAY = 24 * 3600


@dataclass(frozen=True)
class LockoutPolicy:
    """S1: brute-force protection in the Keycloak model.

    Every ``failure_factor`` consecutive failures of one factor lock the account for
    ``wait_increment_seconds * failures // failure_factor`` (at most ``max_wait_seconds``);
    at ``max_failures`` failures over all factors the account is locked until an admin
    unlocks it. Failures are never forgotten with time, only by a success of their factor
    or an unlock (S29). ``failure_factor = 0`` turns the temporary lockout off and leaves
    only the hard lock.
    """

    max_failures: int = 100
    failure_factor: int = 10
    wait_increment_seconds: int = 60
    max_wait_seconds: int = 15 * 60


# An alphanumeric SMS sender ID: 1-11 letters or digits with at least one letter, no spaces.
_SENDER_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9]{1,11}")
# An origination identity: an E.164 phone number, or the ID or ARN of an AWS End User
# Messaging phone number or pool.
_ORIGINATION = re.compile(r"\+[1-9][0-9]{6,14}|(phone|pool)-[0-9a-f]{32}|arn:aws[a-z-]*:sms-voice:\S+")
_ADDRESS = re.compile(r"[^@\s<>]+@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)")
_COUNTRY = re.compile(r"[A-Z]{2}")
# How each messaging setting is named in the environment of the functions.
MESSAGING_ENV_NAMES = {
    "sms_sender_id": ENV_SMS_SENDER_ID,
    "sms_origination_number": ENV_SMS_ORIGINATION_NUMBER,
    "email_sender": ENV_EMAIL_SENDER,
    "sms_countries": ENV_SMS_ALLOWED_COUNTRIES,
}


@dataclass(frozen=True)
class MessagingConfig:
    """Who SMS and e-mail codes and notices come from, and where SMS may go; all optional.

    ``sms_sender_id`` and ``sms_origination_number`` are passed to SNS when set;
    ``email_sender`` is the SES-verified From address, e.g. ``Sign-in <idp@example.com>``.
    ``sms_countries`` is the deployment's outer bound for SMS destinations (S9): when set,
    a text goes only to a country both it and the admin's MFA settings allow, so the
    console can narrow what the account owner deployed but never widen it.
    """

    sms_sender_id: str | None = None
    sms_origination_number: str | None = None
    email_sender: str | None = None
    sms_countries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, values: Mapping[str, str | None], names: Mapping[str, str]) -> MessagingConfig:
        """Check raw text values (keys as ``MESSAGING_ENV_NAMES``); errors quote ``names[key]``.

        The CDK app checks its context with the same rules the functions apply at start-up,
        so a value that synthesises is one the functions accept.
        """
        clean = {key: (values.get(key) or "").strip() or None for key in MESSAGING_ENV_NAMES}
        sender_id, origination, sender = (
            clean["sms_sender_id"],
            clean["sms_origination_number"],
            clean["email_sender"],
        )
        if sender_id is not None and not _SENDER_ID.fullmatch(sender_id):
            raise ConfigurationError(
                f"{names['sms_sender_id']} must be 1-11 letters or digits with at least one letter "
                f"(no spaces), got {sender_id!r}"
            )
        if origination is not None and not _ORIGINATION.fullmatch(origination):
            raise ConfigurationError(
                f"{names['sms_origination_number']} must be an E.164 number (+15555550100) or the ID or ARN "
                f"of an origination phone number or pool, got {origination!r}"
            )
        config = cls(sms_sender_id=sender_id, sms_origination_number=origination, email_sender=sender)
        if sender is not None and not _ADDRESS.fullmatch(config.email_address or ""):
            raise ConfigurationError(
                f"{names['email_sender']} must be an e-mail address, optionally as 'Name <address>', "
                f"got {sender!r}"
            )
        # cdk.json may hold a JSON list; the environment and -c give comma-separated text.
        items = (item.strip(" '\"[]").upper() for item in (clean["sms_countries"] or "").split(","))
        countries = tuple(dict.fromkeys(item for item in items if item))
        bad = [code for code in countries if not _COUNTRY.fullmatch(code)]
        if bad:
            raise ConfigurationError(
                f"{names['sms_countries']} must be two-letter country codes such as US,GB; got {bad[0]!r}"
            )
        return dataclasses.replace(config, sms_countries=countries)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MessagingConfig:
        return cls.parse(
            {key: env.get(name) for key, name in MESSAGING_ENV_NAMES.items()}, MESSAGING_ENV_NAMES
        )

    @property
    def email_address(self) -> str | None:
        """The bare address inside ``email_sender``."""
        if self.email_sender is None:
            return None
        match = re.search(r"<([^<>]+)>\s*$", self.email_sender)
        return (match.group(1) if match else self.email_sender).strip()

    @property
    def email_domain(self) -> str | None:
        address = self.email_address
        return address.rpartition("@")[2] if address else None

    def to_env(self) -> dict[str, str]:
        values = {
            ENV_SMS_SENDER_ID: self.sms_sender_id,
            ENV_SMS_ORIGINATION_NUMBER: self.sms_origination_number,
            ENV_EMAIL_SENDER: self.email_sender,
            ENV_SMS_ALLOWED_COUNTRIES: ",".join(self.sms_countries),
        }
        return {name: value for name, value in values.items() if value}


# Tunables with secure defaults: an operator may set them; infra sets none of them.
SESSION_VARIABLES = (ENV_SESSION_IDLE_SECONDS, ENV_SESSION_MAX_SECONDS)
LOCKOUT_VARIABLES = (
    ENV_LOCKOUT_MAX_FAILURES,
    ENV_LOCKOUT_FAILURE_FACTOR,
    ENV_LOCKOUT_WAIT_INCREMENT_SECONDS,
    ENV_LOCKOUT_MAX_WAIT_SECONDS,
)


@dataclass(frozen=True, kw_only=True)
class FunctionSettings:
    """What every function reads: the tables it may touch (``TABLES``, those its role grants),
    the public address, whether cookies are Secure, and the session policy (every page checks
    its session). A function's settings add pieces (``WithSigning``, ``WithLockout``,
    ``WithMessaging``, ``WithDataKey``) by inheriting them; each piece names the variables it
    reads (``VARIABLES``, of which ``REQUIRED`` must be set) and reads them (``_read_piece``)."""

    TABLES: ClassVar[tuple[str, ...]] = ()
    VARIABLES: ClassVar[tuple[str, ...]] = (ENV_PUBLIC_BASE_URL, ENV_COOKIE_SECURE, *SESSION_VARIABLES)
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    tables: TableSet
    # Set when the API sits behind a custom domain; otherwise URLs are derived from the
    # API Gateway request context (https://{domainName}/{stage}).
    public_base_url: str | None = None
    # Only the local http stack turns this off (S13): it drops Secure and the __Host- prefix.
    cookie_secure: bool = True
    sessions: SessionPolicy = field(default_factory=SessionPolicy)

    @staticmethod
    def _read_piece(env: Mapping[str, str]) -> dict[str, Any]:
        base = env.get(ENV_PUBLIC_BASE_URL, "").strip().rstrip("/") or None
        if base is not None and not base.startswith(("https://", "http://")):
            raise ConfigurationError(f"{ENV_PUBLIC_BASE_URL} must be an absolute http(s) URL, got {base!r}")
        return {
            "public_base_url": base,
            "cookie_secure": _bool(env, ENV_COOKIE_SECURE, default=True),
            "sessions": SessionPolicy(
                idle_seconds=_int(env, ENV_SESSION_IDLE_SECONDS, SessionPolicy.idle_seconds, 60, 24 * 3600),
                max_seconds=_int(env, ENV_SESSION_MAX_SECONDS, SessionPolicy.max_seconds, 300, 7 * 24 * 3600),
            ),
        }

    @classmethod
    def _read_tables(cls, env: Mapping[str, str]) -> TableSet:
        return GrantedTables.from_env(env, cls.TABLES)

    @classmethod
    def _pieces(cls) -> Iterator[type]:
        return (piece for piece in reversed(cls.__mro__) if issubclass(piece, FunctionSettings))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        env = os.environ if env is None else env
        values: dict[str, Any] = {"tables": cls._read_tables(env)}
        for piece in cls._pieces():
            read = vars(piece).get("_read_piece")
            if read is not None:
                values.update(read.__func__(env))
        return cls(**values)

    @classmethod
    def variables(cls) -> frozenset[str]:
        """Every variable these settings read."""
        own = {name for piece in cls._pieces() for name in vars(piece).get("VARIABLES", ())}
        return frozenset(own | {Tables.env_name(concern) for concern in cls.TABLES})

    @classmethod
    def required_variables(cls) -> frozenset[str]:
        """The variables without which these settings refuse to load."""
        own = {name for piece in cls._pieces() for name in vars(piece).get("REQUIRED", ())}
        return frozenset(own | {Tables.env_name(concern) for concern in cls.TABLES})

    @classmethod
    def narrow(cls, settings: FunctionSettings) -> Self:
        """These settings taken from ``settings``: the deployment's ``Settings`` (the local
        stack's and the tests') pass through the loader, which keeps only these pieces."""
        if isinstance(settings, cls):
            return settings
        if isinstance(settings, Settings):
            return cls.from_env(settings.to_env())
        raise ConfigurationError(f"{cls.__name__} cannot be taken from {type(settings).__name__}")

    @classmethod
    def of(cls, settings: FunctionSettings) -> Self:
        """``settings`` as this piece; a function that reaches code needing a piece it was not
        given is a deployment fault, said by name rather than as an AttributeError."""
        if not isinstance(settings, cls):
            raise ConfigurationError(f"the {type(settings).__name__} have no {cls.__name__} piece")
        return settings


@dataclass(frozen=True, kw_only=True)
class WithSigning(FunctionSettings):
    """The asymmetric KMS key that signs SAML assertions (S32): the sso function only."""

    VARIABLES: ClassVar[tuple[str, ...]] = (ENV_SIGNING_KEY_ID, ENV_NEXT_SIGNING_KEY_ID)
    REQUIRED: ClassVar[tuple[str, ...]] = (ENV_SIGNING_KEY_ID,)

    signing_key_id: str
    # Optional: a stack deployed before rotations existed has one key, and signs on with it.
    next_signing_key_id: str | None = None

    @property
    def signing_key_ids(self) -> tuple[str, str | None]:
        """The deployment's signing keys, of which a key rotation chooses the one in use."""
        return (self.signing_key_id, self.next_signing_key_id)

    @staticmethod
    def _read_piece(env: Mapping[str, str]) -> dict[str, Any]:
        return {
            "signing_key_id": _required(env, ENV_SIGNING_KEY_ID),
            "next_signing_key_id": env.get(ENV_NEXT_SIGNING_KEY_ID, "").strip() or None,
        }


@dataclass(frozen=True, kw_only=True)
class WithLockout(FunctionSettings):
    """The lockout policy (S1), for the functions that check a password or a second factor."""

    VARIABLES: ClassVar[tuple[str, ...]] = LOCKOUT_VARIABLES

    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)

    @staticmethod
    def _read_piece(env: Mapping[str, str]) -> dict[str, Any]:
        return {
            "lockout": LockoutPolicy(
                max_failures=_int(env, ENV_LOCKOUT_MAX_FAILURES, LockoutPolicy.max_failures, 1, 100),
                failure_factor=_int(env, ENV_LOCKOUT_FAILURE_FACTOR, LockoutPolicy.failure_factor, 0, 100),
                wait_increment_seconds=_int(
                    env, ENV_LOCKOUT_WAIT_INCREMENT_SECONDS, LockoutPolicy.wait_increment_seconds, 1, DAY
                ),
                max_wait_seconds=_int(
                    env, ENV_LOCKOUT_MAX_WAIT_SECONDS, LockoutPolicy.max_wait_seconds, 1, 7 * DAY
                ),
            )
        }


@dataclass(frozen=True, kw_only=True)
class WithMessaging(FunctionSettings):
    """Who SMS and e-mails come from, for the functions that send them."""

    VARIABLES: ClassVar[tuple[str, ...]] = tuple(MESSAGING_ENV_NAMES.values())

    messaging: MessagingConfig = field(default_factory=MessagingConfig)

    @staticmethod
    def _read_piece(env: Mapping[str, str]) -> dict[str, Any]:
        return {"messaging": MessagingConfig.from_env(env)}


@dataclass(frozen=True, kw_only=True)
class WithSignIn(WithLockout, WithMessaging):
    """What checking a password needs: the lockout policy, and messaging for the notices a
    sign-in or a password change sends."""


@dataclass(frozen=True, kw_only=True)
class WithDataKey(FunctionSettings):
    """The symmetric KMS key that seals TOTP and token seeds and bind passwords (S6), for the
    functions that seal them: required, so a function without it fails at start-up rather
    than on a user's first enrolment."""

    VARIABLES: ClassVar[tuple[str, ...]] = (ENV_DATA_KEY_ID,)
    REQUIRED: ClassVar[tuple[str, ...]] = (ENV_DATA_KEY_ID,)

    data_key_id: str

    @staticmethod
    def _read_piece(env: Mapping[str, str]) -> dict[str, Any]:
        return {"data_key_id": _required(env, ENV_DATA_KEY_ID)}


@dataclass(frozen=True, kw_only=True)
class Settings(WithSigning, WithSignIn):
    """The whole deployment's settings: every table, and the data key when it is given. The
    CLI and the local stack use them; each function takes its own pieces of them."""

    TABLES: ClassVar[tuple[str, ...]] = Tables.concerns()
    VARIABLES: ClassVar[tuple[str, ...]] = (ENV_DATA_KEY_ID,)

    tables: Tables
    # Only the code that handles second factors and directories needs it, so it is optional
    # here and required on use.
    data_key_id: str | None = None

    def require_data_key(self) -> str:
        """The data key id, or a ConfigurationError naming the variable when it is not set."""
        if not self.data_key_id:
            raise ConfigurationError(f"the setting {ENV_DATA_KEY_ID} is required but not set")
        return self.data_key_id

    @staticmethod
    def _read_piece(env: Mapping[str, str]) -> dict[str, Any]:
        return {"data_key_id": env.get(ENV_DATA_KEY_ID, "").strip() or None}

    @classmethod
    def _read_tables(cls, env: Mapping[str, str]) -> Tables:
        return Tables.from_env(env)

    def to_env(self) -> dict[str, str]:
        """The environment that ``from_env`` reads back; used by the local stack."""
        env = {
            **self.tables.to_env(),
            ENV_SIGNING_KEY_ID: self.signing_key_id,
            ENV_COOKIE_SECURE: "true" if self.cookie_secure else "false",
            ENV_SESSION_IDLE_SECONDS: str(self.sessions.idle_seconds),
            ENV_SESSION_MAX_SECONDS: str(self.sessions.max_seconds),
            ENV_LOCKOUT_MAX_FAILURES: str(self.lockout.max_failures),
            ENV_LOCKOUT_FAILURE_FACTOR: str(self.lockout.failure_factor),
            ENV_LOCKOUT_WAIT_INCREMENT_SECONDS: str(self.lockout.wait_increment_seconds),
            ENV_LOCKOUT_MAX_WAIT_SECONDS: str(self.lockout.max_wait_seconds),
            **self.messaging.to_env(),
        }
        if self.public_base_url:
            env[ENV_PUBLIC_BASE_URL] = self.public_base_url
        if self.data_key_id:
            env[ENV_DATA_KEY_ID] = self.data_key_id
        if self.next_signing_key_id:
            env[ENV_NEXT_SIGNING_KEY_ID] = self.next_signing_key_id
        return env


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"the setting {name} is required but not set")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from exc
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, got {value}")
    return value
