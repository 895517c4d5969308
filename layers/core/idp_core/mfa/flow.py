"""The second-factor step of sign-in, step-up and factor changes (S1-S3, S6, S7, S10, S11, S14).

After the password, ``owed_after_password`` says what the session still owes: enrolment
(the user has no active factor and must get one), a second factor (the target app
requires one) or nothing. A half-way session carries ``pending:<what>`` in its factors
and reaches only the MFA pages; ``sessions.complete_second_factor`` then issues a new
session id with ``mfa:<method>`` and ``second_factor_at``.

The checks that guard later steps raise, they never return a bool:
``ensure_app_second_factor`` at every app launch (the app's policy holds even for a
session that signed in without it) and ``ensure_fresh_strongest_factor`` before factor,
password and device changes and the admin console (S10, S28: a fresh proof of the
strongest tier the user has; in ``idp_core.mfa.freshness``, named here too).

``verify_second_factor`` is the one place where a submitted code is checked: it accepts
only the methods the target allows (S28), reserves the attempt before the code is looked
at (S29), has the factor's method (``idp_core.mfa.methods``) check it and counts a failure
in the same lockout counters as the password (S1-S2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import PutError

from idp_core import audit, lockout, observability, sessions
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import WithLockout
from idp_core.errors import BadRequest, Forbidden, IdpError
from idp_core.mfa import WrongCode, codes, delivery, factors, policy
from idp_core.mfa import methods as registry
from idp_core.mfa.freshness import EnrolmentRequired as EnrolmentRequired
from idp_core.mfa.freshness import SecondFactorRequired, strongest_tier
from idp_core.mfa.freshness import ensure_fresh_strongest_factor as ensure_fresh_strongest_factor
from idp_core.mfa.methods import CodeCheck
from idp_core.mfa.methods.digits import digits_only
from idp_core.models import App, AuditEvent, Factor, Session, Transaction, User, condition_failed
from idp_core.scope import RequestScope
from idp_core.sessions import OWES_ENROLMENT, OWES_SECOND_FACTOR

if TYPE_CHECKING:
    from idp_core.mfa.policy import MfaSettings

# A login transaction (the code sent by SMS or e-mail is bound to it) lives this long.
TRANSACTION_SECONDS = 10 * 60
PURPOSES = ("signin", "enrol", "test", "reauth")
# Longer input is refused before anything is read or written (S26); no code is this long.
MAX_CODE_CHARS = 64


class NoAcceptedFactor(Forbidden):
    """The app accepts only methods the user has not set up."""

    def __init__(self, methods: Sequence[str]) -> None:
        names = ", ".join(methods_label(methods)) or "none"
        super().__init__(
            "This app needs a second factor you have not set up yet. "
            f"It accepts: {names}. Set one up on your 2FA page, then try again."
        )


# ---------------------------------------------------------------- which factors


def accepted_methods(
    app: App | None, settings: MfaSettings, active: Iterable[Factor] = ()
) -> tuple[str, ...]:
    """The methods a challenge accepts (S28), the default first.

    For an app: its own methods within those the MFA settings allow. Without an app (a
    step-up before a factor change, a password change, device management or the admin
    console): the allowed methods of the strongest tier among the user's ``active`` factors,
    so a weaker factor never stands in for a stronger one.
    """
    if app is not None:
        return policy.app_methods(app, settings)
    tier = strongest_tier(active, settings.allowed_methods)
    return tuple(
        method for method in settings.allowed_methods if tier is None or registry.tier(method) >= tier
    )


def methods_label(kinds: Iterable[str]) -> list[str]:
    """The methods' names for people, in the given order."""
    return [registry.label(kind) for kind in kinds]


def order_factors(factors: Iterable[Factor], methods: Sequence[str]) -> list[Factor]:
    """Active factors of the accepted ``methods``: the user's default first, then by method order."""
    rank = {method: index for index, method in enumerate(methods)}
    usable = [f for f in factors if f.status == "active" and f.kind in rank]
    return sorted(usable, key=lambda f: (not f.is_default, rank[f.kind], float(f.created_at or 0)))


def usable_factors(
    username: str, app: App | None, settings: MfaSettings
) -> tuple[list[Factor], tuple[str, ...]]:
    """The user's factors a challenge for ``app`` (or a step-up without one) offers, and its methods."""
    active = factors.list_factors(username, active_only=True)
    methods = accepted_methods(app, settings, active)
    return order_factors(active, methods), methods


@dataclass(frozen=True)
class AfterPassword:
    """What a sign-in still owes after the password, and for a challenge what can answer it."""

    owed: frozenset[str] = frozenset()
    # For OWES_SECOND_FACTOR: the user's factors the app accepts (default first), and its methods.
    choices: tuple[Factor, ...] = ()
    methods: tuple[str, ...] = ()


def owed_after_password(
    user: User,
    app: App | None,
    load_settings: Callable[[], MfaSettings],
    *,
    force_second_factor: bool = False,
    trusted_device: bool = False,
    active: list[Factor] | None = None,
) -> AfterPassword:
    """What a new session still owes after the password (``signin.decide``).

    - ``enrol``: the user has no active factor, and the MFA settings say users must enrol
      at sign-in, the target app requires a second factor or an admin reset the user's
      factors (``User.must_enrol``) (S11: no route skips it, a trusted device neither);
    - ``mfa``: the target app requires a second factor (or the app's adaptive policy
      challenges this sign-in: ``force_second_factor``) and the user has one it accepts,
      unless a ``trusted_device`` waives the app's own requirement;
    - nothing otherwise. A user whose factors the app does not accept gets a password-only
      session; the launch then explains which methods the app accepts.

    ``load_settings`` is called only when the answer depends on the settings, which
    saves a read on most sign-ins.
    """
    if active is None:
        active = factors.list_factors(user.username, active_only=True)
    app_requires = (app is not None and bool(app.mfa_required) and not app.disabled) or force_second_factor
    if not active:
        if app_requires or user.must_enrol or load_settings().enrol_at_sign_in:
            return AfterPassword(frozenset({OWES_ENROLMENT}))
        return AfterPassword()
    if app_requires and (force_second_factor or not trusted_device):
        methods = accepted_methods(app, load_settings(), active)
        choices = order_factors(active, methods)
        if choices:
            return AfterPassword(frozenset({OWES_SECOND_FACTOR}), tuple(choices), methods)
    return AfterPassword()


def ensure_app_second_factor(
    session: Session, app: App, settings: MfaSettings, *, challenged: bool = False
) -> None:
    """Raise ``SecondFactorRequired`` unless the session proved a method the app accepts.

    This runs at every launch, so a session that signed in with a password only (at
    /login, or for an app without MFA) steps up before it reaches an app that requires MFA,
    or an app whose adaptive policy ``challenged`` this launch.
    """
    if not (app.mfa_required or challenged):
        return
    proven = sessions.second_factor_methods(session)
    if not proven.intersection(accepted_methods(app, settings)):
        raise SecondFactorRequired()


# ---------------------------------------------------------------- transactions


def transaction_id_hash(session_hash: str, purpose: str, factor_id: str) -> str:
    """One login transaction per session, purpose and factor: a resend reuses it (S9's growing
    wait), and a code sent in one session's transaction is worthless in any other (S7)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    return hashlib.sha256(f"txn\x00{session_hash}\x00{purpose}\x00{factor_id}".encode()).hexdigest()


def open_transaction(
    session: Session, factor: Factor, *, purpose: str, clock: Clock = SYSTEM_CLOCK
) -> Transaction:
    """The live transaction for sending ``factor`` a code in this session, created when needed."""
    id_hash = transaction_id_hash(session.id_hash, purpose, factor.factor_id)
    now = clock.now()
    try:
        existing = Transaction.get(id_hash, consistent_read=True)
        if float(existing.expires_at) > now and existing.username == session.username:
            return existing
    except Transaction.DoesNotExist:
        existing = None
    txn = Transaction(
        id_hash,
        username=session.username,
        purpose=purpose,
        session_hash=session.id_hash,
        factor_id=factor.factor_id,
        tries=0,
        sends=0,
        created_at=now,
        expires_at=int(now + TRANSACTION_SECONDS),
    )
    # Replace only an expired item (the TTL sweep lags); a parallel creation wins once.
    condition = Transaction.id_hash.does_not_exist()
    if existing is not None:
        condition = condition | (Transaction.expires_at <= now)
    try:
        txn.save(condition=condition)
    except PutError as exc:
        if not condition_failed(exc):
            raise
        return Transaction.get(id_hash, consistent_read=True)
    return txn


@dataclass(frozen=True)
class Challenge:
    """A second-factor challenge: whom it asks (``user``, signed in with ``session``, whose
    cookie value ``token`` keys a sent code's stored hash, S7), what for (``purpose``, one of
    ``PURPOSES``), the methods it accepts (``accepted_methods``, S28; none accepts nothing,
    and sending a code needs none) and the site's address as the browser sees it
    (``WebRequest.base_url``), which a security key's answer must name."""

    user: User
    session: Session
    token: str
    purpose: str
    methods: Sequence[str] = ()
    base_url: str | None = None


def send_code(
    challenge: Challenge,
    factor: Factor,
    scope: RequestScope,
    *,
    mfa_settings: MfaSettings,
    senders: delivery.Senders,
) -> None:
    """Send ``factor`` (SMS or e-mail) a new code bound to the challenge's transaction, from
    the scope's browser (its address counts in the S9 limits).

    Raises ``SendRefused`` (a limit, the growing wait, the country allowlist) with nothing sent.
    """
    if registry.channel(factor.kind) is None:
        raise BadRequest("This method does not send codes; enter the code your app or token shows.")
    lockout.ensure_not_locked(challenge.user, scope.clock)
    txn = open_transaction(challenge.session, factor, purpose=challenge.purpose, clock=scope.clock)
    delivery.send_code(
        txn,
        factor,
        scope,
        mfa_settings=mfa_settings,
        code_key=codes.key_for_session(challenge.token),
        senders=senders,
    )


# ---------------------------------------------------------------- verification


def check_code_shape(factor: Factor, code: str) -> str:
    """The code without spaces, or ``BadRequest`` before anything is written (S26).

    Each method checks its own shape: authenticator apps, tokens and sent codes are 6-8
    digits; backup codes are checked by their own module, which knows their alphabet.
    """
    known = registry.is_known(factor.kind)
    if len(code) > (registry.get(factor.kind).max_code_chars if known else MAX_CODE_CHARS):
        raise BadRequest("The verification code is too long.")
    cleaned = "".join(code.split())
    if not cleaned:
        raise BadRequest("Verification code is required.")
    if not known:
        # A kind no module knows (written by a newer version) is refused later like a wrong
        # code, after the attempt is counted: until then it is held to the common shape.
        return digits_only(cleaned)
    return registry.get(factor.kind).clean_code(cleaned)


@dataclass(frozen=True)
class Verified:
    """A second factor that was just proven: its success event and the lockout attempt to give
    back (S2), both still unwritten so the caller can write them with its own changes."""

    event: AuditEvent
    attempt: lockout.Attempt

    def commit(self) -> None:
        """Write both now, in one transaction (when nothing else changes with them)."""
        sessions.write_together(events=[self.event], releases=[self.attempt])


def verify_second_factor(
    challenge: Challenge,
    factor: Factor,
    code: str,
    scope: RequestScope,
    *,
    kms: Any = None,
    reservation: lockout.Reservation | None = None,
) -> Verified:
    """Accept ``code`` for ``factor`` or raise (``WrongCode``, ``AccountLocked``, ``BadRequest``).

    Only a factor of a method the challenge accepts counts (``challenge.methods``, from
    ``accepted_methods``): a factor of any other method is refused like a wrong code (S28).
    Only an active factor of this user counts (S11: an unconfirmed one is treated like a wrong
    code); the purpose "enrol" confirms a pending factor instead. The attempt is reserved
    (under the scope's lockout policy) before the code is looked at, so a locked account is
    refused even with a right code, however many codes race (S1, S29). A wrong code counts in
    the user's counter for the factor's kind; a right one gives back only that kind's failures
    (S2), when the caller writes the returned ``Verified``. A caller that reserved the attempt
    already (with its other reads) passes the ``reservation``.
    """
    user, session, purpose = challenge.user, challenge.session, challenge.purpose
    context, clock = scope.context, scope.clock
    try:
        if factor.username != user.username:
            raise WrongCode()
        cleaned = check_code_shape(factor, code)
    except IdpError:
        if reservation is not None and reservation.found is not None:
            reservation.found[1].not_evaluated()  # Refused before the code was looked at.
        raise
    if reservation is None:
        reservation = lockout.try_reserve(
            User, (user.username,), factor.kind, policy=WithLockout.of(scope.settings).lockout, clock=clock
        )
    if reservation.refused is not None:
        audit.record(
            audit.EventType.MFA_FAILURE,
            "failure",
            context=context,
            subject=user.username,
            details={"factor": factor.kind, "reason": "locked", "purpose": purpose},
            clock=clock,
        )
        observability.count("SecondFactorRefused")
        raise reservation.refused
    if reservation.found is None:
        raise WrongCode()  # The user was deleted meanwhile.
    attempt = reservation.found[1]
    expected_status = "pending" if purpose == "enrol" else "active"
    try:
        # A factor of a method the target does not accept, or not of the method the attempt was
        # reserved for (the challenge page names it), is refused like a wrong code (S28).
        if (
            factor.status != expected_status
            or factor.kind not in challenge.methods
            or factor.kind != attempt.factor
            or not registry.is_known(factor.kind)
        ):
            raise WrongCode()
        # A pending authenticator app or token is checked only to confirm it (S11).
        check = CodeCheck(
            transaction_hash=transaction_id_hash(session.id_hash, purpose, factor.factor_id),
            code_key=codes.key_for_session(challenge.token),
            confirming=purpose == "enrol",
            kms=kms,
            clock=clock,
            base_url=challenge.base_url,
        )
        registry.get(factor.kind).verify(factor, cleaned, check)
    except WrongCode:
        attempt.failed(subject=user.username, context=context, details={"purpose": purpose})
        observability.count("SecondFactorRefused")
        raise
    except Exception:
        attempt.not_evaluated()  # KMS or DynamoDB failed: the code was never judged.
        raise
    observability.count("SecondFactorAccepted")
    event = audit.new_event(
        audit.EventType.MFA_SUCCESS,
        "success",
        context=context,
        subject=user.username,
        details={"factor": factor.kind, "factor_id": factor.factor_id, "purpose": purpose},
        clock=clock,
    )
    return Verified(event, attempt)


# ---------------------------------------------------------------- new SMS and e-mail factors


def start_contact_factor(
    username: str, kind: str, destination: str, *, clock: Clock = SYSTEM_CLOCK
) -> Factor:
    """A pending SMS or e-mail factor; it becomes usable only after its first code (S11).

    ``destination`` is already validated (E.164 by ``phone.normalize``, or an e-mail
    address by ``clean_email_address``).
    """
    method = registry.get(kind)
    if method.channel is None:
        raise ValueError(f"not a method that sends codes: {kind!r}")
    factors.ensure_room_for_another(username)
    factor = Factor(
        username,
        factors.new_factor_id(),
        kind=method.kind.value,
        label=method.label,
        status="pending",
        is_default=False,
        created_at=clock.now(),
    )
    setattr(factor, method.channel.destination_attribute, destination)
    factor.save(condition=Factor.factor_id.does_not_exist())
    return factor
