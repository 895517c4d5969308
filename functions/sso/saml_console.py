"""The page code of the admin console's SAML apps (``saml_admin_routes``): the form's
choices and values, and the settings and service provider it describes. Apart from the
routes, so that the SAML apps' logic and the SP metadata parser load with the first SAML
app page, not with the sso function's cold start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from functions.sso.admin_routes import _checked_groups, _page
from idp_core import accounts, saml_apps, web
from idp_core.errors import BadRequest
from idp_core.models import App, Group
from idp_core.resolver import Response
from idp_core.saml.sp_metadata import SpMetadata, parse_sp_metadata

TEMPLATE = "app_saml.html"
_TEXT = ("name", "display_name", "metadata", "entity_id", "acs_url", "certificate", "slo_url", "attributes")


def choices() -> dict[str, Any]:
    return {
        "name_id_formats": tuple(saml_apps.NAMEID_FORMATS),
        "name_id_sources": saml_apps.NAMEID_SOURCES["unspecified"],
        "attribute_name_formats": tuple(saml_apps.ATTRNAME_FORMATS),
        "signing_choices": saml_apps.SIGNING_CHOICES,
        "user_fields": saml_apps.USER_FIELDS,
    }


def context(form: Mapping[str, str], groups: Sequence[Group], app: App | None = None) -> dict[str, Any]:
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
        **choices(),
    }


def form_of(app: App) -> dict[str, str]:
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


def settings(form: Mapping[str, str], current: SpMetadata | None) -> saml_apps.SamlAppSettings:
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


def saml_app_page(req: web.WebRequest, app: App) -> Response[str]:
    """The page of a SAML app (``admin_routes.app_page`` serves it for apps of this kind)."""
    return _page(
        req,
        TEMPLATE,
        launch_url=req.absolute_url(f"/apps/{app.name}/launch"),
        metadata_url=req.absolute_url("/saml/metadata"),
        **context(form_of(app), accounts.list_groups(), app),
    )
