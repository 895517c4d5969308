"""The provisioning function's settings: the pieces its role matches.

It seals directories' bind passwords (the data key) and sends welcome e-mails (messaging).
It signs nothing and checks no credential; apps, tokens, transactions, rate counters and
devices are out of its reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from idp_core.config import WithDataKey, WithMessaging


@dataclass(frozen=True, kw_only=True)
class ProvisioningSettings(WithDataKey, WithMessaging):
    TABLES: ClassVar[tuple[str, ...]] = (
        "directories",
        "users",
        "groups",
        "sessions",
        "audit",
        "directory_entries",
        "factors",
        "settings",
    )
