"""The second-factor challenge at sign-in and step-up: /mfa, /mfa/send, /mfa/verify.

A session that owes a second factor (``pending:mfa``) reaches only these pages and the
enrolment pages (S14); a complete session comes here to step up before an app that
requires MFA (``?app=``), a factor change (S10) or the admin console (``?next=``). Only the
user's active factors of the methods the app accepts are offered, the default first.
A right code gives a new session id with the method recorded (S14); a wrong one counts
in the lockout counters shared with the password (S1-S2).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from idp_core import sessions, web
from idp_core.errors import IdpError, NotFound
from idp_core.mfa import METHOD_LABELS, flow, pages
from idp_core.mfa.pages import SIGN_IN_CHALLENGE, Target

router = APIGatewayRouter()

TEMPLATE = "mfa/challenge.html"
CODE_FIELD = {"code": web.Field("Verification code", flow.MAX_CODE_CHARS)}
FACTOR_FIELD = {"factor": web.Field("Method", pages.MAX_FACTOR_ID_CHARS)}


def _choices(signed_in: web.SignedIn, target: Target) -> tuple[list[Any], str | None]:
    """The user's factors this challenge accepts, and a sentence naming the app's methods."""
    from idp_core.apps import get_app
    from idp_core.mfa import policy

    app = get_app(target.app) if target.app else None
    methods = flow.accepted_methods(app, policy.load_settings() if app is not None else None)
    text = ", ".join(METHOD_LABELS.get(method, method) for method in methods) if app is not None else None
    return flow.usable_factors(signed_in.user.username, methods), text


def _context(
    signed_in: web.SignedIn, target: Target, factor_id: str | None, *, sent: bool = False
) -> tuple[dict[str, Any], Any | None]:
    choices, methods_text = _choices(signed_in, target)
    selected = pages.pick_factor(choices, factor_id)
    context = pages.challenge_context(
        signed_in, choices, selected, target, SIGN_IN_CHALLENGE, sent=sent, methods_text=methods_text
    )
    return context, selected


@router.get("/mfa")
def challenge_page() -> Response[str]:
    req = web.request()
    target = Target.read(req.query)
    signed_in = pages.challenge_session(req, target)
    factor_id = req.query_param("factor", max_chars=pages.MAX_FACTOR_ID_CHARS, label="Method")
    context, _ = _context(signed_in, target, factor_id, sent=req.query.get("sent") == "1")
    return web.render(req, TEMPLATE, **context)


def _posted(fields: dict[str, web.Field]) -> tuple[web.WebRequest, web.SignedIn, Target, dict[str, str]]:
    req = web.request()
    signed_in = pages.challenge_session(req, Target())
    form = web.read_form(req, signed_in.session, {**fields, **FACTOR_FIELD, **pages.TARGET_FIELDS})
    return req, signed_in, Target.read(form), form


@router.post("/mfa/send")
def send_code() -> Response[str]:

    req, signed_in, target, form = _posted({})
    context, factor = _context(signed_in, target, form["factor"])
    req.error_page = (TEMPLATE, context)
    if factor is None:
        raise NotFound("There is no method to send a code to.")
    pages.send_code(req, signed_in, factor, SIGN_IN_CHALLENGE.purpose)
    return web.redirect(req, "/mfa", query={**target.query(), "factor": factor.factor_id, "sent": "1"})


@router.post("/mfa/verify")
def verify_code() -> Response[str]:
    req, signed_in, target, form = _posted(CODE_FIELD)
    # The chosen factor is read by its key; the page's list of choices (app, factors) is read
    # only to show the page again after a refusal. Whether the method suits the app is the
    # launch's decision, which every launch makes again.
    factor = pages.own_factor(signed_in, form["factor"])
    try:
        verified = pages.verify_code(req, signed_in, factor, form["code"], SIGN_IN_CHALLENGE.purpose)
    except IdpError:
        req.error_page = (TEMPLATE, _context(signed_in, target, form["factor"])[0])
        raise
    issued = sessions.complete_second_factor(
        signed_in.token, signed_in.session, method=factor.kind, events=[verified], clock=req.clock
    )
    return target.redirect(req, [web.session_cookie(req, issued.token)])
