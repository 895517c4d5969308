"""Security keys and passkeys (WebAuthn): the only phishing-resistant method, since a key
answers only for this site's origin. The ceremonies and checks are in ``idp_core.mfa.webauthn``;
the "code" a challenge posts is the browser's answer as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from idp_core.mfa import WrongCode, policy, webauthn
from idp_core.mfa.methods.base import MAX_ANSWER_CHARS, CodeCheck, Enrolment, MethodKind, Tier

if TYPE_CHECKING:
    from idp_core.models import Factor


class SecurityKey:
    kind = MethodKind.WEBAUTHN
    label = "Security key or passkey"
    tier = Tier.PHISHING_RESISTANT
    enrolment = Enrolment(path="/me/mfa/webauthn/new", post=False)
    channel = None
    prompt = 'Press "Use security key" and follow your browser: touch your key or confirm your passkey.'
    inputmode = "none"
    max_code_chars = MAX_ANSWER_CHARS

    def clean_code(self, code: str) -> str:
        webauthn.parse_answer(code, registration=False)
        return code

    def is_usable(self, factor: Factor) -> bool:
        return bool(factor.credential_id and factor.public_key)

    def verify(self, factor: Factor, code: str, check: CodeCheck) -> None:
        if check.base_url is None:
            raise WrongCode()  # Without the site's address no origin can be checked.
        required = policy.load_settings().webauthn_user_verification == "required"
        ceremony = webauthn.Ceremony(
            webauthn.RelyingParty.of(check.base_url), check.transaction_hash, clock=check.clock
        )
        webauthn.verify_assertion(
            factor,
            webauthn.parse_answer(code, registration=False),
            ceremony,
            require_user_verification=required,
        )

    def removed(self, factor: Factor) -> bool:
        return webauthn.remove_credential(factor)


METHOD: SecurityKey = SecurityKey()
