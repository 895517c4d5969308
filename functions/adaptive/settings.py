"""The adaptive function's settings: its tables and what every function reads, nothing more.

It signs nothing, seals nothing, sends nothing and checks no credential, so it has no key,
no messaging and no lockout policy (an admin's unlock needs none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from idp_core.config import FunctionSettings


@dataclass(frozen=True, kw_only=True)
class AdaptiveSettings(FunctionSettings):
    TABLES: ClassVar[tuple[str, ...]] = (
        "users",
        "devices",
        "sessions",
        "settings",
        "apps",
        "audit",
        "factors",
        "directories",
    )
