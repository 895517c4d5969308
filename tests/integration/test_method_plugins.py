"""Second-factor methods are plug-ins (issue 14 point 2): a method registered in
``idp_core.mfa.methods`` is offered, labelled, ranked, allowed by the policy and checked by the
flow without an edit anywhere else, in the flow's security order (lock first, the target's
methods next, audit always); a kind nobody registered is refused with a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

import pytest

from idp_core import accounts, audit, sessions
from idp_core import mfa_pages as pages
from idp_core.clock import FakeClock
from idp_core.config import LockoutPolicy, Tables
from idp_core.errors import BadRequest
from idp_core.lockout import AccountLocked
from idp_core.mfa import WrongCode, factors, flow
from idp_core.mfa import methods as registry
from idp_core.mfa.delivery import Senders
from idp_core.mfa.methods import CodeCheck, Enrolment, MethodKind, Tier, UnknownMethod
from idp_core.mfa.policy import MfaSettings, app_methods
from idp_core.models import App, Factor, Session, User
from tests.helpers.scope import scope_at

BUILT_IN = ("totp", "sms", "email", "backup", "token", "webauthn")


class FutureKind(StrEnum):
    # A method of a test's own, in the place of the real security keys (whose lockout
    # counters it uses).
    WEBAUTHN = "webauthn"


@dataclass
class FakeSecurityKey:
    """A method of its own, as the next issue's module will be; it records what it is asked."""

    kind = FutureKind.WEBAUTHN
    label = "Security key or passkey"
    tier = Tier.AUTHENTICATOR
    enrolment = Enrolment(path="/me/mfa/webauthn", post=True)
    channel = None
    prompt = "Touch your security key."
    inputmode = "text"
    max_code_chars = 64
    checked: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)

    def clean_code(self, code: str) -> str:
        if not code.startswith("assertion:"):
            raise BadRequest("That is not an answer of a security key.")
        return code

    def is_usable(self, factor: Factor) -> bool:
        return True

    def verify(self, factor: Factor, code: str, check: CodeCheck) -> None:
        self.checked.append(code)
        if code != "assertion:good":
            raise WrongCode()

    def removed(self, factor: Factor) -> bool:
        self.removed_ids.append(factor.factor_id)
        return False


@pytest.fixture
def security_key() -> Iterator[FakeSecurityKey]:
    method = FakeSecurityKey()
    real = registry.get("webauthn")
    registry.unregister("webauthn")
    registry.register(method)  # type: ignore[arg-type]  # A method of the test's own.
    yield method
    registry.unregister(method.kind)
    registry.register(real)


def _factor(kind: str, *, username: str = "alice", status: str = "active", **extra: object) -> Factor:
    return Factor(
        username,
        f"{kind}-1",
        kind=kind,
        label="Mine",
        status=status,
        is_default=False,
        created_at=1.0,
        **extra,
    )


def test_the_built_in_methods_keep_their_stored_values_labels_and_tiers() -> None:
    assert registry.kinds() == BUILT_IN
    assert [kind.value for kind in MethodKind] == list(BUILT_IN)
    assert [registry.label(kind) for kind in BUILT_IN] == [
        "Authenticator app",
        "Text message (SMS)",
        "E-mail",
        "Backup codes",
        "Hardware token",
        "Security key or passkey",
    ]
    # S28: security keys above authenticator app, hardware token and backup codes, above SMS and e-mail.
    assert {kind: registry.tier(kind) for kind in BUILT_IN} == {
        "webauthn": Tier.PHISHING_RESISTANT,
        "totp": Tier.AUTHENTICATOR,
        "token": Tier.AUTHENTICATOR,
        "backup": Tier.AUTHENTICATOR,
        "sms": Tier.RESTRICTED,
        "email": Tier.RESTRICTED,
    }
    assert [kind for kind in BUILT_IN if registry.channel(kind) is not None] == ["sms", "email"]
    # A hardware token is assigned by an administrator, never set up on /me/mfa.
    assert [kind for kind in BUILT_IN if registry.get(kind).enrolment is None] == ["token"]
    # Each module, once imported, is the method its listing named and ranked.
    methods = [registry.get(kind) for kind in BUILT_IN]
    assert [(method.kind, method.label, method.tier) for method in methods] == [
        (listed.kind, listed.label, listed.tier) for listed in registry.BUILT_IN
    ]


def test_a_listing_that_does_not_match_its_module_fails_when_the_module_is_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Naming and ranking a method read its listing without importing its module; should the
    two ever disagree, the first use of the module says so instead of ranking it wrongly."""
    wrong = registry.Listed(MethodKind.SMS, "Text message (SMS)", Tier.AUTHENTICATOR, "sms")
    monkeypatch.setitem(registry._REGISTRY, "sms", wrong)
    assert registry.tier("sms") == Tier.AUTHENTICATOR
    with pytest.raises(RuntimeError, match="the module of the 'sms' method does not match its listing"):
        registry.get("sms")


def test_a_registered_method_is_allowed_labelled_offered_and_ranked_without_edits_elsewhere(
    security_key: FakeSecurityKey,
) -> None:
    assert registry.kinds() == BUILT_IN
    # The policy knows it: allowed, a default, an app's own list, in the pages' order.
    settings = MfaSettings(default_method="webauthn", allowed_methods=("webauthn", "sms", "totp"))
    assert settings.allowed_methods == ("totp", "sms", "webauthn")
    app = App("console", mfa_methods={"webauthn", "totp"})
    assert app_methods(app, settings) == ("webauthn", "totp")
    # Its label everywhere a method is named.
    assert flow.methods_label(("totp", "webauthn")) == ["Authenticator app", "Security key or passkey"]
    assert str(flow.NoAcceptedFactor(["webauthn"])).count("Security key or passkey") == 1
    key = _factor("webauthn")
    assert factors.describe(key) == "Security key or passkey (Mine)"
    # The challenge page shows its prompt and keyboard, and no "Send code".
    choice = pages.factor_choice(key)
    assert (choice["kind_label"], choice["prompt"], choice["inputmode"]) == (
        "Security key or passkey",
        "Touch your security key.",
        "text",
    )
    assert choice["sends_code"] is False and choice["destination"] is None
    # Its tier ranks it: with a key, a step-up no longer accepts SMS (S28).
    sms = _factor("sms", phone="+447400123456")
    assert flow.strongest_tier([key, sms], settings.allowed_methods) == Tier.AUTHENTICATOR
    assert flow.accepted_methods(None, settings, [key, sms]) == ("totp", "webauthn")
    assert [f.kind for f in flow.order_factors([sms, key], ("webauthn", "sms"))] == ["webauthn", "sms"]
    # Its own code shape applies before anything is written.
    with pytest.raises(BadRequest, match="not an answer of a security key"):
        flow.check_code_shape(key, "123456")
    # It sends nothing: asking it to send a code is refused before any lookup.
    with pytest.raises(BadRequest, match="does not send codes"):
        flow.send_code(
            flow.Challenge(User("alice"), Session("h"), "t", "signin"), key, scope_at(),
            mfa_settings=settings, senders=Senders(sns=None, ses=None),
        )  # fmt: skip


def test_a_fresh_proof_of_a_registered_method_counts_for_its_tier(security_key: FakeSecurityKey) -> None:
    clock = FakeClock(1767225600.0)
    settings = MfaSettings(allowed_methods=("totp", "sms", "webauthn"))
    session = Session("h", username="alice", second_factor_proofs={"webauthn": clock.now()})
    # The strongest tier any allowed method has is proven: no factor is even looked up (no AWS here).
    flow.ensure_fresh_strongest_factor(session, User("alice"), settings, max_age_seconds=300, clock=clock)


def test_a_kind_nobody_registered_is_refused_with_a_clear_error() -> None:
    with pytest.raises(UnknownMethod, match="'carrier-pigeon' is not a registered second-factor method"):
        registry.get("carrier-pigeon")
    with pytest.raises(UnknownMethod):
        registry.tier("carrier-pigeon")
    assert not registry.is_known("carrier-pigeon") and registry.channel("carrier-pigeon") is None
    with pytest.raises(BadRequest, match="'carrier-pigeon' is not a second-factor method"):
        MfaSettings(allowed_methods=("totp", "carrier-pigeon"))
    # A registered kind cannot be replaced behind the flow's back.
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("totp"))


# ---------------------------------------------------------------- the flow, with AWS


@pytest.fixture
def alice(tables: Tables, clock: FakeClock) -> Iterator[tuple[User, Factor, sessions.IssuedSession]]:
    accounts.create_user(accounts.NewUser("alice", password="correct horse battery staple"), clock=clock)
    key = _factor("webauthn")
    key.save()
    issued = sessions.start_session(sessions.NewSession("alice", factors={"password"}), scope_at(clock))
    yield User.get("alice"), key, issued


def _verify(
    user: User,
    key: Factor,
    issued: sessions.IssuedSession,
    code: str,
    methods: tuple[str, ...],
    clock: FakeClock,
) -> flow.Verified:
    return flow.verify_second_factor(
        flow.Challenge(user, issued.session, issued.token, "signin", methods=methods),
        key,
        code,
        scope_at(clock, lockout=LockoutPolicy(max_failures=2, failure_factor=0)),
    )


def test_the_flow_checks_a_registered_method_and_audits_it(
    security_key: FakeSecurityKey, alice: tuple[User, Factor, sessions.IssuedSession], clock: FakeClock
) -> None:
    user, key, issued = alice
    _verify(user, key, issued, "assertion:good", ("webauthn",), clock).commit()
    assert security_key.checked == ["assertion:good"]
    [event] = [e for e in audit.recent(clock=clock) if e.type == audit.EventType.MFA_SUCCESS]
    assert event.details is not None and event.details["factor"] == "webauthn"
    # Removing the factor tells its method, which frees what it holds.
    factors.remove_factor("alice", key.factor_id, clock=clock)
    assert security_key.removed_ids == [key.factor_id]


def test_attack_a_registered_method_the_target_does_not_accept_is_a_wrong_code_never_checked(
    security_key: FakeSecurityKey, alice: tuple[User, Factor, sessions.IssuedSession], clock: FakeClock
) -> None:
    user, key, issued = alice
    with pytest.raises(WrongCode):
        _verify(user, key, issued, "assertion:good", ("totp", "sms"), clock)
    assert security_key.checked == []  # S28: refused before the method looks at the answer.
    assert int(User.get("alice").fail_webauthn) == 1  # ... and counted like a wrong code.


def test_attack_a_locked_account_is_refused_before_a_registered_method_looks_at_the_answer(
    security_key: FakeSecurityKey, alice: tuple[User, Factor, sessions.IssuedSession], clock: FakeClock
) -> None:
    _, key, issued = alice
    for _attempt in range(2):
        with pytest.raises(WrongCode):
            _verify(User.get("alice"), key, issued, "assertion:bad", ("webauthn",), clock)
    security_key.checked.clear()
    with pytest.raises(AccountLocked):
        _verify(User.get("alice"), key, issued, "assertion:good", ("webauthn",), clock)
    assert security_key.checked == []  # S1: the lock is checked first, even for a right answer.
    refusals = [e for e in audit.recent(clock=clock) if e.type == audit.EventType.MFA_FAILURE]
    assert any(e.details is not None and e.details.as_dict().get("reason") == "locked" for e in refusals)
