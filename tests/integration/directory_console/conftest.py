"""The admin console's user store pages over HTTP against a real slapd, split by page: the
form (create, edit, delete, bad input), the four test buttons, "Import now", and who may use
them. Their steps are in tests.helpers.directory_console; ``sso``, ``admin``, ``slapd`` and
``ldap_tree`` come from tests/integration/conftest.py."""

from __future__ import annotations

import pytest

from tests.helpers.directory_console import ALICE_PASSWORD, SERVICE_PASSWORD
from tests.support.slapd import Subtree


@pytest.fixture
def people(ldap_tree: Subtree) -> dict[str, str]:
    """The service account outside ou=people, alice (every mapped attribute, in engineers)
    and bob (no phone); returns their DNs."""
    ldap_tree.add_user("svc", SERVICE_PASSWORD, parent=ldap_tree.dn)
    alice = ldap_tree.add_user(
        "alice",
        ALICE_PASSWORD,
        cn="Alice Example",
        sn="Example",
        given_name="Alice",
        mail="alice@corp.example",
        phone="+15555550100",
    )
    bob = ldap_tree.add_user(
        "bob", "bob-Directory-1", cn="Bob Builder", sn="Builder", mail="bob@corp.example"
    )
    ldap_tree.add_group("engineers", [alice])
    return {"alice": alice, "bob": bob}
