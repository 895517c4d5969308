"""Signing in with a passkey (a discoverable WebAuthn credential) instead of a username and
password: "Sign in with a passkey" on /login, or the browser's autofill of passkeys.

The browser names the key (its credential id) and the factor it was made for (its user
handle, the factor's random id); the key's answer must verify the user (PIN, biometrics),
so it stands for the password and, where the app accepts security keys, for the second
factor too (a phishing-resistant one, S28). A key that cannot verify its user is only a
second factor: it is refused here with a sentence, and works after the password.

The same guards as the password hold (S1-S3, S29): the attempt is reserved on the user
before the answer is judged, a wrong answer counts in the user's security-key failures, a
locked or disabled account is refused, and the app's adaptive policy decides as after a
password.
"""

from __future__ import annotations

from typing import Any, NoReturn

from idp_core import audit, lockout, observability, sessions
from idp_core.concurrency import together
from idp_core.config import WithSignIn
from idp_core.errors import Forbidden, IdpError
from idp_core.mfa import WrongCode, flow, webauthn
from idp_core.mfa.methods import MethodKind
from idp_core.models import Factor, User, get_items
from idp_core.scope import RequestScope
from idp_core.signin import SignInResult, assess_adaptive, decide, identify

# The first factor a passkey sign-in records in its session, where a password records "password".
PASSKEY_FACTOR = "passkey"
# The purpose its challenge is stored under (not a second-factor purpose).
PURPOSE = "passkey"


_NOT_VERIFIED = (
    "This key did not check that it is you (with a PIN, fingerprint or face), so it cannot "
    "replace your password. Sign in with your password, then use the key."
)


class PasskeySignInError(IdpError):
    """One sentence for an unknown, removed or wrong key (nothing about the account leaks)."""

    status = 401

    def __init__(
        self, message: str = "That passkey did not sign you in. Try again, or use your password."
    ) -> None:
        super().__init__(message)


def options(ceremony: webauthn.Ceremony) -> str:
    """The options for ``navigator.credentials.get`` on /login: any passkey of this site, and
    user verification required; the challenge is bound to the sign-in form's cookie."""
    return webauthn.authentication_options(
        [],
        ceremony,
        username=webauthn.NOBODY + ceremony.binding[:16],
        purpose=PURPOSE,
        user_verification="required",
    )


def ceremony(login_token: str, scope: RequestScope, base_url: str) -> webauthn.Ceremony:
    """A passkey sign-in at ``base_url``: its challenge is bound to the sign-in form's own
    double-submit cookie (``login_token``), so only the browser that asked can answer."""
    return webauthn.Ceremony(
        webauthn.RelyingParty.of(base_url), webauthn.passkey_binding(login_token), clock=scope.clock,
        context=scope.context,
    )  # fmt: skip


def passkey_sign_in(
    answer_text: str,
    scope: RequestScope,
    at: webauthn.Ceremony,
    *,
    previous_session: str | None = None,
    app_name: str | None = None,
) -> SignInResult:
    """Check a passkey's answer and issue a session, as ``signin.password_sign_in`` does for a
    password; ``PasskeySignInError``, ``BadRequest`` or the lock's refusal otherwise."""
    settings = WithSignIn.of(scope.settings)
    answer = webauthn.parse_answer(answer_text, registration=False)
    owner = webauthn.owner_of(answer)
    if owner is None:
        _refused(scope, None, "unknown key")
    username = str(owner.username)
    (app, device), reserved, (factor,) = together(
        lambda: identify(username, app_name, scope.browser.device_token),
        lambda: lockout.try_reserve(
            User, (username,), MethodKind.WEBAUTHN, policy=settings.lockout, clock=scope.clock
        ),
        lambda: get_items((Factor, (username, str(owner.factor_id)), True)),
    )
    if reserved.refused is not None:
        _refused(scope, username, "locked", reserved.refused)
    if reserved.found is None:
        _refused(scope, username, "unknown user")
    user, attempt = reserved.found
    if not answer.response.response.authenticator_data.is_user_verified():
        attempt.not_evaluated()
        _refused(scope, username, "user not verified", PasskeySignInError(_NOT_VERIFIED))
    try:
        _check_key(factor, answer)
        webauthn.verify_assertion(factor, answer, at, require_user_verification=True)
        if user.disabled:  # Told only to the key's holder, as a password's holder is told.
            raise Forbidden("This account is disabled. Ask an administrator.")
    except WrongCode:
        attempt.failed(subject=username, context=scope.context, details={"purpose": PURPOSE})
        _refused(scope, username, "wrong answer")
    except Exception:
        attempt.not_evaluated()
        raise
    return _start(user, attempt, (app, device, factor), scope, previous_session)


def _check_key(factor: Any, answer: webauthn.Answer) -> None:
    """The key is an active security key of this user, and the browser named its factor."""
    if factor is None or factor.kind != MethodKind.WEBAUTHN or factor.status != "active":
        raise WrongCode()
    if answer.response.response.user_handle != str(factor.factor_id).encode("ascii"):
        raise WrongCode()


def _start(
    user: User,
    attempt: lockout.Attempt,
    read: tuple[Any, Any, Factor],
    scope: RequestScope,
    previous_session: str | None,
) -> SignInResult:
    """The session of an accepted passkey; ``read`` is the target app, the browser's device and
    the passkey's factor."""
    app, device, key = read
    observability.count("SecondFactorAccepted")  # The dashboard's funnel counts it there.
    adaptive, events = assess_adaptive(app, user, device, scope, [attempt])
    # The verified passkey is a phishing-resistant second factor: it settles what an app that
    # accepts security keys asks for, so the user's other factors are read only when the app
    # does not, and the challenge must offer one of its own methods.
    decided = decide(user, app, adaptive, [key])
    if flow.OWES_SECOND_FACTOR in decided.owed and MethodKind.WEBAUTHN in decided.methods:
        pending = decided.owed - {flow.OWES_SECOND_FACTOR}
    else:
        decided = decide(user, app, adaptive)
        pending = decided.owed
    events.insert(
        0,
        audit.new_event(
            audit.EventType.WEBAUTHN_PASSKEY_SIGN_IN,
            "success" if not pending else "pending",
            context=scope.context,
            subject=user.username,
            details={"factors": PASSKEY_FACTOR, **({"owed": ",".join(sorted(pending))} if pending else {})},
            clock=scope.clock,
        ),
    )
    issued = sessions.start_session(
        sessions.NewSession(
            user.username,
            factors={PASSKEY_FACTOR, *(sessions.PENDING_PREFIX + owed for owed in pending)},
            second_factor=MethodKind.WEBAUTHN.value,
        ),
        scope,
        replaces=previous_session,
        events=events,
        releases=[attempt],
    )
    return SignInResult(
        user=user,
        issued=issued,
        pending=pending,
        choices=decided.choices if pending else (),
        methods=decided.methods,
        trust_days=adaptive.policy.trust_days if adaptive is not None else 0,
        app=app,
        device=device,
    )


def _refused(
    scope: RequestScope, username: str | None, reason: str, error: IdpError | None = None
) -> NoReturn:
    audit.record(
        audit.EventType.AUTH_FAILURE,
        "failure",
        context=scope.context,
        subject=username,
        details={"factor": MethodKind.WEBAUTHN.value, "reason": reason, "purpose": PURPOSE},
        clock=scope.clock,
    )
    observability.count("SecondFactorRefused")
    raise error or PasskeySignInError()
