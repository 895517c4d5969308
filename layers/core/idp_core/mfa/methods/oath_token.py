"""Hardware OATH tokens (TOTP or HOTP), assigned by an administrator; the token store and
the checks are in ``idp_core.mfa.tokens``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from idp_core.mfa import factors, tokens
from idp_core.mfa.methods.base import CodeCheck, MethodKind, Tier
from idp_core.mfa.methods.digits import ShownCode

if TYPE_CHECKING:
    from idp_core.models import Factor


class HardwareToken(ShownCode):
    kind = MethodKind.TOKEN
    label = "Hardware token"
    tier = Tier.AUTHENTICATOR
    enrolment = None  # `idp token assign`: the administrator holds the imported secrets.
    prompt = "Press the button on your hardware token and enter the code it shows."

    def verify(self, factor: Factor, code: str, check: CodeCheck) -> None:
        tokens.verify(factor, code, kms=check.kms, clock=check.clock, confirming=check.confirming)

    def removed(self, factor: Factor) -> bool:
        # The token becomes free to assign again with the HOTP counter the factor reached, so
        # no code its user already typed works for its next owner.
        if not factor.token_serial:
            return False
        return factors.release_token(factor.token_serial, factor.username, factor.counter)


METHOD: HardwareToken = HardwareToken()
