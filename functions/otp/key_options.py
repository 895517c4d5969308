"""What the script of a security key's challenge gives the browser (S24), for the sign-in
challenge and the test on /me/mfa. Apart from the route tables, which import it when a
security key is asked, so that the WebAuthn ceremonies load with the first security-key
challenge, not with the otp function's cold start, which most often serves the challenge page.
"""

from __future__ import annotations

from typing import Any

from idp_core import web
from idp_core.errors import BadRequest
from idp_core.mfa import flow, policy, webauthn
from idp_core.mfa import methods as registry


def webauthn_options(req: web.WebRequest, signed_in: web.SignedIn, factor: Any, purpose: str) -> Any:
    """The JSON response with a security key's options for this challenge: a new challenge
    bound to the session, the purpose and the key (S24), as the answer's check expects."""
    if factor is None or factor.kind != registry.MethodKind.WEBAUTHN:
        raise BadRequest("That method is not a security key.")
    ceremony = webauthn.Ceremony(
        webauthn.RelyingParty.of(req.base_url),
        flow.transaction_id_hash(signed_in.session.id_hash, purpose, factor.factor_id),
        clock=req.clock,
    )
    options = webauthn.authentication_options(
        [factor],
        ceremony,
        username=signed_in.user.username,
        purpose=purpose,
        user_verification=policy.load_settings().webauthn_user_verification,
    )
    return web.json_response(options)
