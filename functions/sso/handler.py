"""The sso function: sign-in, sessions, the app launcher and the SAML metadata.

A thin route table: each route reads its input through ``idp_core.web``, calls one logic
function and maps the result to a page or a redirect. Exceptions become responses in one
place (``web.error_response``), and ``web.finalize`` adds the security headers to every
response. Settings are validated when this module is imported (the Lambda cold start).

Adding routes: put them in a module next to this one with ``router = APIGatewayRouter()``,
import it and name it in ``function.include_routers``, and use ``web.request()``,
``session_guard.require_session`` (``guard.require_admin`` for an admin page),
``web.read_form``, ``web.render`` and ``web.redirect`` inside the routes. Logic that only some
routes need (the sign-in, the launch, the SAML documents) is imported by those routes, so the
cold start, which most often serves the sign-in page, does not load it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from functions.sso import admin_routes, device_routes, password_routes, recovery_routes, saml_admin_routes
from functions.sso.settings import SsoSettings
from idp_core import aws, session_guard, sessions, web
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import FunctionSettings
from idp_core.names import MAX_USERNAME_CHARS
from idp_core.passwords import MAX_PASSWORD_CHARS
from idp_core.resolver import Response
from idp_core.web.function import PageFunction
from idp_core.web.target import MAX_RELAY_STATE_CHARS, TARGET_FIELDS, Target

if TYPE_CHECKING:
    from idp_core.launch import LaunchTarget
    from idp_core.signin import SignInResult

# Longer than any valid username so a too-long name is refused like a wrong one, not with
# a message that reveals the rules; the form still refuses anything absurd (S26).
MAX_USERNAME_FIELD_CHARS = max(256, MAX_USERNAME_CHARS)


function = PageFunction("sso", SsoSettings)
app = function.app


def configure(settings: FunctionSettings | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
    """Bind the settings (and a clock: tests move a FakeClock) for the following requests:
    the function's own (SsoSettings), from the environment unless given."""
    function.configure(settings, clock)


configure()


def _signing_identity(req: web.WebRequest) -> Any:
    from idp_core.saml.signing_keys import signing_identity_now

    return signing_identity_now(aws.client("kms"), SsoSettings.of(req.settings).signing_key_ids, req.clock)


LOGIN_FIELDS = {
    "username": web.Field("Username", MAX_USERNAME_FIELD_CHARS),
    "password": web.Field("Password", MAX_PASSWORD_CHARS),
    # Sent only when a directory is shown to users; without it the sign-in works as before.
    "directory": web.Field("Sign in with", 64, required=False),
    **TARGET_FIELDS,
}


def _login_form(login_csrf: str, username: str, target: Target, chosen: str | None) -> dict[str, Any]:
    """What login.html shows: the "Sign in with" options (none unless a directory is shown)
    and the values to keep when the form is shown again."""
    from idp_core.directories.signin import LOCAL_CHOICE, sign_in_choices

    return {
        "login_csrf": login_csrf,
        "username": username,
        "target": target.fields(),
        "directories": sign_in_choices(),
        "chosen": chosen or LOCAL_CHOICE,
    }


# ---------------------------------------------------------------- routes


@app.get("/")
def home() -> Response[str]:
    req = web.request()
    return web.redirect(req, "/me" if session_guard.current_session(req) else "/login")


@app.get("/static/idp.css")
def stylesheet() -> Response[str]:
    return web.stylesheet_response()


@app.get("/static/webauthn.js")
def webauthn_script() -> Response[str]:
    return web.webauthn_script_response()


@app.get("/login")
def login_page() -> Response[str]:
    req = web.request()
    target = Target.read(req.query)
    if session_guard.current_session(req) is not None:
        return target.redirect(req)
    token, cookies = web.login_csrf_token(req)
    web.allow_webauthn(req)  # "Sign in with a passkey" and the browser's autofill of passkeys.
    return web.render(req, "login.html", cookies=cookies, **_login_form(token, "", target, None))


@app.post("/login")
def login_submit() -> Response[str]:
    # The sign-in and the second-factor rules load with the first password, not with the page
    # that asks for it: a cold start is most often that page (or a launch before signing in).
    from idp_core import signin

    req = web.request()
    web.allow_webauthn(req)
    form = web.read_login_form(req, LOGIN_FIELDS)
    target = Target.read(form)
    # A refused sign-in shows the form again with the message (same body for every cause, S5);
    # built only then, so a successful sign-in does not read the directories for it.
    req.error_page = lambda: (
        "login.html",
        _login_form(web.login_csrf_token(req)[0], form["username"], target, form.get("directory")),
    )
    sp_request = _sp_request_of(req, target)
    result = signin.password_sign_in(
        form["username"],
        form["password"],
        req.scope(browser=session_guard.browser(req)),
        previous_session=web.session_token(req),
        app_name=target.app or (sp_request.app if sp_request else None),
        directory=form.get("directory"),
    )
    return _after_first_factor(req, result, target, sp_request)


def _after_first_factor(
    req: web.WebRequest, result: SignInResult, target: Target, sp_request: Any
) -> Response[str]:
    """Where a sign-in continues once its first factor (a password or a passkey) was accepted:
    to the app, or to the answer of the SP's pending AuthnRequest ``sp_request``, when nothing
    more is owed."""
    from idp_core.launch import LaunchTarget

    cookies = [web.session_cookie(req, result.issued.token)]
    # A half-way session reaches only the MFA pages (S14): enrolment first, else the challenge.
    if sessions.OWES_ENROLMENT in result.pending:
        return web.redirect(req, "/me/mfa", cookies=cookies, query=target.query())
    if result.choices:
        return _challenge_page(req, result, target, cookies)
    if result.pending:
        return web.redirect(req, "/mfa", cookies=cookies, query=target.query())
    if target.app:
        return _launch_after_password(req, result, LaunchTarget(target.app, target.relay_state), cookies)
    if sp_request is not None:
        launch = LaunchTarget(sp_request.app, sp_request.relay_state, sp_request=sp_request)
        return _launch_after_password(req, result, launch, cookies)
    return target.redirect(req, cookies)


def _sp_request_of(req: web.WebRequest, target: Target) -> Any:
    """The SP's pending AuthnRequest when the sign-in continues to its answer: the password's
    answer is then the Response itself, as for an app, one request and its reads less."""
    from idp_core import sp_sso

    prefix = SP_CONTINUE_PATH + "?request="
    if not target.next or not target.next.startswith(prefix):
        return None
    return sp_sso.pending_request(target.next[len(prefix) :], req.clock)


def _launch_after_password(
    req: web.WebRequest, result: SignInResult, launch: LaunchTarget, cookies: list[str]
) -> Response[str]:
    """Signed in for an app that asks for nothing more: the answer is the page that posts the
    signed SAMLResponse, as after a second factor, instead of a redirect to the launch (one
    request and its reads less). The session stands whatever the app answers."""
    from idp_core.errors import IdpError

    req.error_page = None  # Past the password: a refusal is the app's, not the sign-in form's.
    signed_in = web.SignedIn(token=result.issued.token, session=result.issued.session, user=result.user)
    try:
        return _post_to_app(req, signed_in, replace(launch, read=(result.app, result.device)), cookies)
    except IdpError as exc:
        response = web.error_response(exc)
        response.headers["Set-Cookie"] = cookies
        return response


def _challenge_page(
    req: web.WebRequest, result: SignInResult, target: Target, cookies: list[str]
) -> Response[str]:
    """The challenge as the answer to the password, with what the sign-in already read: one
    round trip less than a redirect to /mfa. The address bar is set to that /mfa page, so
    reloading shows the challenge again instead of posting the password once more."""
    from idp_core import mfa_pages as pages
    from idp_core.mfa import flow

    signed_in = web.SignedIn(token=result.issued.token, session=result.issued.session, user=result.user)
    context = pages.challenge_context(
        signed_in,
        list(result.choices),
        result.choices[0],
        target,
        pages.SIGN_IN_CHALLENGE,
        methods_text=", ".join(flow.methods_label(result.methods)),
        trust_days=result.trust_days,
    )
    req.allow_nonce_script = True
    web.allow_webauthn(req)
    return web.render(
        req,
        pages.CHALLENGE_TEMPLATE,
        cookies=cookies,
        address=req.link("/mfa", **target.query()),
        **context,
    )


@app.post("/login/passkey/options")
def passkey_options() -> Response[str]:
    """What the sign-in page's script gives the browser to ask for any passkey of this site."""
    from idp_core import passkeys

    req = web.request()
    web.read_login_form(req, {})
    ceremony = passkeys.ceremony(web.login_csrf_token(req)[0], req.scope(), req.base_url)
    return web.json_response(passkeys.options(ceremony))


@app.post("/login/passkey")
def passkey_sign_in() -> Response[str]:
    """A passkey's answer in place of the username and password (and, where the app accepts
    security keys, of the second factor)."""
    from idp_core import passkeys
    from idp_core.mfa.methods.base import MAX_ANSWER_CHARS

    req = web.request()
    web.allow_webauthn(req)
    form = web.read_login_form(req, {"credential": web.Field("Passkey", MAX_ANSWER_CHARS), **TARGET_FIELDS})
    target = Target.read(form)
    token = web.login_csrf_token(req)[0]
    req.error_page = lambda: ("login.html", _login_form(token, "", target, None))
    sp_request = _sp_request_of(req, target)
    result = passkeys.passkey_sign_in(
        form["credential"],
        req.scope(browser=session_guard.browser(req)),
        passkeys.ceremony(token, req.scope(), req.base_url),
        previous_session=web.session_token(req),
        app_name=target.app or (sp_request.app if sp_request else None),
    )
    return _after_first_factor(req, result, target, sp_request)


@app.post("/logout")
def logout() -> Response[str]:
    req = web.request()
    token = web.session_token(req)
    session = sessions.find_session(token, policy=req.settings.sessions, clock=req.clock) if token else None
    if token is not None and session is not None:
        from idp_core import signin

        web.read_form(req, session, {})
        signin.sign_out(token, session, context=req.audit_context(session.username), clock=req.clock)
    return web.redirect(req, "/login", cookies=[web.clear_session_cookie(req)])


@app.post("/me/sign-out-everywhere")
def sign_out_everywhere() -> Response[str]:
    """The user ends all their sessions, this one included (a browser they lost or left)."""
    from idp_core.accounts import sign_out_everywhere

    req = web.request()
    signed_in = session_guard.require_session(req)
    web.read_form(req, signed_in.session, {})
    username = signed_in.user.username
    sign_out_everywhere(username, context=req.audit_context(username), clock=req.clock)
    return web.redirect(req, "/login", cookies=[web.clear_session_cookie(req)])


@app.get("/me")
def my_apps() -> Response[str]:
    from idp_core.saml_apps import apps_for_user

    req = web.request()
    signed_in = session_guard.require_session(req)
    return web.render(req, "me.html", apps=apps_for_user(signed_in.user))


@app.get("/apps/<name>/launch")
def launch(name: str) -> Response[str]:
    req = web.request()
    relay_state = req.query_param("RelayState", max_chars=MAX_RELAY_STATE_CHARS)
    from idp_core.launch import LaunchTarget

    signed_in = session_guard.require_session(req, login_query={"app": name, "RelayState": relay_state})
    return _post_to_app(req, signed_in, LaunchTarget(name, relay_state))


@app.post("/mfa/verify")
def verify_second_factor() -> Response[str]:
    """The answer to the second-factor challenge (sign-in or step-up).

    Served by this function rather than the otp function: when the sign-in is for an app,
    this response already carries the signed SAMLResponse, saving a round trip.
    """
    from idp_core import mfa_pages as pages
    from idp_core.errors import IdpError
    from idp_core.launch import LaunchTarget

    req = web.request()
    web.allow_webauthn(req)  # A refused answer shows the challenge again, maybe a security key's.
    # The chosen factor is read by its key; the page's choices (the app, the user's factors)
    # only to show the page again after a refusal. A factor counts only if its method is one
    # the target accepts (S28); every launch checks the app's methods again.
    answer = pages.read_challenge_answer(req)
    signed_in, target, form, factor = answer.signed_in, answer.target, answer.form, answer.factor
    app_item, device = answer.app, answer.device
    try:
        verified = pages.verify_code(
            req,
            signed_in,
            factor,
            form["code"],
            pages.SIGN_IN_CHALLENGE.purpose,
            pages.challenge_methods(signed_in, app_item if target.app else None),
            answer.reservation,
        )
    except IdpError:
        req.error_page = pages.challenge_error_page(signed_in, target, form["factor"])
        raise
    renewed = sessions.after_second_factor(signed_in.session, method=factor.kind, clock=req.clock)
    cookies = [web.session_cookie(req, renewed.token)]
    events = [verified.event]
    if not target.app or target.next:
        # A step-up for an app that continues at a page of this site (the command line's
        # hand-off, which approves there) goes back to that page instead of launching.
        response = Target(next=target.next).redirect(req, cookies)
    else:
        # Sign first, then store the new session with both events in one transaction.
        stepped_up = web.SignedIn(token=renewed.token, session=renewed.session, user=signed_in.user)
        try:
            response = _post_to_app(
                req,
                stepped_up,
                LaunchTarget(target.app, target.relay_state, (app_item, device)),
                cookies,
                trust_device=form.get("trust") == "1",
                events=events,
            )
        except Exception as exc:
            # The second factor was proven: keep that, and say why the app refused (or, when
            # KMS or DynamoDB failed, to try again: the launch then needs no new code).
            response = web.error_response(exc)
            response.headers["Set-Cookie"] = cookies
    sessions.commit_renewal(renewed, signed_in.token, events, [verified.attempt])
    return response


def _post_to_app(
    req: web.WebRequest,
    signed_in: web.SignedIn,
    launch: LaunchTarget,
    cookies: list[str] | None = None,
    trust_device: bool = False,
    events: list[Any] | None = None,
) -> Response[str]:
    """The page that posts a signed SAMLResponse for the app of ``launch`` to its ACS URL, or
    the redirect to the second factor the app's policies ask for first. With ``events``, the
    launch's audit events are added there for the caller to write instead of written. For an
    SP's pending AuthnRequest (``launch.sp_request``), the second factor continues to its answer."""
    target: dict[str, str | None] = {"app": launch.app_name, "RelayState": launch.relay_state}
    if launch.sp_request is not None:
        target = {"next": _continue_path(launch.sp_request)}
    launched = _launched(
        req, signed_in, launch, target, cookies or [], trust_device=trust_device, events=events
    )
    if isinstance(launched, Response):
        return launched
    result, cookies = launched
    return _auto_post(req, result.acs_url, result.saml_response_b64, result.relay_state, cookies)


def _launched(
    req: web.WebRequest,
    signed_in: web.SignedIn,
    launch: LaunchTarget,
    step_up: dict[str, str | None],
    cookies: list[str],
    *,
    trust_device: bool = False,
    events: list[Any] | None = None,
) -> tuple[Any, list[str]] | Response[str]:
    """The app's launch (``launch_app``) and the cookies to set with its answer; or the redirect
    to the enrolment or the second factor the app's policies ask for first, which continues
    with the ``step_up`` target."""
    from idp_core.launch import Issuer, launch_app
    from idp_core.mfa import flow

    try:
        result = launch_app(
            signed_in.user,
            signed_in.session,
            launch,
            req.scope(signed_in.user.username, session_guard.browser(req)),
            issuer=Issuer(_entity_id(req), lambda: _signing_identity(req)),
            trust_device=trust_device,
            events=events,
        )
    except flow.EnrolmentRequired:
        return web.redirect(req, "/me/mfa", query=step_up, cookies=cookies)
    except flow.SecondFactorRequired:
        # The app's policy holds at every launch: step up with a method it accepts.
        return web.redirect(req, "/mfa", query=step_up, cookies=cookies)
    if result.device_cookie:
        cookies = [*cookies, session_guard.device_cookie(req, result.device_cookie)]
    return result, cookies


@app.post("/device/approve")
def approve_handoff() -> Response[str]:
    """The command line's hand-off approved: the app's launch, as from its tile, whose
    SAMLResponse is kept for the command line's one pick-up instead of posted to AWS."""
    from idp_core import device_login
    from idp_core.launch import LaunchTarget

    req = web.request()
    signed_in = session_guard.require_session(req)
    form = web.read_form(req, signed_in.session, device_routes.CODE_FIELDS)
    scope = req.scope(signed_in.user.username)
    handoff = device_login.find(form[device_routes.CODE_FIELD], signed_in.user, scope)
    # A step-up comes back to the code's page, where the user approves again.
    # The code has letters and a dash only: nothing in it needs escaping.
    back = f"{device_routes.PAGE}?{device_routes.CODE_FIELD}={device_login.shown_code(handoff.user_code)}"
    events: list[Any] = []
    launched = _launched(
        req, signed_in, LaunchTarget(handoff.app), {"app": handoff.app, "next": back}, [], events=events
    )
    if isinstance(launched, Response):
        return launched
    result, cookies = launched
    device_login.approve(handoff, signed_in.user, result.saml_response_b64, events, scope)
    return web.render(req, "device_done.html", cookies=cookies, approved=True)


@app.get("/saml/metadata")
def metadata() -> Response[str]:
    from idp_core.saml.metadata import published_metadata

    req = web.request()
    # The signing certificate, and during a key rotation the next one too.
    document = published_metadata(
        aws.client("kms"), SsoSettings.of(req.settings).signing_key_ids, req.base_url, req.clock
    )
    return Response(
        status_code=200,
        content_type="application/samlmetadata+xml",
        body=document.decode("utf-8"),
        headers={"Cache-Control": "public, max-age=300"},
    )


SP_CONTINUE_PATH = "/saml/continue"
SLO_PATH = "/saml/slo"
SLO_CONTINUE_PATH = "/saml/slo/continue"


def _received(req: web.WebRequest) -> Any:
    """The SP's request as either binding brought it (HTTP-POST form or HTTP-Redirect query)."""
    from idp_core.saml import sp_requests

    if req.method == "POST":
        return sp_requests.read_post(web.posted_values(req))
    return sp_requests.read_redirect(req.query)


@app.route("/saml/sso", method=["GET", "POST"])
def sp_initiated_sign_in() -> Response[str]:
    """An SP's AuthnRequest (HTTP-Redirect or HTTP-POST): checked and remembered once, then
    answered for the signed-in user, or after the sign-in pages."""
    from idp_core import sp_sso
    from idp_core.saml.metadata import SSO_PATH

    req = web.request()
    _, pending = sp_sso.receive_authn_request(
        _received(req), sso_url=req.base_url + SSO_PATH, context=req.audit_context(None), clock=req.clock
    )
    if req.method == "POST":
        # A cross-site POST comes without the session cookie (SameSite=Lax): a GET brings it.
        return web.redirect(req, SP_CONTINUE_PATH, query={"request": pending.handle})
    return _answer_sp(req, pending)


@app.get(SP_CONTINUE_PATH)
def continue_sp_sign_in() -> Response[str]:
    """Where the sign-in pages (and a POSTed request) continue to: the answer to the SP."""
    req = web.request()
    return _answer_sp(req, _pending_of_query(req))


def _answer_sp(req: web.WebRequest, pending: Any) -> Response[str]:
    """The Response for a pending AuthnRequest; without a session, the sign-in page first (or,
    for IsPassive, the NoPassive status); with ForceAuthn, the password again."""
    from idp_core.launch import LaunchTarget

    next_page = _continue_path(pending)
    signed_in = session_guard.current_session(req)
    stale = (
        signed_in is not None and pending.force_authn and signed_in.session.created_at < pending.received_at
    )
    if signed_in is None or stale:
        if pending.is_passive:
            return _no_passive(req, pending)
        if signed_in is None:
            signed_in = session_guard.require_session(req, login_query={"next": next_page})
        token, cookies = web.login_csrf_token(req)
        form = _login_form(token, signed_in.user.display_username, Target(next=next_page), None)
        return web.render(req, "login.html", cookies=cookies, **form)
    return _post_to_app(req, signed_in, LaunchTarget(pending.app, pending.relay_state, sp_request=pending))


def _pending_of_query(req: web.WebRequest) -> Any:
    """The pending SP request the ``request`` query parameter names (a continue page's)."""
    from idp_core import sp_sso

    return sp_sso.pending_request(req.query_param("request", max_chars=64) or "", req.clock)


def _continue_path(pending: Any) -> str:
    # The handle is 64 hex digits: nothing in it needs escaping.
    return f"{SP_CONTINUE_PATH}?request={pending.handle}"


def _no_passive(req: web.WebRequest, pending: Any) -> Response[str]:
    import base64

    from idp_core import sp_sso

    document = sp_sso.no_passive_answer(
        pending, issuer=_entity_id(req), identity=_signing_identity(req), clock=req.clock
    )
    return _auto_post(req, pending.acs_url, base64.b64encode(document).decode("ascii"), pending.relay_state)


def _auto_post(
    req: web.WebRequest, url: str, message_b64: str, relay_state: str | None, cookies: list[str] | None = None
) -> Response[str]:
    """The page whose script posts a SAML message to ``url``, the only other origin it may post to."""
    from idp_core.saml.post_form import auto_post_form

    req.allow_nonce_script = True
    req.extra_form_actions.append(_origin(url))
    return web.html_response(auto_post_form(url, message_b64, relay_state, req.nonce), cookies=cookies or [])


@app.route(SLO_PATH, method=["GET", "POST"])
def single_logout() -> Response[str]:
    """An SP's signed LogoutRequest: the session here ends and the SP gets a signed LogoutResponse."""
    from idp_core import sp_sso

    req = web.request()
    _, _, pending = sp_sso.receive_logout_request(
        _received(req), slo_url=req.base_url + SLO_PATH, context=req.audit_context(None), clock=req.clock
    )
    if req.method == "POST":
        return web.redirect(req, SLO_CONTINUE_PATH, query={"request": pending.handle})
    return _finish_logout(req, pending)


@app.get(SLO_CONTINUE_PATH)
def continue_single_logout() -> Response[str]:
    req = web.request()
    return _finish_logout(req, _pending_of_query(req))


def _finish_logout(req: web.WebRequest, pending: Any) -> Response[str]:
    import base64

    from idp_core import audit, signin, sp_sso
    from idp_core.saml.response import signed_redirect_query
    from idp_core.saml.sp_metadata import BINDING_POST

    token = web.session_token(req)
    session = sessions.find_session(token, policy=req.settings.sessions, clock=req.clock) if token else None
    if token is not None and session is not None:
        signin.sign_out(token, session, context=req.audit_context(session.username), clock=req.clock)
    audit.record(
        audit.EventType.SAML_LOGOUT,
        "success",
        context=req.audit_context(session.username if session else None),
        subject=pending.app,
        details={"app": pending.app, "session_ended": session is not None},
        clock=req.clock,
    )
    identity = _signing_identity(req)
    endpoint, document = sp_sso.logout_answer(
        pending, issuer=_entity_id(req), identity=identity, clock=req.clock
    )
    cookies = [web.clear_session_cookie(req)]
    if endpoint.binding == BINDING_POST:
        response = _auto_post(
            req, pending.acs_url, base64.b64encode(document).decode("ascii"), pending.relay_state
        )
        response.headers["Set-Cookie"] = cookies
        return response
    query = signed_redirect_query(
        field="SAMLResponse", document=document, relay_state=pending.relay_state, identity=identity
    )
    separator = "&" if "?" in pending.acs_url else "?"
    return Response(
        status_code=303,
        content_type="text/plain",
        body="",
        headers={"Location": pending.acs_url + separator + query, "Set-Cookie": cookies},
    )


def _entity_id(req: web.WebRequest) -> str:
    from idp_core.saml.metadata import entity_id_for

    return entity_id_for(req.base_url)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# ---------------------------------------------------------------- routers, entry point

function.include_routers(admin_routes, device_routes, password_routes, recovery_routes, saml_admin_routes)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return function.handle(event, context)
