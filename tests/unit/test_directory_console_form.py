"""The console's user store form and ``DirectorySettings``: stored settings shown in the form
and posted back unchanged are the same settings; empty attribute fields take the type's usual
attribute; a custom filter needs its text."""

from __future__ import annotations

from typing import Any

import pytest

from functions.provisioning import console
from idp_core.directories.settings import AttributeMap, DirectorySettings
from idp_core.errors import BadRequest

BASE = {
    "name": "corp",
    "display_name": "Corp",
    "kind": "openldap",
    "urls": ("ldap://ldap1.corp.example", "ldaps://ldap2.corp.example:636"),
    "bind_dn": "cn=idp,dc=corp,dc=example",
    "bases": ("ou=IT People,dc=corp,dc=example", "ou=contractors,dc=corp,dc=example"),
}


def as_posted(values: dict[str, Any]) -> dict[str, str]:
    """The form as a browser posts it: ticked boxes as "on", unticked ones left out."""
    posted: dict[str, str] = {}
    for name, value in values.items():
        if value is True:
            posted[name] = "on"
        elif value is not False:
            posted[name] = str(value)
    return posted


@pytest.mark.parametrize(
    "settings",
    [
        DirectorySettings(**BASE),
        DirectorySettings(
            **{**BASE, "kind": "ad"}, user_filter="userPrincipalName", welcome_emails=True, sync_users=True
        ),
        DirectorySettings(
            **BASE,
            user_filter="(&(objectClass=person)(uid={username}))",
            attribute_map=AttributeMap.for_kind("openldap", {"email": "userPrincipalName"}),
            group_lookup="search",
            group_base="ou=groups,dc=corp,dc=example",
            group_member_attribute="uniqueMember",
            verify_certificates=False,
            activate=True,
            backup_auth=True,
            schedule="cron(0 2 * * ? *)",
        ),
    ],
)
def test_stored_settings_posted_back_unchanged_are_the_same_settings(settings: DirectorySettings) -> None:
    assert console.settings_from_form(settings.name, as_posted(console.form_values(settings))) == settings


def test_empty_attribute_fields_take_the_usual_attribute_of_the_type() -> None:
    form = as_posted({**console.form_values(DirectorySettings(**BASE)), "kind": "ad"})
    form.update({f"map_{field}": "" for field in console.MAPPED_FIELDS}, map_phone="mobile")
    settings = console.settings_from_form("corp", form)
    assert settings.mapping == AttributeMap.for_kind("ad", {"phone": "mobile"})
    assert settings.mapping.username == "sAMAccountName"


def test_a_custom_filter_without_its_text_is_refused_with_a_sentence() -> None:
    form = {
        **as_posted(console.form_values(DirectorySettings(**BASE))),
        "user_filter": "custom",
        "custom_filter": " ",
    }
    with pytest.raises(BadRequest, match="Type the custom search filter, with a \\{username\\} slot"):
        console.settings_from_form("corp", form)


def test_the_typed_values_never_carry_the_bind_password() -> None:
    typed = console.typed_values({"bind_password": "secret", "display_name": "Corp", "activate": "on"})
    assert "bind_password" not in typed and "secret" not in typed.values()
    assert typed["display_name"] == "Corp" and typed["activate"] is True and typed["start_tls"] is False
