"""The sso function's settings: the pieces its role matches.

It signs assertions (the signing key), checks passwords and second factors (the lockout
policy) and sends the adaptive policies' e-mail alerts (messaging). It never seals a secret,
so it has no data key: it only unseals, which KMS does from the sealed text alone. Its
tables are every one: the rate counters limit the password reset links it e-mails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from idp_core.config import WithSignIn, WithSigning


@dataclass(frozen=True, kw_only=True)
class SsoSettings(WithSigning, WithSignIn):
    TABLES: ClassVar[tuple[str, ...]] = (
        "users",
        "groups",
        "apps",
        "sessions",
        "settings",
        "audit",
        "transactions",
        "factors",
        "tokens",
        "devices",
        "directories",
        "directory_entries",
        "credentials",
        "rate_limits",
    )
