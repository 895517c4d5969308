"""Typed settings, read once from the environment at cold start.

Logic never reads ``os.environ``; it receives a ``Settings`` object. A missing required
setting fails at start-up with the name of the variable, never later with a ``KeyError``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed."""


# Environment variable names shared by the CDK constructs (infra/) and the functions.
ENV_SIGNING_KEY_ID = "SIGNING_KEY_ID"
ENV_PUBLIC_BASE_URL = "PUBLIC_BASE_URL"
ENV_COOKIE_SECURE = "COOKIE_SECURE"
ENV_SESSION_IDLE_SECONDS = "SESSION_IDLE_SECONDS"
ENV_SESSION_MAX_SECONDS = "SESSION_MAX_SECONDS"
ENV_LOCKOUT_MAX_FAILURES = "LOCKOUT_MAX_FAILURES"
ENV_LOCKOUT_FAILURE_FACTOR = "LOCKOUT_FAILURE_FACTOR"
ENV_LOCKOUT_WAIT_INCREMENT_SECONDS = "LOCKOUT_WAIT_INCREMENT_SECONDS"
ENV_LOCKOUT_MAX_WAIT_SECONDS = "LOCKOUT_MAX_WAIT_SECONDS"
ENV_LOCKOUT_FAILURE_RESET_SECONDS = "LOCKOUT_FAILURE_RESET_SECONDS"


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


@dataclass(frozen=True)
class SessionPolicy:
    """S15: idle timeout and absolute lifetime of a signed-in session."""

    idle_seconds: int = 30 * 60
    max_seconds: int = 12 * 60 * 60


DAY = 24 * 3600


@dataclass(frozen=True)
class LockoutPolicy:
    """S1: brute-force protection in the Keycloak model.

    Every ``failure_factor`` consecutive failures lock the account for
    ``wait_increment_seconds * failures // failure_factor`` (at most ``max_wait_seconds``);
    at ``max_failures`` the account is locked until an admin unlocks it. Failures older
    than ``failure_reset_seconds`` no longer count. ``failure_factor = 0`` turns the
    temporary lockout off and leaves only the hard lock.
    """

    max_failures: int = 100
    failure_factor: int = 10
    wait_increment_seconds: int = 60
    max_wait_seconds: int = 15 * 60
    failure_reset_seconds: int = 12 * 60 * 60


@dataclass(frozen=True)
class Settings:
    """Settings of the sso function (and of the CLI and local stack that share its core)."""

    tables: Tables
    signing_key_id: str
    # Set when the API sits behind a custom domain; otherwise URLs are derived from the
    # API Gateway request context (https://{domainName}/{stage}).
    public_base_url: str | None = None
    # Only the local http stack turns this off (S13): it drops Secure and the __Host- prefix.
    cookie_secure: bool = True
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base = env.get(ENV_PUBLIC_BASE_URL, "").strip().rstrip("/") or None
        if base is not None and not base.startswith(("https://", "http://")):
            raise ConfigurationError(f"{ENV_PUBLIC_BASE_URL} must be an absolute http(s) URL, got {base!r}")
        return cls(
            tables=Tables.from_env(env),
            signing_key_id=_required(env, ENV_SIGNING_KEY_ID),
            public_base_url=base,
            cookie_secure=_bool(env, ENV_COOKIE_SECURE, default=True),
            sessions=SessionPolicy(
                idle_seconds=_int(env, ENV_SESSION_IDLE_SECONDS, SessionPolicy.idle_seconds, 60, 24 * 3600),
                max_seconds=_int(env, ENV_SESSION_MAX_SECONDS, SessionPolicy.max_seconds, 300, 7 * 24 * 3600),
            ),
            lockout=LockoutPolicy(
                max_failures=_int(env, ENV_LOCKOUT_MAX_FAILURES, LockoutPolicy.max_failures, 1, 100),
                failure_factor=_int(env, ENV_LOCKOUT_FAILURE_FACTOR, LockoutPolicy.failure_factor, 0, 100),
                wait_increment_seconds=_int(
                    env, ENV_LOCKOUT_WAIT_INCREMENT_SECONDS, LockoutPolicy.wait_increment_seconds, 1, DAY
                ),
                max_wait_seconds=_int(
                    env, ENV_LOCKOUT_MAX_WAIT_SECONDS, LockoutPolicy.max_wait_seconds, 1, 7 * DAY
                ),
                failure_reset_seconds=_int(
                    env, ENV_LOCKOUT_FAILURE_RESET_SECONDS, LockoutPolicy.failure_reset_seconds, 60, 30 * DAY
                ),
            ),
        )

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
            ENV_LOCKOUT_FAILURE_RESET_SECONDS: str(self.lockout.failure_reset_seconds),
        }
        if self.public_base_url:
            env[ENV_PUBLIC_BASE_URL] = self.public_base_url
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
