"""Backup codes: one set per user, each code good once; made and spent by
``idp_core.mfa.backup_codes``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from idp_core.mfa import backup_codes
from idp_core.mfa.methods.base import CodeCheck, Enrolment, MethodKind, Tier

if TYPE_CHECKING:
    from idp_core.models import Factor


class BackupCodes:
    kind = MethodKind.BACKUP
    label = "Backup codes"
    tier = Tier.AUTHENTICATOR
    enrolment = Enrolment(path="/me/mfa/backup", post=True)
    channel = None
    prompt = "Enter one of your unused backup codes. Each code works once."
    inputmode = "text"
    max_code_chars = 64

    def clean_code(self, code: str) -> str:
        # Their alphabet is checked where they are spent.
        return code

    def is_usable(self, factor: Factor) -> bool:
        # A spent set proves nothing.
        return bool(factor.code_hashes)

    def verify(self, factor: Factor, code: str, check: CodeCheck) -> None:
        backup_codes.verify(factor.username, code, clock=check.clock)

    def removed(self, factor: Factor) -> bool:
        return False


METHOD: BackupCodes = BackupCodes()
