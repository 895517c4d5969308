"""End-user 2FA set-up: /me/mfa (list, add, confirm, test, rename, make default, remove).

A complete session and a session that owes enrolment (``pending:enrol``, S11) reach these
pages; a session that owes a second factor is sent to /mfa first. Every change of a factor,
phone or e-mail needs a second factor proven in the last 10 minutes when the user already
has an active one (S10: otherwise the browser goes through /mfa?next=/me/mfa), and sends the
user a notice by e-mail (S8). A new factor is active only after its first valid code (S11).

Activating the first factor of a user who had none counts as the session's second factor:
the session gets a new id (S14) and continues to where the sign-in was going.
"""

from __future__ import annotations

from typing import Any

from functions.otp.settings import OtpSettings
from idp_core import aws, guard, sessions, web
from idp_core import mfa_pages as pages
from idp_core.clock import readable_utc
from idp_core.errors import BadRequest, NotFound
from idp_core.lockout import Attempt
from idp_core.mfa import flow, policy
from idp_core.mfa import methods as registry
from idp_core.mfa.methods import MethodKind
from idp_core.mfa.methods.base import MAX_ANSWER_CHARS
from idp_core.mfa_pages import TEST_CHALLENGE, Target
from idp_core.models import AuditEvent, Factor
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

MAX_LABEL_CHARS = 64
MAX_PHONE_FIELD_CHARS = 64
MAX_EMAIL_CHARS = 254
ISSUER = "Identity"
# Notices are chosen by a fixed key, so a crafted link cannot make the page say anything else.
NOTICES = {
    "added": "The method was added and is ready to use.",
    "renamed": "The method was renamed.",
    "default": "The default method was changed.",
    "removed": "The method was removed. Your other sessions were signed out.",
    "tested": "The test worked: this method confirms it is you.",
    "sent": "We sent a new code.",
}
LABEL_FIELDS = {"label": web.Field("Name", MAX_LABEL_CHARS)}
PHONE_FIELDS = {"phone": web.Field("Phone number", MAX_PHONE_FIELD_CHARS)}
EMAIL_FIELDS = {"email": web.Field("E-mail address", MAX_EMAIL_CHARS)}


# ---------------------------------------------------------------- helpers


def _session(target: Target | None = None) -> tuple[web.WebRequest, web.SignedIn]:
    req = web.request()
    return req, pages.setup_session(req, target)


def _form(
    req: web.WebRequest, signed_in: web.SignedIn, fields: dict[str, web.Field]
) -> tuple[dict[str, str], Target]:
    form = web.read_form(req, signed_in.session, {**fields, **pages.TARGET_FIELDS})
    return form, Target.read(form)


def _require_change_allowed(req: web.WebRequest, signed_in: web.SignedIn) -> None:
    """S10, S28: a change needs a recent second factor of the user's strongest tier when the
    user already has one (a first factor may always be added: that is enrolment)."""
    guard.require_fresh_strongest_factor(req, signed_in, next_page="/me/mfa")


def _allowed(method: str, settings: policy.MfaSettings | None = None) -> None:
    if method not in (settings or policy.load_settings()).allowed_methods:
        raise BadRequest(f"{registry.label(method)} is not offered here; choose another method.")


def _factor(signed_in: web.SignedIn, factor_id: str) -> Factor:
    from idp_core.mfa import factors

    if len(factor_id) > pages.MAX_FACTOR_ID_CHARS:
        raise BadRequest("That method does not exist.")
    try:
        return factors.get_factor(signed_in.user.username, factor_id)
    except NotFound as exc:
        raise NotFound("That method does not exist (any more).") from exc


def _notify(req: web.WebRequest, signed_in: web.SignedIn, subject: str, what: str) -> None:
    """S8: tell the user by e-mail about a change to their factors (never a code or a secret)."""
    from idp_core import mail

    mail.notify(
        signed_in.user,
        subject,
        mail.change_text(what),
        ses=aws.client("ses"),
        messaging=OtpSettings.of(req.settings).messaging,
        clock=req.clock,
        context=req.audit_context(signed_in.user.username),
    )


def _done(req: web.WebRequest, notice: str) -> Response[str]:
    return web.redirect(req, "/me/mfa", query={"notice": notice})


def _finish_enrolment(
    req: web.WebRequest,
    signed_in: web.SignedIn,
    factor: Factor,
    target: Target,
    *,
    first: bool,
    events: list[AuditEvent],
    releases: list[Attempt],
) -> Response[str]:
    """After a factor became active: continue the sign-in, or back to the list.

    ``events`` (the proof's success event) and ``releases`` (its lockout attempt) are written
    with the new session, or alone.
    """
    if not first:
        sessions.write_together(events=events, releases=releases)
        return _done(req, "added")
    # The user had no active factor: this first proof is the session's second factor (S14).
    issued = sessions.complete_second_factor(
        signed_in.token,
        signed_in.session,
        method=factor.kind,
        events=events,
        releases=releases,
        clock=req.clock,
    )
    cookies = [web.session_cookie(req, issued.token)]
    if pages.is_enrolling(signed_in) or target.app or target.next:
        return target.redirect(req, cookies)
    return web.redirect(req, "/me/mfa", query={"notice": "added"}, cookies=cookies)


def _had_no_active_factor(signed_in: web.SignedIn, new_factor_id: str) -> bool:
    from idp_core.mfa import factors

    return not any(
        factor.factor_id != new_factor_id
        for factor in factors.list_factors(signed_in.user.username, active_only=True)
    )


# ---------------------------------------------------------------- the list


@router.get("/me/mfa")
def setup_page() -> Response[str]:
    from idp_core.mfa import factors

    req = web.request()
    target = Target.read(req.query)
    signed_in = pages.setup_session(req, target)
    settings = policy.load_settings()
    rows = []
    for factor in factors.list_factors(signed_in.user.username):
        rows.append(
            {
                **pages.factor_choice(factor),
                "active": factor.status == "active",
                "is_default": bool(factor.is_default),
                "last_used": readable_utc(factor.last_used_at),
            }
        )
    rows.sort(key=lambda row: (not row["is_default"], not row["active"], row["label"]))
    # The methods users set up themselves (an administrator assigns hardware tokens).
    methods = [
        {"method": kind, "label": method.label, "path": method.enrolment.path, "post": method.enrolment.post}
        for kind in registry.kinds()
        if (method := registry.get(kind)).enrolment is not None and kind in settings.allowed_methods
    ]
    return web.render(
        req,
        "me_mfa.html",
        **pages.page_context(signed_in),
        factors=rows,
        methods=methods,
        target=target.fields(),
        enrolling=pages.is_enrolling(signed_in),
        notice=NOTICES.get(req.query.get("notice", "")),
    )


# ---------------------------------------------------------------- authenticator app


def _totp_page(
    req: web.WebRequest, signed_in: web.SignedIn, factor: Factor, target: Target, **extra: Any
) -> Any:
    """The set-up page of a pending authenticator app: QR code, secret as text, first code."""
    from idp_core.mfa import totp

    secret_base32, uri, qr_svg = totp.enrolment_view(
        factor, kms=aws.client("kms"), issuer=ISSUER, account=signed_in.user.display_username
    )
    return {
        **pages.page_context(signed_in),
        "factor": pages.factor_choice(factor),
        "secret": secret_base32,
        "otpauth_uri": uri,
        "qr_svg": qr_svg,
        "target": target.fields(),
        **extra,
    }


@router.post("/me/mfa/totp")
def start_totp() -> Response[str]:
    from idp_core.mfa import totp

    req, signed_in = _session()
    _, target = _form(req, signed_in, {})
    _require_change_allowed(req, signed_in)
    _allowed(MethodKind.TOTP)
    enrolment = totp.start_enrolment(
        signed_in.user.username,
        registry.label(MethodKind.TOTP),
        kms=aws.client("kms"),
        key_id=OtpSettings.of(req.settings).data_key_id,
        issuer=ISSUER,
        clock=req.clock,
    )
    # Post/Redirect/Get: the set-up page can be reloaded without creating another factor.
    return web.redirect(req, f"/me/mfa/factors/{enrolment.factor.factor_id}/confirm", query=target.query())


# ---------------------------------------------------------------- SMS and e-mail


@router.get("/me/mfa/<kind>/new")
def new_contact_page(kind: str) -> Response[str]:
    """The form for a phone (``sms``) or an e-mail address (``email``) to send codes to."""
    if registry.channel(kind) is None:
        raise NotFound("There is no such page.")
    req = web.request()
    target = Target.read(req.query)
    signed_in = pages.setup_session(req, target)
    _allowed(kind)
    return web.render(
        req,
        "me_mfa_contact.html",
        **pages.page_context(signed_in),
        kind=kind,
        # The account's own address or contact number is the likely one.
        value=(signed_in.user.email if kind == MethodKind.EMAIL else signed_in.user.phone) or "",
        target=target.fields(),
    )


def _start_contact(kind: str, fields: dict[str, web.Field]) -> Response[str]:
    channel = registry.channel(kind)
    if channel is None:
        raise NotFound("There is no such page.")
    req, signed_in = _session()
    context = {**pages.page_context(signed_in), "kind": kind, "value": "", "target": {}}
    req.error_page = ("me_mfa_contact.html", context)
    form, target = _form(req, signed_in, fields)
    field = channel.destination_attribute
    context.update(value=form[field], target=target.fields())
    _require_change_allowed(req, signed_in)
    settings = policy.load_settings()
    _allowed(kind, settings)
    destination = channel.normalize(form[field], settings, OtpSettings.of(req.settings).messaging)
    factor = flow.start_contact_factor(signed_in.user.username, kind, destination, clock=req.clock)
    pages.send_code(req, signed_in, factor, "enrol", settings)
    return web.redirect(req, f"/me/mfa/factors/{factor.factor_id}/confirm", query=target.query())


@router.post("/me/mfa/sms")
def start_sms() -> Response[str]:
    return _start_contact(MethodKind.SMS, PHONE_FIELDS)


@router.post("/me/mfa/email")
def start_email() -> Response[str]:
    return _start_contact(MethodKind.EMAIL, EMAIL_FIELDS)


# ---------------------------------------------------------------- security keys and passkeys

WEBAUTHN_TEMPLATE = "me_mfa_webauthn.html"
# The registration's challenge is bound to the session and to this placeholder in place of
# a factor id (real ones are 16 characters), so it never answers a sign-in's challenge.
REGISTRATION_KEY = "new-security-key"
KEY_FIELDS = {
    "label": web.Field("Name", MAX_LABEL_CHARS),
    "credential": web.Field("Security key", MAX_ANSWER_CHARS),
}


def _registration(req: web.WebRequest, signed_in: web.SignedIn) -> Any:
    """The registration ceremony of this session: its challenge is bound to the session."""
    from idp_core.mfa import webauthn

    return webauthn.Ceremony(
        webauthn.RelyingParty.of(req.base_url),
        flow.transaction_id_hash(signed_in.session.id_hash, "enrol", REGISTRATION_KEY),
        clock=req.clock,
        context=req.audit_context(signed_in.user.username),
    )


def _key_page_context(signed_in: web.SignedIn, target: Target, label: str = "") -> dict[str, Any]:
    return {**pages.page_context(signed_in), "target": target.fields(), "label": label}


@router.get("/me/mfa/webauthn/new")
def new_security_key_page() -> Response[str]:
    req = web.request()
    target = Target.read(req.query)
    signed_in = pages.setup_session(req, target)
    _allowed(MethodKind.WEBAUTHN)
    web.allow_webauthn(req)
    return web.render(req, WEBAUTHN_TEMPLATE, **_key_page_context(signed_in, target))


@router.post("/me/mfa/webauthn/options")
def security_key_registration_options() -> Response[str]:
    from idp_core.mfa import webauthn

    req, signed_in = _session()
    _form(req, signed_in, {})
    _require_change_allowed(req, signed_in)
    settings = policy.load_settings()
    _allowed(MethodKind.WEBAUTHN, settings)
    options = webauthn.registration_options(signed_in.user, _registration(req, signed_in), settings=settings)
    return web.json_response(options)


@router.post("/me/mfa/webauthn")
def register_security_key() -> Response[str]:
    from idp_core import audit
    from idp_core.mfa import webauthn

    req, signed_in = _session()
    web.allow_webauthn(req)
    req.error_page = (WEBAUTHN_TEMPLATE, _key_page_context(signed_in, Target()))
    form, target = _form(req, signed_in, KEY_FIELDS)
    req.error_page = (WEBAUTHN_TEMPLATE, _key_page_context(signed_in, target, form["label"]))
    _require_change_allowed(req, signed_in)
    settings = policy.load_settings()
    _allowed(MethodKind.WEBAUTHN, settings)
    first = _had_no_active_factor(signed_in, "")
    factor = webauthn.register(
        signed_in.user, form["credential"], form["label"], _registration(req, signed_in), settings=settings
    )
    _notify(
        req,
        signed_in,
        "A sign-in method was added to your account",
        f"{registry.label(factor.kind)} ({factor.label}) was added to your account "
        "as a way to confirm it is you",
    )
    # The key's answer proved it: as the user's first factor it completes the session (S14).
    event = audit.new_event(
        audit.EventType.MFA_SUCCESS,
        "success",
        context=req.audit_context(signed_in.user.username),
        subject=signed_in.user.username,
        details={"factor": factor.kind, "factor_id": factor.factor_id, "purpose": "enrol"},
        clock=req.clock,
    )
    return _finish_enrolment(req, signed_in, factor, target, first=first, events=[event], releases=[])


@router.post("/me/mfa/test/webauthn/options")
def test_security_key_options() -> Response[str]:
    from functions.otp.key_options import webauthn_options

    req = web.request()
    signed_in = _complete_session(req)
    form = web.read_form(req, signed_in.session, pages.FACTOR_FIELD)
    _, factor = _test_context(signed_in, form["factor"])
    return webauthn_options(req, signed_in, factor, TEST_CHALLENGE.purpose)


# ---------------------------------------------------------------- confirming a new factor


def _confirm_context(
    req: web.WebRequest, signed_in: web.SignedIn, factor: Factor, target: Target, **extra: Any
) -> dict[str, Any]:
    if factor.status != "pending":
        raise BadRequest("This method is already set up.")
    # The authenticator app's page shows its secret; the others ask for the code they sent.
    if factor.kind == MethodKind.TOTP:
        return dict(_totp_page(req, signed_in, factor, target, **extra))
    return {
        **pages.page_context(signed_in),
        "factor": pages.factor_choice(factor),
        "target": target.fields(),
        **extra,
    }


def _confirm_template(factor: Factor) -> str:
    enrolment = registry.get(factor.kind).enrolment if registry.is_known(factor.kind) else None
    return enrolment.confirm_template if enrolment is not None else "me_mfa_confirm.html"


@router.get("/me/mfa/factors/<factor_id>/confirm")
def confirm_page(factor_id: str) -> Response[str]:
    req = web.request()
    target = Target.read(req.query)
    signed_in = pages.setup_session(req, target)
    factor = _factor(signed_in, factor_id)
    context = _confirm_context(req, signed_in, factor, target, sent=registry.channel(factor.kind) is not None)
    return web.render(req, _confirm_template(factor), **context)


@router.post("/me/mfa/factors/<factor_id>/confirm")
def confirm_factor(factor_id: str) -> Response[str]:
    from idp_core.mfa import factors

    req, signed_in = _session()
    factor = _factor(signed_in, factor_id)
    form, target = _form(req, signed_in, pages.CODE_FIELD)
    req.error_page = lambda: (
        _confirm_template(factor),
        _confirm_context(req, signed_in, factor, target, sent=False),
    )
    _require_change_allowed(req, signed_in)
    verified = pages.verify_code(
        req, signed_in, factor, form["code"], "enrol", policy.load_settings().allowed_methods
    )
    first = _had_no_active_factor(signed_in, factor.factor_id)
    factors.activate_factor(factor, req.clock, context=req.audit_context(signed_in.user.username))
    _notify(
        req,
        signed_in,
        "A sign-in method was added to your account",
        f"{factors.describe(factor)} was added to your account as a way to confirm it is you",
    )
    return _finish_enrolment(
        req, signed_in, factor, target, first=first, events=[verified.event], releases=[verified.attempt]
    )


@router.post("/me/mfa/factors/<factor_id>/send")
def resend_confirmation(factor_id: str) -> Response[str]:
    req, signed_in = _session()
    factor = _factor(signed_in, factor_id)
    _, target = _form(req, signed_in, {})
    req.error_page = lambda: (
        "me_mfa_confirm.html",
        _confirm_context(req, signed_in, factor, target, sent=True),
    )
    pages.send_code(req, signed_in, factor, "enrol")
    return web.redirect(req, f"/me/mfa/factors/{factor.factor_id}/confirm", query=target.query())


# ---------------------------------------------------------------- backup codes


@router.post("/me/mfa/backup")
def generate_backup_codes() -> Response[str]:
    from idp_core.mfa import backup_codes, factors

    req, signed_in = _session()
    _, target = _form(req, signed_in, {})
    _require_change_allowed(req, signed_in)
    _allowed(MethodKind.BACKUP)
    had_none = not factors.has_active_factor(signed_in.user.username)
    codes = backup_codes.generate(signed_in.user.username, clock=req.clock)
    _notify(
        req,
        signed_in,
        "New backup codes were made for your account",
        "A new set of backup codes was made for your account; the old codes no longer work",
    )
    cookies: list[str] = []
    if had_none:
        issued = sessions.complete_second_factor(
            signed_in.token, signed_in.session, method=MethodKind.BACKUP.value, clock=req.clock
        )
        cookies.append(web.session_cookie(req, issued.token))
        signed_in = web.SignedIn(token=issued.token, session=issued.session, user=signed_in.user)
    continue_to = None
    if target.app:
        continue_to = req.link(f"/apps/{target.app}/launch", RelayState=target.relay_state)
    elif target.next:
        continue_to = req.link(target.next)
    # Shown once (S12): this response is the only place the codes ever appear.
    return web.render(
        req,
        "me_mfa_backup.html",
        cookies=cookies,
        **pages.page_context(signed_in),
        codes=codes,
        continue_to=continue_to,
    )


# ---------------------------------------------------------------- rename, default, remove


@router.post("/me/mfa/factors/<factor_id>/rename")
def rename_factor(factor_id: str) -> Response[str]:
    from idp_core.mfa import factors

    req, signed_in = _session()
    factor = _factor(signed_in, factor_id)
    form, _ = _form(req, signed_in, LABEL_FIELDS)
    _require_change_allowed(req, signed_in)
    factors.rename_factor(
        signed_in.user.username,
        factor.factor_id,
        form["label"],
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )
    _notify(req, signed_in, "A sign-in method was renamed", f"{factor.label} was renamed to {form['label']}")
    return _done(req, "renamed")


@router.post("/me/mfa/factors/<factor_id>/default")
def make_default(factor_id: str) -> Response[str]:
    from idp_core.mfa import factors

    req, signed_in = _session()
    factor = _factor(signed_in, factor_id)
    _form(req, signed_in, {})
    _require_change_allowed(req, signed_in)
    factors.set_default_factor(
        signed_in.user.username,
        factor.factor_id,
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )
    _notify(
        req, signed_in, "Your default sign-in method changed", f"{factor.label} is now your default method"
    )
    return _done(req, "default")


@router.post("/me/mfa/factors/<factor_id>/remove")
def remove_factor(factor_id: str) -> Response[str]:
    from idp_core.mfa import factors

    req, signed_in = _session()
    factor = _factor(signed_in, factor_id)
    _form(req, signed_in, {})
    # An unconfirmed factor was never usable, so dropping it changes nothing (S11).
    if factor.status == "active":
        _require_change_allowed(req, signed_in)
    factors.remove_factor(
        signed_in.user.username,
        factor.factor_id,
        keep_session_hash=signed_in.session.id_hash,
        context=req.audit_context(signed_in.user.username),
        clock=req.clock,
    )
    if factor.status == "active":
        _notify(
            req,
            signed_in,
            "A sign-in method was removed from your account",
            f"{factors.describe(factor)} was removed from your account",
        )
    return _done(req, "removed")


# ---------------------------------------------------------------- Test 2FA


def _test_context(
    signed_in: web.SignedIn, factor_id: str | None, *, sent: bool = False
) -> tuple[dict[str, Any], Factor | None]:
    from idp_core.mfa import factors

    # Any factor of an allowed method may be tested, whatever its tier: a test proves nothing.
    active = factors.list_factors(signed_in.user.username, active_only=True)
    choices = flow.order_factors(active, policy.load_settings().allowed_methods)
    selected = pages.pick_factor(choices, factor_id)
    return pages.challenge_context(
        signed_in, choices, selected, Target(), TEST_CHALLENGE, sent=sent
    ), selected


def _complete_session(req: web.WebRequest) -> web.SignedIn:
    """Testing needs a finished sign-in: a user who is enrolling has nothing to test yet."""
    signed_in = pages.setup_session(req)
    if pages.is_enrolling(signed_in):
        raise web.RedirectRequired("Set up a second factor first.", "/me/mfa", {})
    return signed_in


@router.get("/me/mfa/test")
def test_page() -> Response[str]:
    req = web.request()
    signed_in = _complete_session(req)
    factor_id = req.query_param("factor", max_chars=pages.MAX_FACTOR_ID_CHARS, label="Method")
    context, _ = _test_context(signed_in, factor_id, sent=req.query.get("sent") == "1")
    web.allow_webauthn(req)
    return web.render(req, "mfa/challenge.html", **context)


@router.post("/me/mfa/test/send")
def test_send() -> Response[str]:
    req = web.request()
    signed_in = _complete_session(req)
    form = web.read_form(req, signed_in.session, pages.FACTOR_FIELD)
    context, factor = _test_context(signed_in, form["factor"])
    req.error_page = ("mfa/challenge.html", context)
    if factor is None:
        raise NotFound("There is no method to send a code to.")
    pages.send_code(req, signed_in, factor, TEST_CHALLENGE.purpose)
    return web.redirect(req, "/me/mfa/test", query={"factor": factor.factor_id, "sent": "1"})


@router.post("/me/mfa/test/verify")
def test_verify() -> Response[str]:
    req = web.request()
    signed_in = _complete_session(req)
    form = web.read_form(req, signed_in.session, {**pages.FACTOR_FIELD, **pages.CODE_FIELD})
    context, factor = _test_context(signed_in, form["factor"])
    web.allow_webauthn(req)
    req.error_page = ("mfa/challenge.html", context)
    if factor is None:
        raise NotFound("There is no method to check this code with.")
    # The same checks and the same lockout counters as a sign-in: a test is no brute-force oracle.
    verified = pages.verify_code(
        req, signed_in, factor, form["code"], TEST_CHALLENGE.purpose, policy.load_settings().allowed_methods
    )
    verified.commit()  # Nothing else changes: the event is the only record of the test.
    return _done(req, "tested")
