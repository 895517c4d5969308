"""An AWS app with roles in several accounts (issue 16 point 2): ``ACCOUNT:ROLE=GROUP`` mappings
through the core, the CLI and the console with creation's validation; the assertion carries
every role the user may take, each with the SAML provider of its own account; the local AWS
sign-in emulator lists them by account and signs in to a second account only once that
account's provider holds this IdP's metadata."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
import requests

from idp_core import accounts, apps
from idp_core.apps import saml_trust_policy
from idp_core.errors import BadRequest, NotFound
from idp_core.models import App, AuditEvent
from idp_core.saml.aws import ATTR_SOURCE_IDENTITY
from tests.helpers.adaptive import launch_from_login
from tests.helpers.aws_accounts import (
    attribute_values,
    client_in,
    emulator_for,
    new_account,
    published_metadata,
    role_values,
    saml_response_of,
    set_up_member_account,
)
from tests.helpers.cli import idp, listing, ok
from tests.helpers.console import submit, text_of
from tests.helpers.sso import PASSWORD, Sso

pytestmark = pytest.mark.sso_setup("password_only")

APP = "org"
PROVIDER = "corp-idp"


def _groups(*names: str) -> None:
    for name in names:
        accounts.create_group(name)


def _org_app(home: str, member: str, **options: Any) -> App:
    """Admins get Admin at home; readers get Reader in the member account."""
    return apps.create_aws_app(
        APP,
        apps.AwsAppChoices(
            account_id=home,
            roles=[("Admin", "admins"), (f"{member}:Reader", "readers")],
            provider_name=PROVIDER,
        ),
        **options,
    )


# ---------------------------------------------------------------- the mappings


def test_an_app_maps_groups_to_roles_of_several_accounts_each_with_its_own_provider(
    tables: Any, home: str, member: str
) -> None:
    _groups("admins", "readers")
    app = apps.create_aws_app(
        APP,
        apps.AwsAppChoices(
            account_id=home,
            roles=[
                ("Admin", "admins"),
                (f"{member}:Reader", "readers"),
                (f"{member}:arn:aws:iam::{member}:role/team/Ops", "admins"),
            ],
            provider_name=PROVIDER,
        ),
    )

    assert apps.accounts_of(app) == [home, member]
    assert [(row["account_id"], row["role_arn"], row["group"]) for row in apps.role_table(app)] == [
        (home, f"arn:aws:iam::{home}:role/Admin", "admins"),
        (member, f"arn:aws:iam::{member}:role/Reader", "readers"),
        (member, f"arn:aws:iam::{member}:role/team/Ops", "admins"),
    ]
    assert apps.role_pairs_for_user(app, {"admins", "readers"}) == [
        (f"arn:aws:iam::{home}:role/Admin", f"arn:aws:iam::{home}:saml-provider/{PROVIDER}"),
        (f"arn:aws:iam::{member}:role/Reader", f"arn:aws:iam::{member}:saml-provider/{PROVIDER}"),
        (f"arn:aws:iam::{member}:role/team/Ops", f"arn:aws:iam::{member}:saml-provider/{PROVIDER}"),
    ]
    assert apps.roles_for_user(app, {"readers"}) == [f"arn:aws:iam::{member}:role/Reader"]
    [created] = [event for event in AuditEvent.scan() if event.type == "app.created"]
    assert created.details is not None and int(created.details["accounts"]) == 2


@pytest.mark.parametrize(
    ("role", "message"),
    [
        pytest.param("2222:Reader", "12 digits", id="short-account"),
        pytest.param("22222222222x:Reader", "12 digits", id="account-with-a-letter"),
        pytest.param("{member}:bad role", "not a valid IAM role name", id="bad-role-name"),
        pytest.param("{member}:", "not a valid IAM role name", id="no-role"),
        pytest.param("arn:aws:iam::{member}:role/Reader", "write ACCOUNT:ROLE", id="arn-of-another-account"),
    ],
)
def test_a_bad_mapping_of_another_account_writes_nothing(
    tables: Any, home: str, member: str, role: str, message: str
) -> None:
    _groups("admins", "readers")
    app = _org_app(home, member)
    before = App.get(APP).serialize()

    with pytest.raises(BadRequest, match=message):
        apps.create_aws_app(
            "other", apps.AwsAppChoices(account_id=home, roles=[(role.format(member=member), "readers")])
        )
    with pytest.raises(BadRequest, match=message):
        apps.update_aws_app(APP, apps.AwsAppChoices(roles=[(role.format(member=member), "readers")]))

    assert [stored.name for stored in App.scan()] == [app.name]
    assert App.get(APP).serialize() == before


def test_a_mapping_of_another_account_needs_a_group_that_exists(tables: Any, home: str, member: str) -> None:
    _groups("admins")
    with pytest.raises(NotFound, match="ghosts"):
        apps.create_aws_app(APP, apps.AwsAppChoices(account_id=home, roles=[(f"{member}:Reader", "ghosts")]))
    assert list(App.scan()) == []


def test_attack_a_role_of_one_account_under_the_provider_of_another_is_refused(
    tables: Any, home: str, member: str
) -> None:
    # The mapping would send the member account's provider with a role of a third account.
    third = new_account()
    _groups("readers")
    with pytest.raises(BadRequest, match="not in the mapping's account"):
        apps.create_aws_app(
            APP,
            apps.AwsAppChoices(
                account_id=home, roles=[(f"{member}:arn:aws:iam::{third}:role/Reader", "readers")]
            ),
        )
    assert list(App.scan()) == []


def test_stored_mappings_without_an_account_keep_working_in_the_apps_account(
    tables: Any, home: str, member: str
) -> None:
    _groups("admins", "readers")
    # An app as stored before mappings had accounts: no account_id in its role maps.
    boto3.client("dynamodb").put_item(
        TableName=App.Meta.table_name,
        Item={
            "name": {"S": "legacy"},
            "display_name": {"S": "Legacy"},
            "kind": {"S": "aws"},
            "account_id": {"S": home},
            "provider_name": {"S": PROVIDER},
            "roles": {"L": [{"M": {"role": {"S": "Admin"}, "group": {"S": "admins"}}}]},
            "session_duration": {"N": "3600"},
            "relay_state": {"S": apps.AWS_CONSOLE_URL},
            "acs_url": {"S": apps.AWS_SIGNIN_ACS_URL},
            "audience": {"S": apps.AWS_AUDIENCE},
            "created_at": {"N": "1"},
        },
    )
    legacy = apps.get_app("legacy")
    assert apps.role_pairs_for_user(legacy, {"admins"}) == [
        (f"arn:aws:iam::{home}:role/Admin", f"arn:aws:iam::{home}:saml-provider/{PROVIDER}")
    ]

    # Adding a role of another account keeps the old mapping in the app's account.
    apps.update_aws_app(
        "legacy", apps.AwsAppChoices(roles=[("Admin", "admins"), (f"{member}:Reader", "readers")])
    )
    updated = apps.get_app("legacy")
    assert [(m.account_id, m.role) for m in updated.roles] == [(None, "Admin"), (member, "Reader")]
    # A new account for the app moves the mappings that name none, and only those.
    other_home = new_account()
    apps.update_aws_app("legacy", apps.AwsAppChoices(account_id=other_home))
    assert apps.roles_for_user(apps.get_app("legacy"), {"admins", "readers"}) == [
        f"arn:aws:iam::{other_home}:role/Admin",
        f"arn:aws:iam::{member}:role/Reader",
    ]


# ---------------------------------------------------------------- the CLI


@pytest.mark.usefixtures("local_state")
def test_cli_adds_shows_and_updates_roles_of_several_accounts(
    capsys: pytest.CaptureFixture[str], home: str, member: str
) -> None:
    ok(capsys, "group", "add", "admins")
    ok(capsys, "group", "add", "readers")
    out = ok(
        capsys,
        "app",
        "add-aws",
        APP,
        "--account-id",
        home,
        "--role",
        "Admin=admins",
        "--role",
        f"{member}:Reader=readers",
    )
    assert f"({home}, {member})" in out and f"idp aws member-template --app {APP}" in out

    [app] = listing(capsys, "app", "list")
    assert [(r["account_id"], r["role_arn"], r["group"]) for r in app["roles"]] == [
        (home, f"arn:aws:iam::{home}:role/Admin", "admins"),
        (member, f"arn:aws:iam::{member}:role/Reader", "readers"),
    ]
    shown = ok(capsys, "app", "show", APP)
    assert "ACCOUNT" in shown and f"{member}  Reader" in shown

    ok(capsys, "app", "update", APP, "--role", f"{member}:Reader=admins")
    [app] = listing(capsys, "app", "list")
    assert [(r["account_id"], r["role"], r["group"]) for r in app["roles"]] == [(member, "Reader", "admins")]


@pytest.mark.usefixtures("local_state")
@pytest.mark.parametrize(
    ("role", "message"),
    [
        pytest.param("12345:Reader=readers", "12 digits", id="short-account"),
        pytest.param("{member}:Reader=ghosts", "no group 'ghosts'", id="unknown-group"),
        pytest.param(
            "{member}:arn:aws:iam::999999999999:role/R=readers", "mapping's account", id="arn-elsewhere"
        ),
    ],
)
def test_cli_refuses_a_bad_mapping_of_another_account_with_exit_2(
    capsys: pytest.CaptureFixture[str], home: str, member: str, role: str, message: str
) -> None:
    ok(capsys, "group", "add", "readers")
    code, out, err = idp(
        capsys, "app", "add-aws", APP, "--account-id", home, "--role", role.format(member=member)
    )
    assert (code, out) == (2, "")
    assert message in err
    assert listing(capsys, "app", "list") == []


# ---------------------------------------------------------------- the console


def test_console_creates_edits_and_shows_roles_of_several_accounts(
    sso: Sso, admin: requests.Session, home: str, member: str
) -> None:
    _groups("admins", "readers")
    form = text_of(sso.get(admin, "/admin/apps/new"))
    assert 'for="role-account-1"' in form and "AWS account (row 1)" in form

    created = submit(
        sso,
        admin,
        "/admin/apps",
        {
            "name": APP,
            "account_id": home,
            "role_1": "Admin",
            "group_1": "admins",
            "account_2": member,
            "role_2": "Reader",
            "group_2": "readers",
            "session_duration": "3600",
        },
    )
    assert created.status_code == 303, created.text

    page = text_of(sso.get(admin, f"/admin/apps/{APP}"))
    assert '<th scope="col">Account</th><th scope="col">Role</th><th scope="col">Group</th>' in page
    assert f"<tr><td>{member}</td><td>Reader</td><td>readers</td>" in page
    assert f"<tr><td>{home}</td><td>Admin</td><td>admins</td>" in page
    assert f"accounts {home}, {member}" in page

    edit = text_of(sso.get(admin, f"/admin/apps/{APP}/edit"))
    assert f'name="account_2" value="{member}"' in edit and 'name="account_1" value=""' in edit
    fields = {
        "account_id": home,
        "role_1": "Admin",
        "group_1": "admins",
        "account_2": member,
        "role_2": "Ops",
        "group_2": "readers",
        "session_duration": "3600",
    }
    saved = submit(sso, admin, f"/admin/apps/{APP}/edit", fields)
    assert saved.status_code == 303, saved.text
    assert [(m.account_id, m.role) for m in App.get(APP).roles] == [(None, "Admin"), (member, "Ops")]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        pytest.param(
            {"account_2": "12345", "role_2": "Reader", "group_2": "readers"}, "12 digits", id="account"
        ),
        pytest.param(
            {"account_2": "{member}", "group_2": "readers"}, "enter the IAM role of account", id="no-role"
        ),
        pytest.param(
            {"account_2": "{member}", "role_2": "arn:aws:iam::999999999999:role/R", "group_2": "readers"},
            "mapping's account",
            id="arn-elsewhere",
        ),
    ],
)
def test_console_refuses_a_bad_mapping_of_another_account_and_writes_nothing(
    sso: Sso, admin: requests.Session, home: str, member: str, row: dict[str, str], message: str
) -> None:
    _groups("admins", "readers")
    fields = {key: value.format(member=member) for key, value in row.items()}
    answer = submit(
        sso,
        admin,
        "/admin/apps",
        {"name": APP, "account_id": home, "role_1": "Admin", "group_1": "admins", **fields},
    )
    assert answer.status_code == 400
    assert message in text_of(answer)
    assert list(App.scan()) == []


# ---------------------------------------------------------------- signing in


def _launch(sso: Sso, username: str, relay_state: str = "") -> str:
    browser = sso.browser()
    signed_in = sso.sign_in(
        browser, username, PASSWORD, app=APP, **({"RelayState": relay_state} if relay_state else {})
    )
    return saml_response_of(launch_from_login(sso, browser, signed_in))


@pytest.fixture
def org(sso: Sso, home: str, member: str) -> App:
    _groups("admins", "readers")
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD, groups=["admins", "readers"]))
    accounts.create_user(accounts.NewUser("rita", password=PASSWORD, groups=["readers"]))
    return _org_app(home, member, mfa_required=False)


def _trust_us_in(member: str, sso: Sso, org: App) -> None:
    """The member account's provider holds this IdP's metadata and its Reader role trusts it."""
    set_up_member_account(
        member,
        provider=PROVIDER,
        metadata=published_metadata(sso),
        roles=["Reader"],
        acs_url=str(org.acs_url),
    )


def test_the_assertion_carries_every_role_with_the_provider_of_its_account(
    sso: Sso, org: App, home: str, member: str
) -> None:
    assert role_values(_launch(sso, "alice")) == [
        f"arn:aws:iam::{home}:role/Admin,arn:aws:iam::{home}:saml-provider/{PROVIDER}",
        f"arn:aws:iam::{member}:role/Reader,arn:aws:iam::{member}:saml-provider/{PROVIDER}",
    ]
    assert role_values(_launch(sso, "rita")) == [
        f"arn:aws:iam::{member}:role/Reader,arn:aws:iam::{member}:saml-provider/{PROVIDER}"
    ]


def test_emulator_lists_roles_by_account_and_signs_in_to_the_second_once_its_provider_holds_our_metadata(
    sso: Sso, org: App, home: str, member: str
) -> None:
    emulator = emulator_for(sso, str(org.acs_url), home_account=home)
    response = _launch(sso, "alice")

    status, chooser = emulator.handle({"SAMLResponse": response})
    assert status == 200, chooser
    assert f"<legend>Account: {home}</legend>" in chooser and f"<legend>Account: {member}</legend>" in chooser
    assert chooser.index(f"Account: {member}") < chooser.index(f"arn:aws:iam::{member}:role/Reader")

    # The member account has no provider yet: AWS would refuse, and so does the emulator.
    status, page = emulator.handle({"SAMLResponse": response, "roleIndex": "1"})
    assert status == 403 and f"Account {member} has no SAML provider" in page

    _trust_us_in(member, sso, org)
    status, page = emulator.handle({"SAMLResponse": response, "roleIndex": "1"})
    assert status == 200, page
    assert f"arn:aws:sts::{member}:assumed-role/Reader/alice" in page

    # The home account's role still works from the same chooser.
    status, page = emulator.handle({"SAMLResponse": _launch(sso, "alice"), "roleIndex": "0"})
    assert status == 200, page
    assert f"arn:aws:sts::{home}:assumed-role/Admin/alice" in page


def test_the_username_is_the_source_identity_and_a_role_must_allow_setting_it(
    sso: Sso, org: App, home: str, member: str
) -> None:
    response = _launch(sso, "alice")
    assert attribute_values(response, ATTR_SOURCE_IDENTITY) == ["alice"]

    emulator = emulator_for(sso, str(org.acs_url), home_account=home)
    status, page = emulator.handle({"SAMLResponse": response, "roleIndex": "0"})
    assert status == 200, page
    assert '<code id="source-identity">alice</code>' in page

    # A role whose trust policy does not allow sts:SetSourceIdentity: AWS refuses, as here.
    policy = saml_trust_policy(f"arn:aws:iam::{home}:saml-provider/{PROVIDER}", str(org.acs_url))
    policy["Statement"][0]["Action"] = ["sts:AssumeRoleWithSAML", "sts:TagSession"]
    client_in("iam", home).update_assume_role_policy(RoleName="Admin", PolicyDocument=json.dumps(policy))
    status, page = emulator.handle({"SAMLResponse": _launch(sso, "alice"), "roleIndex": "0"})
    assert status == 403 and "Not authorized to perform sts:SetSourceIdentity" in page


def test_attack_emulator_refuses_a_second_account_whose_provider_holds_another_certificate(
    sso: Sso, org: App, home: str, member: str
) -> None:
    kms = boto3.client("kms")
    other_key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    from idp_core.saml.certificate import signing_identity

    stranger = signing_identity(kms, other_key, sso.clock).certificate_der_b64
    ours = published_metadata(sso).decode("utf-8")
    current = apps_certificate(ours)
    set_up_member_account(
        member,
        provider=PROVIDER,
        metadata=ours.replace(current, stranger),
        roles=["Reader"],
        acs_url=str(org.acs_url),
    )

    status, page = emulator_for(sso, str(org.acs_url), home_account=home).handle(
        {"SAMLResponse": _launch(sso, "alice"), "roleIndex": "1"}
    )

    assert status == 403
    assert f"does not verify against the certificate registered for arn:aws:iam::{member}" in page


def apps_certificate(metadata: str) -> str:
    start = metadata.index("<ds:X509Certificate>") + len("<ds:X509Certificate>")
    return metadata[start : metadata.index("</ds:X509Certificate>")]


def test_attack_a_user_cannot_choose_a_role_of_an_account_their_groups_do_not_map(
    sso: Sso, org: App, home: str, member: str
) -> None:
    _trust_us_in(member, sso, org)
    emulator = emulator_for(sso, str(org.acs_url), home_account=home)
    # rita (readers) asks for the home account: by the console's RelayState and by a role index.
    response = _launch(
        sso, "rita", relay_state=f"https://console.aws.amazon.com/?region=us-east-1&account={home}"
    )
    assert [value.split(",")[0] for value in role_values(response)] == [f"arn:aws:iam::{member}:role/Reader"]

    status, page = emulator.handle({"SAMLResponse": response, "roleIndex": "1"})
    assert status == 400 and "Choose one of the offered roles" in page

    # Adding the home role to the signed Role values breaks the signature.
    forged = base64.b64decode(response).replace(
        f"arn:aws:iam::{member}:role/Reader,arn:aws:iam::{member}:saml-provider/{PROVIDER}".encode(),
        f"arn:aws:iam::{home}:role/Admin,arn:aws:iam::{home}:saml-provider/{PROVIDER}".encode(),
    )
    status, page = emulator.handle({"SAMLResponse": base64.b64encode(forged).decode("ascii")})
    assert status == 403 and "signature" in page.lower()

    # Only her own role signs her in.
    status, page = emulator.handle({"SAMLResponse": response})
    assert status == 200 and f"arn:aws:sts::{member}:assumed-role/Reader/rita" in page


def test_attack_a_stored_mapping_pairing_a_role_with_another_accounts_provider_is_never_sent(
    sso: Sso, org: App, home: str, member: str
) -> None:
    # Written around the validation (a hand-edited item): the role's ARN names the home account
    # while the mapping says the member account, whose provider would be paired with it.
    stored = App.get(APP)
    stored.roles[1].role = f"arn:aws:iam::{home}:role/Reader"
    stored.save()

    browser = sso.browser()
    refused = launch_from_login(sso, browser, sso.sign_in(browser, "rita", PASSWORD, app=APP))

    assert refused.status_code == 400
    assert "different AWS accounts" in text_of(refused)
    assert "SAMLResponse" not in refused.text
    [event] = [e for e in AuditEvent.scan() if e.type == "saml.assertion_refused"]
    assert event.details is not None and event.details["rule"] == "role-account"
