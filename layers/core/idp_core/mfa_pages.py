"""Page plumbing shared by the otp function's routers (and the sso function's answer to the
challenge): which sessions each group of pages accepts (S14), the challenge page, and
sending and checking codes from a request. Where the browser continues afterwards is
``idp_core.web.target``.

The MFA pages are the only pages a half-way session reaches: ``/mfa`` accepts a session
that owes a second factor (and a complete one that steps up), ``/me/mfa`` accepts a
session that owes enrolment (and a complete one). Everything else is refused by
``guard.require_session``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp_core import aws, guard, lockout, sessions, web
from idp_core.adaptive import devices
from idp_core.adaptive.policies import policy_of
from idp_core.apps import get_app
from idp_core.concurrency import together
from idp_core.config import WithLockout
from idp_core.errors import BadRequest
from idp_core.mfa import factors, flow, policy
from idp_core.mfa import methods as registry
from idp_core.mfa.delivery import Senders
from idp_core.mfa.methods.base import MAX_ANSWER_CHARS
from idp_core.models import FACTORS, App, Device, Factor, Session, User, get_items
from idp_core.names import MAX_USERNAME_CHARS
from idp_core.web.target import TARGET_FIELDS, Target

MAX_FACTOR_ID_CHARS = 64
MAX_APP_NAME_CHARS = 63

CHALLENGE_TEMPLATE = "mfa/challenge.html"
CODE_FIELD = {"code": web.Field("Verification code", MAX_ANSWER_CHARS)}
FACTOR_FIELD = {"factor": web.Field("Method", MAX_FACTOR_ID_CHARS)}

TRUST_FIELD = {"trust": web.Field("Trust this device", 1, required=False)}


def send_code(
    req: web.WebRequest, signed_in: web.SignedIn, factor: Any, purpose: str, mfa_settings: Any = None
) -> None:
    """``flow.send_code`` for the signed-in user, from this request (S7, S9)."""
    flow.send_code(
        flow.Challenge(signed_in.user, signed_in.session, signed_in.token, purpose),
        factor,
        req.scope(signed_in.user.username),
        mfa_settings=mfa_settings or policy.load_settings(),
        senders=Senders(sns=aws.client("sns"), ses=aws.client("ses")),
    )


def verify_code(
    req: web.WebRequest,
    signed_in: web.SignedIn,
    factor: Any,
    code: str,
    purpose: str,
    methods: Any,
    reservation: Any = None,
) -> flow.Verified:
    """``flow.verify_second_factor`` for the signed-in user, accepting only ``methods`` (S28);
    returns what the caller writes with its own changes."""
    challenge = flow.Challenge(
        signed_in.user, signed_in.session, signed_in.token, purpose, methods=methods, base_url=req.base_url
    )
    return flow.verify_second_factor(
        challenge,
        factor,
        code,
        req.scope(signed_in.user.username),
        kms=aws.client("kms"),
        reservation=reservation,
    )


def challenge_methods(signed_in: web.SignedIn, app: Any | None) -> tuple[str, ...]:
    """The methods the challenge for ``app`` (None: a step-up without one) accepts (S28)."""
    settings = policy.load_settings()
    if app is not None:
        return flow.accepted_methods(app, settings)
    return flow.accepted_methods(
        None, settings, factors.list_factors(signed_in.user.username, active_only=True)
    )


def challenge_session(req: web.WebRequest, target: Target) -> web.SignedIn:
    """The session for /mfa: one that owes a second factor, or a complete one stepping up."""
    signed_in = guard.session_in_progress(req)
    if signed_in is None:
        raise web.LoginRequired(target.query() if req.method == "GET" else {})
    if flow.OWES_ENROLMENT in sessions.pending_factors(signed_in.session):
        raise web.RedirectRequired("Set up a second factor first.", "/me/mfa", target.query())
    return signed_in


def setup_session(req: web.WebRequest, target: Target | None = None) -> web.SignedIn:
    """The session for /me/mfa: a complete one, or one that owes enrolment (S11, S14)."""
    signed_in = guard.session_in_progress(req)
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
    # Where a security key's options for this challenge come from.
    webauthn_options: str


SIGN_IN_CHALLENGE = ChallengePaths(
    page="/mfa",
    send="/mfa/send",
    verify="/mfa/verify",
    purpose="signin",
    heading="Confirm it is you",
    webauthn_options="/mfa/webauthn/options",
)
TEST_CHALLENGE = ChallengePaths(
    page="/me/mfa/test",
    send="/me/mfa/test/send",
    verify="/me/mfa/test/verify",
    purpose="test",
    heading="Test 2FA",
    webauthn_options="/me/mfa/test/webauthn/options",
)


def factor_choice(factor: Any) -> dict[str, Any]:
    """What a page shows of a factor: never a secret, a phone or address only masked."""
    method = registry.get(factor.kind) if registry.is_known(factor.kind) else None
    channel = method.channel if method is not None else None
    destination = channel.destination(factor) if channel is not None else None
    return {
        "id": factor.factor_id,
        "label": factor.label,
        "kind": factor.kind,
        "kind_label": registry.label(factor.kind),
        "destination": channel.mask(destination) if channel is not None and destination else None,
        "sends_code": channel is not None,
        # What the challenge asks for, and the keyboard it offers.
        "prompt": method.prompt if method is not None else "",
        "inputmode": method.inputmode if method is not None else "numeric",
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
        "challenge_user": signed_in.user.username,
        # A user who lost their device: backup codes are the way back in, when they have some.
        "backup_choice": next(
            (factor_choice(factor) for factor in choices if factor.kind == registry.MethodKind.BACKUP), None
        ),
    }


_NOT_A_CHOICE = "That method is not one you can use here; choose one from the list."


def sign_in_challenge(
    signed_in: web.SignedIn, target: Target, factor_id: str | None, *, sent: bool = False
) -> tuple[dict[str, Any], Any | None]:
    """The sign-in challenge page's context, and the factor it shows (None: the user has none):
    the user's factors the app accepts, a sentence naming the app's methods, and "Trust this
    device" when the app's adaptive policy allows it."""
    app = get_app(target.app) if target.app else None
    choices, methods = flow.usable_factors(signed_in.user.username, app, policy.load_settings())
    methods_text = ", ".join(flow.methods_label(methods)) if app else None
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


# The challenge page also posts whose session it is and the method of the chosen factor, so
# that its answer reads the session, the factor, the app and the device in one request while
# the attempt is reserved (which reads the user): one round trip (issue 13). Both are only
# hints: the session must be that user's, and a factor of another method is a wrong code.
USER_FIELD = "user"
METHOD_FIELD = "method"
ANSWER_FIELDS = {
    **CODE_FIELD,
    **FACTOR_FIELD,
    **TARGET_FIELDS,
    **TRUST_FIELD,
    USER_FIELD: web.Field("User", MAX_USERNAME_CHARS, required=False),
    METHOD_FIELD: web.Field("Method", 16, required=False),
}


@dataclass(frozen=True)
class ChallengeAnswer:
    """A code posted to the challenge, with what was read for it: the session, where to
    continue, the form, the chosen factor, the target's app, the device behind the device
    cookie, and the attempt reserved on the user (None: ``verify_code`` reserves it)."""

    signed_in: web.SignedIn
    target: Target
    form: dict[str, str]
    factor: Any
    app: Any
    device: Any
    reservation: Any = None


def read_challenge_answer(req: web.WebRequest) -> ChallengeAnswer:
    """A code posted to the challenge. The form passes its CSRF check (S16) before anything is
    written, and an unknown or unconfirmed factor is ``BadRequest`` (S11) with the reserved
    attempt given back."""
    values = web.posted_values(req)
    hint, method = values.get(USER_FIELD, ""), values.get(METHOD_FIELD, "")
    key = sessions.session_key(web.session_token(req))
    if key and 0 < len(hint) <= MAX_USERNAME_CHARS and method in FACTORS:
        return _answer_in_one_round_trip(req, values, key, hint, method)
    return _answer_in_two_round_trips(req)


def _wanted(req: web.WebRequest, username: str, factor_id: str, app_name: str | None) -> list[Any]:
    wanted: list[Any] = [(Factor, (username, factor_id[:MAX_FACTOR_ID_CHARS]), True)]
    if app_name:
        wanted.append((App, (app_name[:MAX_APP_NAME_CHARS],), False))
        device_key = devices.item_key(username, guard.device_token(req))
        if device_key:
            wanted.append((Device, device_key, False))
    return wanted


def _answer_in_one_round_trip(
    req: web.WebRequest, values: dict[str, str], key: str, username: str, method: str
) -> ChallengeAnswer:
    app_name = values.get("app") or None
    (session, *items), reservation = together(
        lambda: get_items(
            (Session, (key,), True), *_wanted(req, username, values.get("factor", ""), app_name)
        ),
        lambda: lockout.try_reserve(
            User, (username,), method, policy=WithLockout.of(req.settings).lockout, clock=req.clock
        ),
    )
    try:
        session = sessions.live(session, policy=req.settings.sessions, clock=req.clock)
        if session is None or session.username != username:
            raise web.LoginRequired({})
        form = web.read_form(req, session, ANSWER_FIELDS)
        if flow.OWES_ENROLMENT in sessions.pending_factors(session):  # S14
            raise web.RedirectRequired("Set up a second factor first.", "/me/mfa", {})
        user = _reserved_user(req, reservation)
        factor, app, device = [*items, None, None][:3]
        _ensure_usable(factor)
    except Exception:
        if reservation.found is not None:
            reservation.found[1].not_evaluated()  # Nothing was judged.
        raise
    signed_in = web.SignedIn(token=str(web.session_token(req)), session=session, user=user)
    return ChallengeAnswer(signed_in, Target.read(form), form, factor, app, device, reservation)


def _reserved_user(req: web.WebRequest, reservation: Any) -> Any:
    """The user the reservation read; a disabled or deleted user's session ends here, as
    ``guard.session_in_progress`` ends it. A locked user's refusal is ``verify_code``'s to tell."""
    refused = reservation.refused
    record = refused.record if refused is not None else reservation.found[0] if reservation.found else None
    if record is None or record.disabled:
        sessions.end_session(str(web.session_token(req)))
        raise web.LoginRequired({})
    return record


def _ensure_usable(factor: Any) -> None:
    if factor is None or not factors.is_usable(factor):
        raise BadRequest(_NOT_A_CHOICE)


def _answer_in_two_round_trips(req: web.WebRequest) -> ChallengeAnswer:
    """The session first, then the user, the factor, the app and the device in one request (a
    page posted without the hints)."""
    posted: dict[str, Any] = {}

    def factor_app_and_device(session: Any) -> list[tuple[Any, tuple[str, ...], bool]]:
        if flow.OWES_ENROLMENT in sessions.pending_factors(session):  # S14 before anything else
            raise web.RedirectRequired("Set up a second factor first.", "/me/mfa", {})
        form = web.read_form(req, session, ANSWER_FIELDS)
        posted.update(form=form, target=Target.read(form))
        return _wanted(req, session.username, form["factor"], posted["target"].app)

    if guard.session_in_progress(req, also=factor_app_and_device) is None:
        raise web.LoginRequired({})
    signed_in = challenge_session(req, Target())
    factor, app, device = [*signed_in.items, None, None][:3]
    _ensure_usable(factor)
    return ChallengeAnswer(signed_in, posted["target"], posted["form"], factor, app, device)


def pick_factor(choices: list[Any], factor_id: str | None) -> Any | None:
    """The factor the user chose among ``choices`` (default first), or the first one."""
    if factor_id:
        for factor in choices:
            if factor.factor_id == factor_id:
                return factor
        raise BadRequest(_NOT_A_CHOICE)
    return choices[0] if choices else None
