"""The admin console's SAML apps: add a service provider (from its metadata or by hand) and
edit its settings; the app's page shows them. Disabling and deleting are the apps' own
routes (``admin_routes``), which serve every kind of app.

Like the rest of the console, each route starts with ``guard.require_admin``, reads its form
through ``web.read_form`` and calls one logic function (``idp_core.saml_apps``); a refused
form is shown again with the message and what the admin typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from functions.sso.admin_routes import (
    MAX_APP_NAME_CHARS,
    MAX_URL_CHARS,
    _actor,
    _admin,
    _checked_groups,
    _done,
    _form_names_missing_items,
    _group_fields,
    _on_error_show,
    _page,
    _path_name,
)
from idp_core import accounts, apps, saml_apps, web
from idp_core.errors import BadRequest
from idp_core.models import App, Group
from idp_core.resolver import APIGatewayRouter, Response
from idp_core.saml.sp_metadata import SpMetadata, parse_sp_metadata

router = APIGatewayRouter()

NEW_PAGE = "/admin/apps/new-saml"
TEMPLATE = "app_saml.html"
# The form's own cap on a pasted metadata document; the whole form is capped by web.forms.
MAX_METADATA_CHARS = 14 * 1024
MAX_CERTIFICATE_CHARS = 8 * 1024
SP_FIELDS = {
    "display_name": web.Field("Display name", 128, required=False),
    "metadata": web.Field("SP metadata", MAX_METADATA_CHARS, required=False),
    "entity_id": web.Field("SP entity id", 1024, required=False),
    "acs_url": web.Field("ACS URL", MAX_URL_CHARS, required=False),
    "certificate": web.Field("SP signing certificate", MAX_CERTIFICATE_CHARS, required=False),
    "slo_url": web.Field("Single logout URL", MAX_URL_CHARS, required=False),
    "name_id_format": web.Field("NameID format", 16),
    "name_id_source": web.Field("NameID from", 16, required=False),
    "attributes": web.Field("Attributes", 4096, required=False),
    "attribute_name_format": web.Field("Attribute name format", 16, required=False),
    "signing": web.Field("What is signed", 16),
    "require_signed_requests": web.Field("Require signed requests", 8, required=False),
}
NEW_FIELDS = {"name": web.Field("App name", MAX_APP_NAME_CHARS), **SP_FIELDS}
_TEXT = ("name", "display_name", "metadata", "entity_id", "acs_url", "certificate", "slo_url", "attributes")


def _choices() -> dict[str, Any]:
    return {
        "name_id_formats": tuple(saml_apps.NAMEID_FORMATS),
        "name_id_sources": saml_apps.NAMEID_SOURCES["unspecified"],
        "attribute_name_formats": tuple(saml_apps.ATTRNAME_FORMATS),
        "signing_choices": saml_apps.SIGNING_CHOICES,
        "user_fields": saml_apps.USER_FIELDS,
    }


def _context(form: Mapping[str, str], groups: Sequence[Group], app: App | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {name: form.get(name, "") for name in _TEXT}
    values.update(
        name_id_format=form.get("name_id_format", "persistent"),
        name_id_source=form.get("name_id_source", ""),
        attribute_name_format=form.get("attribute_name_format", ""),
        signing=form.get("signing", "both"),
        require_signed_requests=bool(form.get("require_signed_requests")),
    )
    return {
        "app": app,
        "config": saml_apps.sp_config(app) if app is not None else None,
        "form": values,
        "groups": groups,
        "selected": set(_checked_groups(form)),
        **_choices(),
    }


def _form_of(app: App) -> dict[str, str]:
    """The edit form's values: the app's settings as they are."""
    config = saml_apps.sp_config(app)
    explicit_formats = {mapping.name_format for mapping in config.attributes}
    by_uri = {uri: name for name, uri in saml_apps.ATTRNAME_FORMATS.items()}
    return {
        "display_name": str(app.display_name),
        "name_id_format": config.name_id_format,
        "name_id_source": config.name_id_source if config.name_id_format == "unspecified" else "",
        "attributes": "\n".join(f"{mapping.name}={mapping.source}" for mapping in config.attributes),
        "attribute_name_format": by_uri[explicit_formats.pop()] if len(explicit_formats) == 1 else "",
        "signing": "both"
        if config.sign_response and config.sign_assertion
        else ("response" if config.sign_response else "assertion"),
        "require_signed_requests": "on" if config.requests_signed else "",
        **{"group:" + group: "on" for group in config.groups},
    }


def _sp(form: Mapping[str, str], current: SpMetadata | None) -> SpMetadata:
    by_hand = any(form.get(name) for name in ("entity_id", "acs_url", "certificate", "slo_url"))
    if form.get("metadata") and by_hand:
        raise BadRequest("Paste the SP's metadata, or type its entity id and ACS URL, not both.")
    if form.get("metadata"):
        return parse_sp_metadata(form["metadata"].encode("utf-8"))
    if by_hand:
        if not (form.get("entity_id") and form.get("acs_url")):
            raise BadRequest("Without metadata, the SP's entity id and ACS URL are both needed.")
        return saml_apps.sp_by_hand(
            entity_id=form["entity_id"],
            acs_url=form["acs_url"],
            certificate=form.get("certificate"),
            slo_url=form.get("slo_url"),
        )
    if current is None:
        raise BadRequest("Paste the SP's metadata, or type its entity id and ACS URL.")
    return current


def _settings(form: Mapping[str, str], current: SpMetadata | None) -> saml_apps.SamlAppSettings:
    attributes = []
    for line in form.get("attributes", "").splitlines():
        if not line.strip():
            continue
        name, separator, source = line.strip().rpartition("=")
        if not separator or not name:
            raise BadRequest(f"Each attribute line is NAME=FIELD, got {line.strip()[:80]!r}.")
        attributes.append((name, source))
    return saml_apps.SamlAppSettings(
        sp=_sp(form, current),
        name_id_format=form["name_id_format"],
        name_id_source=form.get("name_id_source") or None,
        attributes=attributes,
        attribute_name_format=form.get("attribute_name_format") or None,
        signing=form["signing"],
        require_signed_requests=bool(form.get("require_signed_requests")),
        groups=_checked_groups(form),
        display_name=form.get("display_name"),
    )


@router.get(NEW_PAGE)
def new_saml_app_page() -> Response[str]:
    req, _ = _admin()
    return _page(req, TEMPLATE, **_context({}, accounts.list_groups()))


@router.post(NEW_PAGE)
def create_saml_app() -> Response[str]:
    req, signed_in = _admin()
    groups = accounts.list_groups()
    _on_error_show(req, TEMPLATE, **_context({}, groups))
    form = web.read_form(req, signed_in.session, {**NEW_FIELDS, **_group_fields(groups)})
    _on_error_show(req, TEMPLATE, **_context(form, groups))
    with _form_names_missing_items():
        app = saml_apps.create_saml_app(
            form["name"], _settings(form, None), context=_actor(req, signed_in), clock=req.clock
        )
    return _done(req, f"/admin/apps/{app.name}", "app-created")


def saml_app_page(req: web.WebRequest, app: App) -> Response[str]:
    """The page of a SAML app (``admin_routes.app_page`` serves it for apps of this kind)."""
    return _page(
        req,
        TEMPLATE,
        launch_url=req.absolute_url(f"/apps/{app.name}/launch"),
        metadata_url=req.absolute_url("/saml/metadata"),
        **_context(_form_of(app), accounts.list_groups(), app),
    )


@router.post("/admin/apps/<name>/saml")
def update_saml_app(name: str) -> Response[str]:
    req, signed_in = _admin()
    app = apps.get_app(_path_name(name))
    groups = accounts.list_groups()
    _on_error_show(req, TEMPLATE, **_context(_form_of(app), groups, app))
    form = web.read_form(req, signed_in.session, {**SP_FIELDS, **_group_fields(groups)})
    _on_error_show(req, TEMPLATE, **_context(form, groups, app))
    with _form_names_missing_items():
        saml_apps.update_saml_app(
            app.name,
            _settings(form, saml_apps.sp_config(app).metadata()),
            context=_actor(req, signed_in),
            clock=req.clock,
        )
    return _done(req, f"/admin/apps/{app.name}", "app-updated")
