"""Page plumbing shared by the otp function's routers (and the sso function's answer to the
challenge): which sessions each group of pages accepts (S14), the challenge page, and
sending and checking codes from a request. Where the browser continues afterwards is
``idp_core.web.target``.

The MFA pages are the only pages a half-way session reaches: ``/mfa`` accepts a session
that owes a second factor (and a complete one that steps up), ``/me/mfa`` accepts a
session that owes enrolment (and a complete one). Everything else is refused by
``web.require_session``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp_core import aws, sessions, web
from idp_core.errors import BadRequest
from idp_core.mfa import flow
from idp_core.web.target import TARGET_FIELDS, Target

MAX_FACTOR_ID_CHARS = 64

CHALLENGE_TEMPLATE = "mfa/challenge.html"
CODE_FIELD = {"code": web.Field("Verification code", flow.MAX_CODE_CHARS)}
FACTOR_FIELD = {"factor": web.Field("Method", MAX_FACTOR_ID_CHARS)}

TRUST_FIELD = {"trust": web.Field("Trust this device", 1, required=False)}


def send_code(
    req: web.WebRequest, signed_in: web.SignedIn, factor: Any, purpose: str, mfa_settings: Any = None
) -> None:
    """``flow.send_code`` for the signed-in user, from this request (S7, S9)."""
    from idp_core.mfa import policy

    flow.send_code(
        signed_in.session,
        signed_in.user,
        factor,
        session_token=signed_in.token,
        purpose=purpose,
        mfa_settings=mfa_settings or policy.load_settings(),
        messaging=req.settings.messaging,
        source_ip=req.source_ip,
        sns=aws.client("sns"),
        ses=aws.client("ses"),
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )


def verify_code(
    req: web.WebRequest, signed_in: web.SignedIn, factor: Any, code: str, purpose: str, methods: Any
) -> flow.Verified:
    """``flow.verify_second_factor`` for the signed-in user, accepting only ``methods`` (S28);
    returns what the caller writes with its own changes."""
    return flow.verify_second_factor(
        signed_in.user,
        factor,
        code,
        methods=methods,
        session=signed_in.session,
        session_token=signed_in.token,
        purpose=purpose,
        lockout_policy=req.settings.lockout,
        kms=aws.client("kms"),
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )


def challenge_methods(signed_in: web.SignedIn, app: Any | None) -> tuple[str, ...]:
    """The methods the challenge for ``app`` (None: a step-up without one) accepts (S28)."""
    from idp_core.mfa import factors, policy

    settings = policy.load_settings()
    if app is not None:
        return flow.accepted_methods(app, settings)
    return flow.accepted_methods(
        None, settings, factors.list_factors(signed_in.user.username, active_only=True)
    )


def challenge_session(req: web.WebRequest, target: Target) -> web.SignedIn:
    """The session for /mfa: one that owes a second factor, or a complete one stepping up."""
    signed_in = web.session_in_progress(req)
    if signed_in is None:
        raise web.LoginRequired(target.query() if req.method == "GET" else {})
    if flow.OWES_ENROLMENT in sessions.pending_factors(signed_in.session):
        raise web.RedirectRequired("Set up a second factor first.", "/me/mfa", target.query())
    return signed_in


def setup_session(req: web.WebRequest, target: Target | None = None) -> web.SignedIn:
    """The session for /me/mfa: a complete one, or one that owes enrolment (S11, S14)."""
    signed_in = web.session_in_progress(req)
    query = (target or Target()).query()
    if signed_in is None:
        if req.method == "GET" and target is None:
            query = {"next": req.path}
        raise web.LoginRequired(query if req.method == "GET" else {})
    owed = sessions.pending_factors(signed_in.session)
    if owed and flow.OWES_ENROLMENT not in owed:
        raise web.RedirectRequired("Finish signing in first.", "/mfa", query)
    return signed_in


def is_enrolling(signed_in: web.SignedIn) -> bool:
    return flow.OWES_ENROLMENT in sessions.pending_factors(signed_in.session)


def page_context(signed_in: web.SignedIn) -> dict[str, Any]:
    """What the layout needs on an MFA page, also for a half-way session (no nav, but a CSRF token)."""
    return {"csrf_token": signed_in.csrf_token, "half_way": not sessions.is_complete(signed_in.session)}


# ---------------------------------------------------------------- the challenge page


@dataclass(frozen=True)
class ChallengePaths:
    """The challenge page serves sign-in/step-up (/mfa) and "Test 2FA" (/me/mfa/test)."""

    page: str
    send: str
    verify: str
    purpose: str
    heading: str


SIGN_IN_CHALLENGE = ChallengePaths(
    page="/mfa", send="/mfa/send", verify="/mfa/verify", purpose="signin", heading="Confirm it is you"
)
TEST_CHALLENGE = ChallengePaths(
    page="/me/mfa/test",
    send="/me/mfa/test/send",
    verify="/me/mfa/test/verify",
    purpose="test",
    heading="Test 2FA",
)


def factor_choice(factor: Any) -> dict[str, Any]:
    """What a page shows of a factor: never a secret, a phone or address only masked."""
    from idp_core.mfa import METHOD_LABELS, phone

    destination = None
    if factor.kind == "sms" and factor.phone:
        destination = phone.mask_phone(factor.phone)
    elif factor.kind == "email" and factor.email:
        destination = phone.mask_email(factor.email)
    return {
        "id": factor.factor_id,
        "label": factor.label,
        "kind": factor.kind,
        "kind_label": METHOD_LABELS.get(factor.kind, factor.kind),
        "destination": destination,
        "sends_code": factor.kind in flow.SENT_METHODS,
    }


def challenge_context(
    signed_in: web.SignedIn,
    choices: list[Any],
    selected: Any | None,
    target: Target,
    paths: ChallengePaths,
    *,
    sent: bool = False,
    methods_text: str | None = None,
    trust_days: int = 0,
) -> dict[str, Any]:
    """``trust_days``: offer "Trust this device" for that many days (the app's adaptive policy)."""
    return {
        **page_context(signed_in),
        "paths": paths,
        "factors": [factor_choice(factor) for factor in choices],
        "selected": factor_choice(selected) if selected is not None else None,
        "target": target.fields(),
        "sent": sent,
        "methods_text": methods_text,
        "trust_days": trust_days,
    }


_NOT_A_CHOICE = "That method is not one you can use here; choose one from the list."


def sign_in_challenge(
    signed_in: web.SignedIn, target: Target, factor_id: str | None, *, sent: bool = False
) -> tuple[dict[str, Any], Any | None]:
    """The sign-in challenge page's context, and the factor it shows (None: the user has none):
    the user's factors the app accepts, a sentence naming the app's methods, and "Trust this
    device" when the app's adaptive policy allows it."""
    from idp_core.adaptive.enforce import policy_of
    from idp_core.apps import get_app
    from idp_core.mfa import METHOD_LABELS, policy

    app = get_app(target.app) if target.app else None
    choices, methods = flow.usable_factors(signed_in.user.username, app, policy.load_settings())
    methods_text = ", ".join(METHOD_LABELS.get(method, method) for method in methods) if app else None
    selected = pick_factor(choices, factor_id)
    adaptive = policy_of(app)
    context = challenge_context(
        signed_in,
        choices,
        selected,
        target,
        SIGN_IN_CHALLENGE,
        sent=sent,
        methods_text=methods_text,
        trust_days=adaptive.trust_days if adaptive is not None else 0,
    )
    return context, selected


def challenge_error_page(
    signed_in: web.SignedIn, target: Target, factor_id: str | None
) -> tuple[str, dict[str, Any]]:
    """The challenge shown again after a refused code, with the posted factor selected if it is
    one the page offers (a factor it does not offer was refused like a wrong code, S28)."""
    try:
        context = sign_in_challenge(signed_in, target, factor_id)[0]
    except BadRequest:
        context = sign_in_challenge(signed_in, target, None)[0]
    return CHALLENGE_TEMPLATE, context


def read_challenge_form(
    req: web.WebRequest, fields: dict[str, web.Field]
) -> tuple[web.SignedIn, Target, dict[str, str]]:
    """A post to the sign-in challenge: its session, where to continue, and the form."""
    signed_in = challenge_session(req, Target())
    form = web.read_form(req, signed_in.session, {**fields, **FACTOR_FIELD, **TARGET_FIELDS})
    return signed_in, Target.read(form), form


def read_challenge_answer(
    req: web.WebRequest,
) -> tuple[web.SignedIn, Target, dict[str, str], Any, Any, Any]:
    """A code posted to the challenge: the session, the target, the form, the chosen factor,
    the target's app and the user's device behind the device cookie. The user, the factor,
    the app and the device are read in one request, once the session is known and the form
    has passed its CSRF check (S16); an unknown or unconfirmed factor is ``BadRequest``
    before anything is written (S11)."""
    from idp_core.adaptive import devices
    from idp_core.mfa import factors
    from idp_core.models import App, Device, Factor

    posted: dict[str, Any] = {}

    def factor_app_and_device(session: Any) -> list[tuple[Any, tuple[str, ...], bool]]:
        if flow.OWES_ENROLMENT in sessions.pending_factors(session):  # S14 before anything else
            raise web.RedirectRequired("Set up a second factor first.", "/me/mfa", {})
        form = web.read_form(req, session, {**CODE_FIELD, **FACTOR_FIELD, **TARGET_FIELDS, **TRUST_FIELD})
        posted.update(form=form, target=Target.read(form))
        wanted: list[tuple[Any, tuple[str, ...], bool]] = [(Factor, (session.username, form["factor"]), True)]
        app_name = posted["target"].app
        device_key = devices.item_key(session.username, web.device_token(req)) if app_name else None
        if app_name:
            wanted.append((App, (app_name,), False))
        if device_key:
            wanted.append((Device, device_key, False))
        return wanted

    if web.session_in_progress(req, also=factor_app_and_device) is None:
        raise web.LoginRequired({})
    signed_in = challenge_session(req, Target())
    factor, app, device = [*signed_in.items, None, None][:3]
    if factor is None or not factors.is_usable(factor):
        raise BadRequest(_NOT_A_CHOICE)
    return signed_in, posted["target"], posted["form"], factor, app, device


def pick_factor(choices: list[Any], factor_id: str | None) -> Any | None:
    """The factor the user chose among ``choices`` (default first), or the first one."""
    if factor_id:
        for factor in choices:
            if factor.factor_id == factor_id:
                return factor
        raise BadRequest(_NOT_A_CHOICE)
    return choices[0] if choices else None
