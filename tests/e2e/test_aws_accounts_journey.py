"""A person whose groups map roles in two AWS accounts signs in with Chromium, picks the
second account's role on the AWS role chooser (the local stand-in of AWS's page, roles grouped
by account) and lands in it: after the admin added the mapping with the CLI and deployed
`idp aws member-template` into that account of the embedded AWS."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from idp_local.stack import DEMO_ACCOUNT_ID
from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import enrol_authenticator, sign_in
from tests.helpers.aws_accounts import client_in, new_account

PASSWORD = "two-accounts-passphrase"
DEMO_ROLE = "IdpDemoEngineer"


def _ok(local_idp: LocalIdp, *args: str, stdin: str | None = None) -> str:
    done = local_idp.idp(*args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_user_picks_a_role_of_the_second_account_on_the_chooser_and_signs_in_to_it(
    page: Page, local_idp: LocalIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, member = local_idp.base_url, new_account()
    state = local_idp.process.state
    assert state is not None
    _ok(local_idp, "group", "add", "auditors")
    _ok(
        local_idp,
        "user",
        "add",
        "olga",
        "--group",
        state.demo_group,
        "--group",
        "auditors",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    _ok(
        local_idp,
        "app",
        "add-aws",
        "aws-org",
        "--account-id",
        DEMO_ACCOUNT_ID,
        "--role",
        f"{DEMO_ROLE}={state.demo_group}",
        "--role",
        f"{member}:Auditor=auditors",
        "--acs-url",
        f"{base}/_local/aws/saml",
        "--display-name",
        "AWS organization",
    )
    template = _ok(local_idp, "aws", "member-template", "--app", "aws-org")
    for name, value in state.aws_env().items():
        monkeypatch.setenv(name, value)
    client_in("cloudformation", member).create_stack(
        StackName="idp-member", TemplateBody=template, Capabilities=["CAPABILITY_NAMED_IAM"]
    )
    assert json.loads(template)["Resources"]

    sign_in(page, base, "olga", PASSWORD)
    enrol_authenticator(page, base)
    page.goto(f"{base}/me")
    page.get_by_role("link", name="AWS organization").click()

    expect(page.get_by_role("heading", name="Select a role")).to_be_visible()
    home_group = page.get_by_role("group", name=f"Account: {DEMO_ACCOUNT_ID}")
    member_group = page.get_by_role("group", name=f"Account: {member}")
    expect(home_group.get_by_label(f"arn:aws:iam::{DEMO_ACCOUNT_ID}:role/{DEMO_ROLE}")).to_be_visible()
    member_group.get_by_label(f"arn:aws:iam::{member}:role/Auditor").check()
    page.get_by_role("button", name="Sign In").click()

    expect(page.get_by_role("heading", name="Signed in to AWS")).to_be_visible()
    expect(page.locator("#assumed-role")).to_have_text(
        re.compile(rf"^arn:aws:sts::{member}:assumed-role/Auditor/olga$")
    )
    expect(page.locator("#source-identity")).to_have_text("olga")
