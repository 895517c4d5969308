"""SAML apps of kind "saml": any SAML 2.0 service provider (SP) beside the AWS console apps.

An SP is registered from its metadata (or the same facts by hand) and stored on its ``App``
item as ``SpConfig`` (JSON in ``App.sp``): where Responses may go (only the ACS endpoints of
its metadata, never a URL from a request), the certificates its requests are checked with,
how the user is named (NameID) and which attributes the assertion carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from idp_core import audit
from idp_core.apps import display_name_of, get_app, list_apps, roles_for_user, save_new_app, update_app
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest, Conflict, Forbidden
from idp_core.groups import enabled_groups, existing_groups
from idp_core.models import App, User
from idp_core.names import canonical_app_name
from idp_core.saml.sp_metadata import (
    BINDING_POST,
    BINDING_REDIRECT,
    Endpoint,
    MetadataRejected,
    SpMetadata,
    check_certificate,
    check_endpoint_url,
    check_entity_id,
)

KIND = "saml"
NAMEID_FORMATS = {
    "persistent": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "email": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "transient": "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
    "unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
}
ATTRNAME_FORMATS = {
    "basic": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
    "uri": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
    "unspecified": "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
}
# The user fields an assertion can carry; "groups" is the user's enabled groups, many values.
USER_FIELDS = ("username", "email", "display_name", "groups")
# Which user field a NameID of each format may come from (the first is the default). A
# persistent NameID is an opaque per-app id and a transient one random per assertion: neither
# reveals the username.
NAMEID_SOURCES = {
    "persistent": ("opaque-id",),
    "email": ("email",),
    "transient": ("random",),
    "unspecified": ("username", "email"),
}
SIGNING_CHOICES = ("both", "response", "assertion")
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_NAME_CHARS = 256


class NameIdUnavailable(Forbidden):
    """The user lacks the field the app names users by (e.g. no e-mail address)."""


@dataclass(frozen=True)
class AttributeMapping:
    name: str
    source: str
    name_format: str


@dataclass(frozen=True)
class SpConfig:
    """What this IdP knows of one SP, as stored on its app."""

    entity_id: str
    acs: tuple[Endpoint, ...]
    certificates: tuple[str, ...]
    requests_signed: bool
    name_id_format: str
    name_id_source: str
    name_id_salt: str
    sign_response: bool = True
    sign_assertion: bool = True
    slo: tuple[Endpoint, ...] = ()
    attributes: tuple[AttributeMapping, ...] = ()
    groups: tuple[str, ...] = ()  # who may use the app; empty: every enabled user

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SpConfig:
        raw = json.loads(text)
        return cls(
            **{
                **raw,
                "acs": tuple(Endpoint(**endpoint) for endpoint in raw["acs"]),
                "slo": tuple(Endpoint(**endpoint) for endpoint in raw.get("slo", ())),
                "certificates": tuple(raw["certificates"]),
                "attributes": tuple(AttributeMapping(**mapping) for mapping in raw.get("attributes", ())),
                "groups": tuple(raw.get("groups", ())),
            }
        )

    def metadata(self) -> SpMetadata:
        return SpMetadata(self.entity_id, self.acs, self.slo, self.certificates, self.requests_signed)

    def name_id_format_uri(self) -> str:
        return NAMEID_FORMATS[self.name_id_format]

    def acs_for(self, *, url: str | None = None, index: str | None = None) -> Endpoint:
        """The ACS endpoint a request names (by URL or index) or the default one; only ever one of
        the SP's metadata (no open redirect), and only with the HTTP-POST binding."""
        post = [endpoint for endpoint in self.acs if endpoint.binding == BINDING_POST]
        if url is not None:
            for endpoint in post:
                if endpoint.url == url:
                    return endpoint
            raise BadRequest(
                "The request's AssertionConsumerServiceURL is not an assertion consumer service in the "
                "SP's metadata; nothing is sent there."
            )
        if index is not None:
            for endpoint in post:
                if str(endpoint.index) == index:
                    return endpoint
            raise BadRequest(
                f"The request's AssertionConsumerServiceIndex {index[:8]!r} names no HTTP-POST assertion "
                "consumer service in the SP's metadata."
            )
        return self.metadata().default_acs()

    def logout_endpoint(self) -> Endpoint | None:
        """Where LogoutResponses go: the SP's POST SLO endpoint, else its Redirect one."""
        for binding in (BINDING_POST, BINDING_REDIRECT):
            for endpoint in self.slo:
                if endpoint.binding == binding:
                    return endpoint
        return None


@dataclass(frozen=True)
class SamlAppSettings:
    """What an admin chooses for a SAML app (CLI options or the console's form)."""

    sp: SpMetadata
    name_id_format: str = "persistent"
    name_id_source: str | None = None
    attributes: Sequence[tuple[str, str]] = ()  # (attribute name, user field)
    attribute_name_format: str | None = None  # None: uri for URN names, basic for the others
    signing: str = "both"
    require_signed_requests: bool = False
    groups: Sequence[str] = ()
    display_name: str | None = None
    mfa_required: bool = True


def sp_by_hand(
    *, entity_id: str, acs_url: str, certificate: str | None = None, slo_url: str | None = None
) -> SpMetadata:
    """The facts of SP metadata typed in by an admin: one ACS (HTTP-POST), optional SLO and certificate."""
    slo = (Endpoint(BINDING_POST, check_endpoint_url(slo_url, "single logout URL")),) if slo_url else ()
    return SpMetadata(
        entity_id=check_entity_id(entity_id),
        acs=(Endpoint(BINDING_POST, check_endpoint_url(acs_url, "ACS URL"), 0, True),),
        slo=slo,
        certificates=(check_certificate(certificate),) if certificate else (),
        requests_signed=False,
    )


def _attribute_mappings(settings: SamlAppSettings) -> tuple[AttributeMapping, ...]:
    if len(settings.attributes) > MAX_ATTRIBUTES:
        raise BadRequest(f"An app sends at most {MAX_ATTRIBUTES} attributes.")
    explicit = settings.attribute_name_format
    if explicit is not None and explicit not in ATTRNAME_FORMATS:
        raise BadRequest(f"The attribute name format is one of {', '.join(ATTRNAME_FORMATS)}.")
    mappings = []
    for name, source in settings.attributes:
        name, source = name.strip(), source.strip()
        if not name or len(name) > MAX_ATTRIBUTE_NAME_CHARS or not name.isprintable():
            raise BadRequest(f"An attribute name is 1-{MAX_ATTRIBUTE_NAME_CHARS} printable characters.")
        if source not in USER_FIELDS:
            raise BadRequest(
                f"The attribute {name!r} comes from one of {', '.join(USER_FIELDS)}, not {source!r}."
            )
        name_format = explicit or ("uri" if name.startswith("urn:") else "basic")
        mappings.append(AttributeMapping(name, source, ATTRNAME_FORMATS[name_format]))
    return tuple(mappings)


def _config(settings: SamlAppSettings, salt: str) -> SpConfig:
    if settings.name_id_format not in NAMEID_FORMATS:
        raise BadRequest(f"The NameID format is one of {', '.join(NAMEID_FORMATS)}.")
    sources = NAMEID_SOURCES[settings.name_id_format]
    source = settings.name_id_source or sources[0]
    if source not in sources:
        raise BadRequest(
            f"A {settings.name_id_format} NameID comes from {' or '.join(sources)}, not {source!r}."
        )
    if settings.signing not in SIGNING_CHOICES:
        raise BadRequest(f"What is signed is one of {', '.join(SIGNING_CHOICES)}.")
    requests_signed = settings.require_signed_requests or settings.sp.requests_signed
    if requests_signed and not settings.sp.certificates:
        raise MetadataRejected("Signed requests need the SP's signing certificate; none was given.")
    return SpConfig(
        entity_id=settings.sp.entity_id,
        acs=settings.sp.acs,
        slo=settings.sp.slo,
        certificates=settings.sp.certificates,
        requests_signed=requests_signed,
        name_id_format=settings.name_id_format,
        name_id_source=source,
        name_id_salt=salt,
        sign_response=settings.signing in ("both", "response"),
        sign_assertion=settings.signing in ("both", "assertion"),
        attributes=_attribute_mappings(settings),
        groups=tuple(sorted(existing_groups(settings.groups))),
    )


def _taken_entity_id(entity_id: str, except_app: str | None = None) -> None:
    # Requests are matched to apps by their Issuer, so one SP entity id names one app.
    for app in App.scan(App.kind == KIND):
        if app.audience == entity_id and app.name != except_app:
            raise Conflict(f"The SP {entity_id!r} is already the app {app.name!r}.")


def create_saml_app(
    name: str, settings: SamlAppSettings, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> App:
    """Register an SP as an app; like an AWS app it requires a second factor unless told otherwise."""
    app_name = canonical_app_name(name)
    config = _config(settings, secrets.token_urlsafe(32))
    _taken_entity_id(config.entity_id)
    default_acs = config.metadata().default_acs()
    app = App(
        app_name,
        display_name=display_name_of(settings.display_name, app_name),
        kind=KIND,
        # The AWS fields: unused by an SP, which has no account, provider or roles.
        account_id="",
        provider_name="",
        relay_state="",
        acs_url=default_acs.url,
        audience=config.entity_id,
        sp=config.to_json(),
        mfa_required=bool(settings.mfa_required),
        created_at=clock.now(),
    )
    save_new_app(app)
    audit.record(
        audit.EventType.APP_CREATED,
        "success",
        context=context,
        subject=app_name,
        details={"kind": KIND, "entity_id": config.entity_id, "mfa_required": app.mfa_required},
        clock=clock,
    )
    return app


def update_saml_app(
    name: str, settings: SamlAppSettings, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> App:
    """Replace a SAML app's SP settings; its persistent NameIDs stay the same (the salt is kept)."""
    app = get_app(name)
    config = _config(settings, sp_config(app).name_id_salt)  # sp_config refuses another kind of app.
    _taken_entity_id(config.entity_id, except_app=app.name)
    update_app(
        app,
        [
            App.display_name.set(display_name_of(settings.display_name, app.name)),
            App.audience.set(config.entity_id),
            App.acs_url.set(config.metadata().default_acs().url),
            App.sp.set(config.to_json()),
        ],
    )
    audit.record(
        audit.EventType.APP_UPDATED,
        "success",
        context=context,
        subject=app.name,
        details={"kind": KIND, "entity_id": config.entity_id},
        clock=clock,
    )
    return app


def sp_config(app: App) -> SpConfig:
    if app.kind != KIND or not app.sp:
        raise BadRequest(f"The app {app.name!r} is not a SAML app.")
    return SpConfig.from_json(str(app.sp))


def may_use(config: SpConfig, groups: set[str]) -> bool:
    return not config.groups or bool(groups.intersection(config.groups))


def name_id_for(config: SpConfig, user: User) -> str:
    """The user's NameID at this SP: an opaque per-app id (persistent), a random one (transient),
    or the field the app names."""
    source = config.name_id_source
    if source == "opaque-id":
        digest = hmac.new(config.name_id_salt.encode(), user.username.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    if source == "random":
        return "_" + secrets.token_hex(16)
    value = user_field(user, source, set())
    if not value:
        raise NameIdUnavailable(
            f"This app names users by their {source.replace('_', ' ')}, and your account has none. "
            "Ask an administrator to add it."
        )
    return value[0]


def user_field(user: User, source: str, groups: set[str]) -> list[str]:
    if source == "groups":
        return sorted(groups)
    if source == "username":
        return [str(user.display_username)]
    value = getattr(user, source, None)
    return [str(value)] if value else []


def attribute_values(
    config: SpConfig, user: User, groups: set[str]
) -> list[tuple[AttributeMapping, list[str]]]:
    """The app's attributes with the user's values; one the user has no value for is left out."""
    found = [(mapping, user_field(user, mapping.source, groups)) for mapping in config.attributes]
    return [(mapping, values) for mapping, values in found if values]


def apps_for_user(user: User) -> list[App]:
    """Enabled apps the user may open: AWS apps that give a role, SAML apps that let the user in."""
    if user.disabled:
        return []
    groups = enabled_groups(user)
    return [
        app
        for app in list_apps()
        if not app.disabled
        and (may_use(sp_config(app), groups) if app.kind == KIND else roles_for_user(app, groups))
    ]
