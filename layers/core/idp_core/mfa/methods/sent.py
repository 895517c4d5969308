"""What SMS and e-mail have in common: a code the user asks for with "Send code", sent by a
channel and bound to the session's login transaction (S7, S9)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from idp_core.mfa import codes
from idp_core.mfa.methods.base import Channel, CodeCheck, Enrolment, MethodKind, Tier
from idp_core.mfa.methods.digits import digits_only

if TYPE_CHECKING:
    from idp_core.models import Factor


@dataclass(frozen=True)
class SentCodeMethod:
    kind: MethodKind
    label: str
    channel: Channel
    tier: Tier = Tier.RESTRICTED
    prompt: str = ""  # The page says where the code was sent instead.
    inputmode: str = "numeric"
    max_code_chars: int = 64

    @property
    def enrolment(self) -> Enrolment:
        return Enrolment(path=f"/me/mfa/{self.kind}/new", post=False)

    def clean_code(self, code: str) -> str:
        return digits_only(code)

    def is_usable(self, factor: Factor) -> bool:
        return True

    def verify(self, factor: Factor, code: str, check: CodeCheck) -> None:
        codes.verify_code(check.transaction_hash, factor, code, key=check.code_key, clock=check.clock)

    def removed(self, factor: Factor) -> bool:
        return False
