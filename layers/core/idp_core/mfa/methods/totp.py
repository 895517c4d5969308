"""Authenticator apps (RFC 6238 TOTP); the secrets and their checks are in ``idp_core.mfa.totp``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from idp_core.mfa import totp
from idp_core.mfa.methods.base import CodeCheck, Enrolment, MethodKind, Tier
from idp_core.mfa.methods.digits import ShownCode

if TYPE_CHECKING:
    from idp_core.models import Factor


class AuthenticatorApp(ShownCode):
    kind = MethodKind.TOTP
    label = "Authenticator app"
    tier = Tier.AUTHENTICATOR
    enrolment = Enrolment(path="/me/mfa/totp", post=True, confirm_template="me_mfa_totp.html")
    prompt = "Open your authenticator app and enter the 6-digit code it shows for this account."

    def verify(self, factor: Factor, code: str, check: CodeCheck) -> None:
        totp.verify(factor, code, kms=check.kms, clock=check.clock, confirming=check.confirming)


METHOD: AuthenticatorApp = AuthenticatorApp()
