"""The user store pages are for administrators only, refuse a post without a valid CSRF
token and store nothing (S16), and label every input."""

from __future__ import annotations

import lxml.html
import pytest
import requests

from idp_core import accounts
from tests.helpers.directory_console import (
    audit_events,
    create_corp,
    form_for,
    stored,
)
from tests.helpers.sso import PASSWORD, Sso, csrf_token
from tests.support.slapd import Slapd, Subtree

pytestmark = pytest.mark.sso_setup("password_only")


def test_the_user_store_pages_are_for_administrators_only(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD), clock=sso.clock)
    bob = sso.browser()
    assert sso.sign_in(bob, "bob").status_code == 303
    token = csrf_token(sso.get(bob, "/me").text)
    before = stored()

    for path in ("/admin/directories", "/admin/directories/new", "/admin/directories/corp"):
        page = sso.get(bob, path)
        assert page.status_code == 403, path
        assert "This page is for administrators." in page.text
    for path, data in (
        ("/admin/directories", form_for(slapd, ldap_tree, name="evil")),
        ("/admin/directories/corp", form_for(slapd, ldap_tree, name="-")),
        ("/admin/directories/corp/delete", {}),
        ("/admin/directories/corp/test/bind", {}),
        ("/admin/directories/corp/import", {"full": "on"}),
    ):
        assert sso.post(bob, path, {"csrf_token": token, **data}).status_code == 403, path

    assert stored() == before
    assert audit_events("directory.test") == []
    assert (
        sso.get(sso.browser(), "/admin/directories").headers["Location"]
        == "/login?next=%2Fadmin%2Fdirectories"
    )


def test_a_post_without_a_valid_csrf_token_is_refused_and_stores_nothing(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    before = stored()
    for path, data in (
        ("/admin/directories", form_for(slapd, ldap_tree, name="evil")),
        ("/admin/directories/corp", form_for(slapd, ldap_tree, name="-")),
        ("/admin/directories/corp/delete", {}),
        ("/admin/directories/corp/test/bind", {}),
        ("/admin/directories/corp/import", {}),
    ):
        missing = sso.post(admin, path, data)
        forged = sso.post(admin, path, {**data, "csrf_token": "not-the-session-token"})
        assert missing.status_code == forged.status_code == 403, path
        assert "did not come from this site" in missing.text
    assert stored() == before
    assert audit_events("directory.test") == []


def test_every_user_store_page_labels_its_inputs_and_posts_carry_the_csrf_token(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    token = csrf_token(sso.get(admin, "/admin").text)
    for path in ("/admin/directories", "/admin/directories/new", "/admin/directories/corp"):
        response = sso.get(admin, path)
        assert response.status_code == 200, path
        document = lxml.html.fromstring(response.text)
        labelled = {label.get("for") for label in document.iter("label")}
        ids = [control.get("id") for control in document.xpath("//*[@id]")]
        assert len(ids) == len(set(ids)), path
        for control in document.xpath("//input[not(@type='hidden')] | //select | //textarea"):
            assert control.get("id") in labelled, f"{path}: {lxml.html.tostring(control)!r} has no label"
        for form in document.xpath("//form"):
            assert form.get("method") == "post", path
            assert form.xpath("input[@name='csrf_token']/@value") == [token], path
        for table in document.xpath("//table"):
            assert table.xpath(".//th[@scope='col']"), path
    edit = lxml.html.fromstring(sso.get(admin, "/admin/directories/corp").text)
    labels = {" ".join(label.text_content().split()) for label in edit.iter("label")}
    assert {
        "Display name",
        "Directory type",
        "Server URLs",
        "Use StartTLS",
        "CA certificate (PEM)",
        "Verify server certificates",
        "Bind DN",
        "Bind password",
        "Search bases",
        "User search filter",
        "Custom search filter",
        "Username attribute",
        "E-mail attribute",
        "Phone attribute",
        "First name attribute",
        "Last name attribute",
        "Display name attribute",
        "Group membership attribute",
        "Look up groups by",
        "Group search base",
        "Group member attribute",
        "Activate LDAP",
        "Sync users",
        "Backup authentication",
        "Allow users to change password",
        "Enable administrator login",
        "Show IdP to users",
        "Send configured attributes",
        "Enable user auto registration",
        "Send welcome e-mails after registration",
        "Import schedule",
        "Username to test",
        "Password to test",
        "Username to map",
        "Full import",
    } <= labels
    buttons = {" ".join(button.text_content().split()) for button in edit.iter("button")}
    assert {
        "Test connection",
        "Test bind account credentials",
        "Test configuration",
        "Test attribute mapping",
        "Import now",
        "Save user store",
        "Delete user store",
    } <= buttons
