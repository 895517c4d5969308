"""The admin console's SAML apps: add a service provider (from its metadata or by hand) and
edit its settings; the app's page shows them. Disabling and deleting are the apps' own
routes (``admin_routes``), which serve every kind of app.

Like the rest of the console, each route starts with ``guard.require_admin``, reads its form
through ``web.read_form`` and calls one logic function (``idp_core.saml_apps``); a refused
form is shown again with the message and what the admin typed.
"""

from __future__ import annotations

from functions.sso.admin_routes import (
    MAX_APP_NAME_CHARS,
    MAX_URL_CHARS,
    _actor,
    _admin,
    _done,
    _form_names_missing_items,
    _group_fields,
    _on_error_show,
    _page,
    _path_name,
)
from idp_core import accounts, apps, web
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

NEW_PAGE = "/admin/apps/new-saml"
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


# The SAML apps' logic and the SP metadata parser (``saml_console``) load with the first SAML
# app page, not with the sso function's cold start, which most often serves the sign-in.


@router.get(NEW_PAGE)
def new_saml_app_page() -> Response[str]:
    from functions.sso import saml_console

    req, _ = _admin()
    return _page(req, saml_console.TEMPLATE, **saml_console.context({}, accounts.list_groups()))


@router.post(NEW_PAGE)
def create_saml_app() -> Response[str]:
    from functions.sso import saml_console
    from idp_core import saml_apps

    req, signed_in = _admin()
    groups = accounts.list_groups()
    _on_error_show(req, saml_console.TEMPLATE, **saml_console.context({}, groups))
    form = web.read_form(req, signed_in.session, {**NEW_FIELDS, **_group_fields(groups)})
    _on_error_show(req, saml_console.TEMPLATE, **saml_console.context(form, groups))
    with _form_names_missing_items():
        app = saml_apps.create_saml_app(
            form["name"], saml_console.settings(form, None), context=_actor(req, signed_in), clock=req.clock
        )
    return _done(req, f"/admin/apps/{app.name}", "app-created")


@router.post("/admin/apps/<name>/saml")
def update_saml_app(name: str) -> Response[str]:
    from functions.sso import saml_console
    from idp_core import saml_apps

    req, signed_in = _admin()
    app = apps.get_app(_path_name(name))
    groups = accounts.list_groups()
    _on_error_show(req, saml_console.TEMPLATE, **saml_console.context(saml_console.form_of(app), groups, app))
    form = web.read_form(req, signed_in.session, {**SP_FIELDS, **_group_fields(groups)})
    _on_error_show(req, saml_console.TEMPLATE, **saml_console.context(form, groups, app))
    with _form_names_missing_items():
        saml_apps.update_saml_app(
            app.name,
            saml_console.settings(form, saml_apps.sp_config(app).metadata()),
            context=_actor(req, signed_in),
            clock=req.clock,
        )
    return _done(req, f"/admin/apps/{app.name}", "app-updated")
