"""The console's SAML apps (issue 16 point 1): add a service provider from its metadata or by
hand, edit its settings, delete it; a refused form writes nothing and says why."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
import requests

from idp_core import accounts, saml_apps
from idp_core.models import App
from tests.helpers.saml_sp import ACS_URL, SLO_URL, SP_ENTITY, key_pair
from tests.helpers.sso import Sso, csrf_token

pytestmark = pytest.mark.sso_setup("password_only")


def sp_metadata(tmp_path: Path, *, doctype: str = "") -> str:
    keys = key_pair(tmp_path / "sp")
    return (
        f'{doctype}<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{SP_ENTITY}">'
        '<md:SPSSODescriptor AuthnRequestsSigned="true" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{keys.cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        '<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{SLO_URL}"/>'
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{ACS_URL}" index="1"/>'
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        'Location="https://sp.example.test/acs2" index="0" isDefault="true"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


def post(
    sso: Sso, browser: requests.Session, path: str, page: str, data: dict[str, str]
) -> requests.Response:
    token = csrf_token(sso.get(browser, page).text)
    return sso.post(browser, path, {"csrf_token": token, **data})


def test_admin_adds_edits_and_deletes_a_saml_app(sso: Sso, admin: requests.Session, tmp_path: Path) -> None:
    accounts.create_group("staff", clock=sso.clock)
    listing = sso.get(admin, "/admin/apps")
    assert "Add a SAML app" in listing.text
    form = sso.get(admin, "/admin/apps/new-saml")
    assert form.status_code == 200
    for label in ("SP metadata (XML)", "SP entity id", "NameID format", "What is signed", "Attributes"):
        assert label in html.unescape(form.text)
    created = post(
        sso,
        admin,
        "/admin/apps/new-saml",
        "/admin/apps/new-saml",
        {
            "name": "wiki",
            "display_name": "Team wiki",
            "metadata": sp_metadata(tmp_path),
            "name_id_format": "persistent",
            "attributes": "email=email\nurn:oid:2.5.4.42=display_name",
            "signing": "both",
            "group:staff": "on",
        },
    )
    assert created.status_code == 303, created.text[-600:]
    assert created.headers["Location"] == "/admin/apps/wiki?notice=app-created"
    config = saml_apps.sp_config(App.get("wiki"))
    assert config.entity_id == SP_ENTITY and config.requests_signed and config.groups == ("staff",)
    assert config.metadata().default_acs().url == "https://sp.example.test/acs2"
    assert [(m.name, m.name_format.rsplit(":", 1)[1]) for m in config.attributes] == [
        ("email", "basic"),
        ("urn:oid:2.5.4.42", "uri"),
    ]
    page = sso.get(admin, created.headers["Location"])
    assert (
        page.status_code == 200
        and SP_ENTITY in page.text
        and ACS_URL in page.text
        and "Team wiki" in page.text
    )

    edited = post(
        sso,
        admin,
        "/admin/apps/wiki/saml",
        "/admin/apps/wiki",
        {"display_name": "Wiki", "name_id_format": "email", "signing": "assertion", "attributes": ""},
    )
    assert edited.status_code == 303, edited.text[-600:]
    after = saml_apps.sp_config(App.get("wiki"))
    assert (after.name_id_format, after.sign_response, after.sign_assertion) == ("email", False, True)
    assert (
        after.entity_id == SP_ENTITY and after.certificates == config.certificates
    )  # Kept without metadata.
    assert after.name_id_salt == config.name_id_salt and after.groups == ()
    assert App.get("wiki").display_name == "Wiki"

    deleted = post(sso, admin, "/admin/apps/wiki/delete", "/admin/apps/wiki", {"confirm": "yes"})
    assert deleted.status_code == 303
    assert list(App.scan()) == []


def test_a_saml_app_by_hand_and_refused_forms(sso: Sso, admin: requests.Session, tmp_path: Path) -> None:
    by_hand = post(
        sso,
        admin,
        "/admin/apps/new-saml",
        "/admin/apps/new-saml",
        {
            "name": "crm",
            "entity_id": "https://crm.example.test/saml",
            "acs_url": "https://crm.example.test/acs",
            "name_id_format": "unspecified",
            "name_id_source": "email",
            "signing": "response",
        },
    )
    assert by_hand.status_code == 303, by_hand.text[-600:]
    config = saml_apps.sp_config(App.get("crm"))
    assert config.name_id_source == "email" and config.sign_response and not config.sign_assertion
    before = sorted(str(app.serialize()) for app in App.scan())
    refusals = {
        "DOCTYPE": {"metadata": sp_metadata(tmp_path, doctype="<!DOCTYPE x>")},
        "must be an https URL": {"entity_id": "urn:x", "acs_url": "http://evil.example/acs"},
        "not both": {"metadata": sp_metadata(tmp_path), "entity_id": "urn:x"},
        "already the app": {
            "entity_id": "https://crm.example.test/saml",
            "acs_url": "https://crm.example.test/a",
        },
        "Each attribute line is NAME=FIELD": {"metadata": sp_metadata(tmp_path), "attributes": "nonsense"},
    }
    for message, fields in refusals.items():
        answer = post(
            sso,
            admin,
            "/admin/apps/new-saml",
            "/admin/apps/new-saml",
            {"name": "other", "name_id_format": "persistent", "signing": "both", **fields},
        )
        assert answer.status_code in (400, 409, 413), (message, answer.status_code)
        assert message in html.unescape(answer.text), message
        assert 'role="alert"' in answer.text and "Add a SAML app" in answer.text
    assert sorted(str(app.serialize()) for app in App.scan()) == before
