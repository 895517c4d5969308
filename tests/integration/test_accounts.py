"""Users, groups and apps: validation before any write, conflicts, disabling."""

from __future__ import annotations

import pytest

from idp_core import account_deletion, accounts, apps
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.models import App, Group, User


def test_user_is_stored_under_its_canonical_name_and_variants_find_it(tables):
    accounts.create_user(accounts.NewUser("\uff21lice", password="a long enough passphrase"))
    assert accounts.get_user("ALICE").display_username == "Alice"
    with pytest.raises(Conflict):
        accounts.create_user(accounts.NewUser("alice", password="another long passphrase"))


def test_bad_user_input_writes_nothing(tables):
    for kwargs in (
        {"username": "bob smith", "password": "a long enough passphrase"},
        {"username": "bob", "password": "short"},
        {"username": "bob", "password": "password123"},
        {"username": "bob", "password": "a long enough passphrase", "email": "not-an-address"},
        {"username": "bob", "password": "a long enough passphrase", "groups": ["no-such-group"]},
    ):
        with pytest.raises((BadRequest, NotFound)):
            accounts.create_user(accounts.NewUser(**kwargs))
    assert list(User.scan()) == []


def test_app_maps_groups_to_roles_and_refuses_bad_input(tables):
    accounts.create_group("admins")
    accounts.create_group("readers")
    user = accounts.create_user(
        accounts.NewUser("carol", password="a long enough passphrase", groups=["admins", "readers"])
    )
    app = apps.create_aws_app(
        "prod",
        apps.AwsAppChoices(
            account_id="123456789012",
            roles=[("Admin", "admins"), ("arn:aws:iam::123456789012:role/team/Reader", "readers")],
        ),
    )
    assert apps.roles_for_user(app, apps.enabled_groups(user)) == [
        "arn:aws:iam::123456789012:role/Admin",
        "arn:aws:iam::123456789012:role/team/Reader",
    ]
    accounts.set_group_disabled("readers", True)
    assert apps.roles_for_user(app, apps.enabled_groups(user)) == ["arn:aws:iam::123456789012:role/Admin"]

    bad_apps = (
        {"account_id": "12345", "roles": [("Admin", "admins")]},
        {"account_id": "123456789012", "roles": []},
        {"account_id": "123456789012", "roles": [("Admin", "nobody")]},
        {"account_id": "123456789012", "roles": [("arn:aws:iam::999999999999:role/X", "admins")]},
        {"account_id": "123456789012", "roles": [("Admin", "admins")], "session_duration": 60},
        {"account_id": "123456789012", "roles": [("Admin", "admins")], "relay_state": "javascript:alert(1)"},
    )
    for kwargs in bad_apps:
        with pytest.raises((BadRequest, NotFound)):
            apps.create_aws_app("other", apps.AwsAppChoices(**kwargs))
    assert [a.name for a in App.scan()] == ["prod"]
    assert {g.name for g in Group.scan()} == {"admins", "readers"}


def test_apps_for_user_lists_only_apps_with_a_role(tables):
    accounts.create_group("admins")
    member = accounts.create_user(
        accounts.NewUser("dave", password="a long enough passphrase", groups=["admins"])
    )
    outsider = accounts.create_user(accounts.NewUser("erin", password="a long enough passphrase"))
    apps.create_aws_app("prod", apps.AwsAppChoices(account_id="123456789012", roles=[("Admin", "admins")]))
    assert [a.name for a in apps.apps_for_user(member)] == ["prod"]
    assert apps.apps_for_user(outsider) == []


def test_an_admin_cannot_disable_demote_or_delete_themselves(tables):
    from idp_core.audit import AuditContext

    accounts.create_user(accounts.NewUser("root", password="a long enough passphrase", is_admin=True))
    accounts.create_user(accounts.NewUser("other", password="a long enough passphrase", is_admin=True))
    as_root = AuditContext(actor="root")
    for change in (
        lambda: accounts.set_user_disabled("root", True, context=as_root),
        lambda: accounts.set_admin("root", False, context=as_root),
        lambda: account_deletion.delete_user("root", context=as_root),
    ):
        with pytest.raises(BadRequest, match="your own account"):
            change()
    root = accounts.get_user("root")
    assert root.is_admin and not root.disabled
    accounts.set_user_disabled("other", True, context=as_root)
    assert accounts.get_user("other").disabled
