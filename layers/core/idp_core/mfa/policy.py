"""The MFA settings (default and allowed methods, enrolment at sign-in, SMS limits) and the
per-app authentication policy.

``MfaSettings`` and ``SmsLimits`` validate themselves when they are built (also through
``dataclasses.replace``), so an invalid combination can never be saved: the caller gets
``BadRequest`` with a sentence and nothing is written (S26).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from time import monotonic as time_monotonic
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from idp_core import audit, observability
from idp_core.adaptive.policies import NO_POLICY, get_policy
from idp_core.apps import get_app
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.config import MessagingConfig
from idp_core.errors import BadRequest, NotFound
from idp_core.mfa import methods as registry
from idp_core.mfa.methods import MethodKind
from idp_core.models import App, KeyValue, condition_failed
from idp_core.ttl_cache import TtlCache

SETTINGS_KEY = "mfa-settings"
# Every sign-in step reads the settings; a container keeps them this long, so a change
# made elsewhere (the CLI, another container's console) applies everywhere within it.
SETTINGS_CACHE_SECONDS = 30.0
DEFAULT_COUNTRIES = ("US", "CA", "GB", "DE", "FR", "NL", "IE", "AU", "IN")
MAX_COUNTRIES = 250

_LOG = observability.logger

# (lowest, highest) accepted value of each SMS limit: high enough for a large company,
# low enough that a typo cannot switch the pumping protection off (S9).
LIMIT_BOUNDS: dict[str, tuple[int, int]] = {
    "per_user_per_hour": (1, 100),
    "per_number_per_day": (1, 1000),
    "per_ip_per_hour": (1, 10_000),
    "account_per_day": (1, 1_000_000),
    "first_resend_wait_seconds": (5, 3600),
}
LIMIT_LABELS = {
    "per_user_per_hour": "SMS per user per hour",
    "per_number_per_day": "SMS per phone number per day",
    "per_ip_per_hour": "SMS per source IP address per hour",
    "account_per_day": "SMS per day for the whole account",
    "first_resend_wait_seconds": "Seconds before the first resend",
}


def _supported_regions() -> frozenset[str]:
    import phonenumbers

    return frozenset(phonenumbers.SUPPORTED_REGIONS)


@dataclass(frozen=True)
class SmsLimits:
    """S9: SMS pumping limits and the countries codes may be sent to."""

    per_user_per_hour: int = 5
    per_number_per_day: int = 10
    per_ip_per_hour: int = 20
    account_per_day: int = 1000
    # The wait before the first resend of one transaction; it doubles with each resend.
    first_resend_wait_seconds: int = 30
    allowed_countries: tuple[str, ...] = DEFAULT_COUNTRIES

    def __post_init__(self) -> None:
        for name, (low, high) in LIMIT_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise BadRequest(f"{LIMIT_LABELS[name]} must be a whole number from {low} to {high}.")
        countries = self.allowed_countries
        if isinstance(countries, str) or not isinstance(countries, Iterable):
            raise BadRequest("The SMS countries must be a list of two-letter country codes.")
        cleaned: list[str] = []
        supported = _supported_regions()
        for raw in countries:
            code = raw.strip().upper() if isinstance(raw, str) else ""
            if code not in supported:
                raise BadRequest(f"{raw!r} is not a known two-letter country code (e.g. US, GB, DE).")
            if code not in cleaned:
                cleaned.append(code)
        if len(cleaned) > MAX_COUNTRIES:
            raise BadRequest(f"At most {MAX_COUNTRIES} SMS countries can be listed.")
        object.__setattr__(self, "allowed_countries", tuple(cleaned))


@dataclass(frozen=True)
class MfaSettings:
    """Which second factors end users are offered, and how SMS is limited."""

    default_method: str = MethodKind.TOTP.value
    allowed_methods: tuple[str, ...] = field(default_factory=registry.kinds)
    # Users without an active factor must set one up at their next sign-in (S11).
    enrol_at_sign_in: bool = True
    sms: SmsLimits = field(default_factory=SmsLimits)
    # Security keys: whether they must verify the user (PIN, biometrics) as a second factor,
    # and the models (AAGUIDs) an admin allows; with a list, keys must attest their model.
    webauthn_user_verification: str = "preferred"
    webauthn_models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_webauthn(self)
        allowed = _clean_methods(self.allowed_methods, what="allowed methods")
        if not allowed:
            raise BadRequest("Allow at least one second-factor method.")
        if not registry.is_known(self.default_method):
            raise BadRequest(f"The default method must be one of: {', '.join(registry.kinds())}.")
        if self.default_method not in allowed:
            raise BadRequest(
                f"The default method ({registry.label(self.default_method)}) "
                "must be one of the allowed methods."
            )
        # S8: SMS is a restricted authenticator and never the only choice offered by default;
        # its limits and countries are settings of their own (``sms``).
        if not set(allowed) - {MethodKind.SMS}:
            raise BadRequest(
                "Text message (SMS) cannot be the only method offered: allow at least one other method."
            )
        if not isinstance(self.enrol_at_sign_in, bool):
            raise BadRequest("Enrolment at sign-in must be on or off.")
        if not isinstance(self.sms, SmsLimits):
            raise BadRequest("The SMS limits are missing.")
        if MethodKind.SMS in allowed and not self.sms.allowed_countries:
            raise BadRequest("List at least one country SMS codes may be sent to, or do not allow SMS.")
        object.__setattr__(self, "allowed_methods", allowed)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MfaSettings:
        sms = data.get("sms") or {}
        if not isinstance(sms, Mapping):
            raise BadRequest("The SMS limits must be a mapping.")
        limits = SmsLimits(
            **{  # type: ignore[arg-type]  # SmsLimits checks every value itself.
                name: (tuple(value) if name == "allowed_countries" else value)
                for name, value in sms.items()
                if name in SmsLimits.__dataclass_fields__
            }
        )
        return cls(
            default_method=data.get("default_method", MethodKind.TOTP.value),
            allowed_methods=tuple(data.get("allowed_methods", registry.kinds())),
            enrol_at_sign_in=data.get("enrol_at_sign_in", True),
            sms=limits,
            webauthn_user_verification=data.get("webauthn_user_verification", "preferred"),
            webauthn_models=tuple(data.get("webauthn_models", ())),
        )


USER_VERIFICATION_CHOICES = ("preferred", "required")
MAX_WEBAUTHN_MODELS = 100
_AAGUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _check_webauthn(settings: MfaSettings) -> None:
    if settings.webauthn_user_verification not in USER_VERIFICATION_CHOICES:
        raise BadRequest("User verification for security keys is either preferred or required.")
    models = settings.webauthn_models
    if isinstance(models, str) or not isinstance(models, Iterable):
        raise BadRequest("The allowed security key models must be a list of AAGUIDs.")
    cleaned: list[str] = []
    for raw in models:
        model = raw.strip().lower() if isinstance(raw, str) else ""
        if not _AAGUID.fullmatch(model):
            raise BadRequest(f"{raw!r} is not an AAGUID (like 2fc0579f-8113-47ea-b116-bb5a8db9202a).")
        if model not in cleaned:
            cleaned.append(model)
    if len(cleaned) > MAX_WEBAUTHN_MODELS:
        raise BadRequest(f"At most {MAX_WEBAUTHN_MODELS} security key models can be listed.")
    object.__setattr__(settings, "webauthn_models", tuple(cleaned))


def _clean_methods(chosen_methods: object, *, what: str) -> tuple[str, ...]:
    """Methods in the pages' order, without repeats; ``BadRequest`` naming an unknown one."""
    known = registry.kinds()
    if isinstance(chosen_methods, str) or not isinstance(chosen_methods, Iterable):
        raise BadRequest(f"The {what} must be a list of: {', '.join(known)}.")
    chosen = set()
    for method in chosen_methods:
        if not registry.is_known(method):
            raise BadRequest(f"{method!r} is not a second-factor method; choose from {', '.join(known)}.")
        chosen.add(method)
    return tuple(method.value for method in known if method in chosen)


def sms_countries(settings: MfaSettings, messaging: MessagingConfig) -> tuple[str, ...]:
    """The countries texts may go to: the admin's list, within the deployment's bound if it has one."""
    allowed = settings.sms.allowed_countries
    if messaging.sms_countries:
        return tuple(code for code in allowed if code in messaging.sms_countries)
    return allowed


# Read through ``_monotonic`` so that tests move this container's time.
_monotonic = time_monotonic
# Settings table name -> the settings this container read.
_settings: TtlCache[str, MfaSettings] = TtlCache(SETTINGS_CACHE_SECONDS, now=lambda: _monotonic())


def load_settings() -> MfaSettings:
    """The stored settings (cached for ``SETTINGS_CACHE_SECONDS``), or the safe defaults when
    none are stored or the item is damaged."""
    table = KeyValue.Meta.table_name
    cached = _settings.get(table)
    if cached is not None:
        return cached
    return _settings.put(table, _read_settings())


def forget_cached_settings() -> None:
    """Read the settings from the table next time (tests that write the item directly)."""
    _settings.clear()


def settings_read_with(item: KeyValue | None) -> MfaSettings:
    """The settings from their item (None: not stored), read by the caller in a request it
    makes anyway (the sign-in's BatchGetItem); the container's cached copy is refreshed."""
    return _settings.put(KeyValue.Meta.table_name, _settings_from(item))


def _read_settings() -> MfaSettings:
    try:
        item = KeyValue.get(SETTINGS_KEY)
    except KeyValue.DoesNotExist:
        item = None
    return _settings_from(item)


def _settings_from(item: KeyValue | None) -> MfaSettings:
    if item is None:
        return MfaSettings()
    try:
        data = json.loads(item.value)
        if not isinstance(data, Mapping):
            raise BadRequest("not a JSON object")
        return MfaSettings.from_mapping(data)
    except (ValueError, TypeError, BadRequest) as exc:
        # The defaults are the strict choice: a damaged item must not lock everyone out.
        _LOG.error("stored MFA settings are invalid, using the defaults: %s", exc)
        return MfaSettings()


def save_settings(
    settings: MfaSettings, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> MfaSettings:
    """Store validated settings and record who changed what (S25)."""
    if not isinstance(settings, MfaSettings):
        raise BadRequest("MFA settings are required.")
    checked = MfaSettings.from_mapping(asdict(settings))  # Validates again, also a hand-built instance.
    KeyValue(SETTINGS_KEY, value=checked.to_json(), updated_at=clock.now()).save()
    _settings.put(KeyValue.Meta.table_name, checked)
    audit.record(
        audit.EventType.MFA_SETTINGS_CHANGED,
        "success",
        context=context,
        details={
            "default_method": checked.default_method,
            "allowed_methods": ",".join(checked.allowed_methods),
            "enrol_at_sign_in": checked.enrol_at_sign_in,
            "sms_countries": ",".join(checked.sms.allowed_countries),
            "webauthn_user_verification": checked.webauthn_user_verification,
            "webauthn_models": ",".join(checked.webauthn_models),
            **{f"sms_{name}": getattr(checked.sms, name) for name in LIMIT_BOUNDS},
        },
        clock=clock,
    )
    return checked


def set_app_policy(
    app_name: str,
    *,
    mfa_required: bool | None = None,
    methods: Iterable[str] | None = None,
    adaptive: str | None = None,
    phishing_resistant_only: bool | None = None,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> App:
    """Change an app's authentication policy; ``None`` leaves that part unchanged.

    ``methods`` are the second factors the app accepts; an empty list clears the app's own
    list, so it accepts every method the MFA settings allow (as the console says).

    ``adaptive`` names the adaptive policy every sign-in to the app passes; ``"none"`` (or
    an empty name) removes it. The policy must exist: it is looked up before anything is
    written, so a typo can never leave an app pointing at nothing.
    """
    if mfa_required is not None and not isinstance(mfa_required, bool):
        raise BadRequest("MFA for an app is either required or off.")
    if phishing_resistant_only is not None and not isinstance(phishing_resistant_only, bool):
        raise BadRequest("Phishing-resistant only is either on or off.")
    cleaned = None if methods is None else _clean_methods(methods, what="app's methods")
    adaptive_name = None if adaptive is None else _adaptive_policy_name(adaptive)
    app = get_app(app_name)
    actions: list[Action] = []
    if mfa_required is not None:
        actions.append(App.mfa_required.set(mfa_required))
    if cleaned is not None:
        actions.append(App.mfa_methods.set(set(cleaned)) if cleaned else App.mfa_methods.remove())
    if phishing_resistant_only is not None:
        actions.append(App.phishing_resistant_only.set(phishing_resistant_only))
    if adaptive_name is not None:
        actions.append(
            App.adaptive_policy.set(adaptive_name) if adaptive_name else App.adaptive_policy.remove()
        )
    if actions:
        try:
            app.update(actions=actions, condition=App.name.exists())
        except UpdateError as exc:
            if condition_failed(exc):
                raise NotFound(f"There is no app {app_name!r}.") from exc
            raise
    audit.record(
        audit.EventType.APP_MFA_POLICY_CHANGED,
        "success",
        context=context,
        subject=app.name,
        details={
            "mfa_required": bool(app.mfa_required),
            "methods": ",".join(sorted(app.mfa_methods)) if app.mfa_methods else "(allowed methods)",
            "adaptive": app.adaptive_policy or NO_POLICY,
            "phishing_resistant_only": bool(app.phishing_resistant_only),
        },
        clock=clock,
    )
    return app


def _adaptive_policy_name(raw: str) -> str:
    """The stored name of an existing adaptive policy, or "" for ``none``; ``NotFound`` or
    ``BadRequest`` with a sentence otherwise."""
    if not isinstance(raw, str):
        raise BadRequest("Name an adaptive policy, or none.")
    if raw.strip().lower() in ("", NO_POLICY):
        return ""
    return get_policy(raw).name


def app_methods(app: App, settings: MfaSettings) -> tuple[str, ...]:
    """The second factors ``app`` accepts, the settings' default first, then in page order.

    An app without its own list accepts every method the settings allow; an app's own list
    counts only within them (S28): a method the admin no longer allows completes no sign-in.
    Hardware tokens, which users cannot add themselves, count like any other allowed method.
    A phishing-resistant-only app keeps only the methods of that tier (security keys).
    """
    allowed = set(settings.allowed_methods)
    chosen = allowed.intersection(app.mfa_methods) if app.mfa_methods else allowed
    if app.phishing_resistant_only:
        chosen = {method for method in chosen if registry.tier(method) == registry.Tier.PHISHING_RESISTANT}
    ordered = [method.value for method in registry.kinds() if method in chosen]
    if settings.default_method in ordered:
        ordered.remove(settings.default_method)
        ordered.insert(0, settings.default_method)
    return tuple(ordered)
