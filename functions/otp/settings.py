"""The otp function's settings: the pieces its role matches.

It seals new TOTP and token seeds (the data key), sends codes by SMS and e-mail (messaging)
and checks codes in the lockout counters the password shares (the lockout policy). It never
signs. Groups, devices and the directories' entries are out of its reach; it reads the
directories for the admin pages' guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from idp_core.config import WithDataKey, WithLockout, WithMessaging


@dataclass(frozen=True, kw_only=True)
class OtpSettings(WithDataKey, WithLockout, WithMessaging):
    TABLES: ClassVar[tuple[str, ...]] = (
        "users",
        "apps",
        "sessions",
        "settings",
        "audit",
        "factors",
        "tokens",
        "transactions",
        "rate_limits",
        "directories",
        "credentials",
    )
