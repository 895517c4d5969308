"""A directory of the sso tests' slapd subtree, stored the way the console and CLI store one,
and the sign-in form's "Sign in with" options as a browser sees them."""

from __future__ import annotations

from typing import Any

import boto3
import lxml.html

from idp_core.directories import store
from idp_core.directories.settings import DirectorySettings
from tests.helpers.sso import Sso
from tests.support.slapd import Slapd, Subtree

SERVICE_PASSWORD = "service-secret"
# The passwords of the people the ``people`` fixture (tests/integration/conftest.py) adds.
ALICE_PASSWORD = "alice-Secret-1"
ADMIN_PASSWORD = "admin-Secret-1"


def add_service_account(tree: Subtree) -> str:
    """The service account, outside ou=people so the user searches never find it; its DN."""
    return tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)


def save_directory(
    sso: Sso, slapd: Slapd, tree: Subtree, name: str, display_name: str, **switches: bool
) -> DirectorySettings:
    """Store (create or replace) the directory ``name`` over ``tree``'s people with ``switches``,
    and forget the container's cached copy so the next request sees it."""
    settings = DirectorySettings(
        name=name,
        display_name=display_name,
        kind="openldap",
        urls=(slapd.url,),
        bind_dn=f"uid=svc,{tree.dn}",
        bases=(tree.people,),
        # slapd speaks plain LDAP on 127.0.0.1; a test may still turn the switch off (S30).
        **{"allow_cleartext": True, **switches},
    )
    return store_directory(sso, settings)


def store_directory(sso: Sso, settings: DirectorySettings) -> DirectorySettings:
    """Store (create or replace) ``settings`` with the service account's password, and
    forget the container's cached copy so the next request sees it."""
    store.save_directory(
        settings,
        create=not [saved for saved in store.list_directories() if saved.name == settings.name],
        bind_password=SERVICE_PASSWORD,
        kms=boto3.client("kms"),
        key_id=sso.settings.require_data_key(),
        clock=sso.clock,
    )
    store.forget_cached_directories()
    return settings


def sign_in_options(page: str) -> list[tuple[str, str, bool]]:
    """The "Sign in with" options of a sign-in page as (value, label, selected); [] without the select."""
    document: Any = lxml.html.fromstring(page)
    selects = document.xpath('//select[@name="directory"]')
    if not selects:
        return []
    label = document.xpath(f'//label[@for="{selects[0].get("id")}"]')[0].text_content()
    assert label == "Sign in with"
    return [
        (option.get("value"), option.text_content(), option.get("selected") is not None)
        for option in selects[0].xpath("./option")
    ]
