"""The second-factor challenge at sign-in and step-up: the page (/mfa) and sending codes
(/mfa/send). The answer (/mfa/verify) goes to the sso function, which can sign the
assertion the sign-in was for (``idp_core.routing``).

A session that owes a second factor (``pending:mfa``) reaches only these pages and the
enrolment pages (S14); a complete session comes here to step up before an app that
requires MFA (``?app=``), a factor change (S10) or the admin console (``?next=``). Only the
user's active factors of the methods the app accepts are offered, the default first.
A right code gives a new session id with the method recorded (S14); a wrong one counts
in the lockout counters shared with the password (S1-S2).
"""

from __future__ import annotations

from idp_core import mfa_pages as pages
from idp_core import web
from idp_core.errors import NotFound
from idp_core.mfa_pages import SIGN_IN_CHALLENGE, Target
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()


@router.get("/mfa")
def challenge_page() -> Response[str]:
    req = web.request()
    target = Target.read(req.query)
    signed_in = pages.challenge_session(req, target)
    factor_id = req.query_param("factor", max_chars=pages.MAX_FACTOR_ID_CHARS, label="Method")
    context, _ = pages.sign_in_challenge(signed_in, target, factor_id, sent=req.query.get("sent") == "1")
    web.allow_webauthn(req)
    return web.render(req, pages.CHALLENGE_TEMPLATE, **context)


@router.post("/mfa/send")
def send_code() -> Response[str]:
    req = web.request()
    signed_in, target, form = pages.read_challenge_form(req, {})
    context, factor = pages.sign_in_challenge(signed_in, target, form["factor"])
    req.error_page = (pages.CHALLENGE_TEMPLATE, context)
    if factor is None:
        raise NotFound("There is no method to send a code to.")
    pages.send_code(req, signed_in, factor, SIGN_IN_CHALLENGE.purpose)
    return web.redirect(req, "/mfa", query={**target.query(), "factor": factor.factor_id, "sent": "1"})


@router.post("/mfa/webauthn/options")
def security_key_options() -> Response[str]:
    """What the challenge page's script gives the browser to ask the chosen security key."""
    from functions.otp.key_options import webauthn_options

    req = web.request()
    signed_in, target, form = pages.read_challenge_form(req, {})
    _, factor = pages.sign_in_challenge(signed_in, target, form["factor"])
    return webauthn_options(req, signed_in, factor, SIGN_IN_CHALLENGE.purpose)
