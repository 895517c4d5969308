"""The `idp` CLI against an embedded AWS (moto server), through the same state file as `idp --local`."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from idp_cli.main import main
from idp_core.config import Tables
from idp_core.models import create_tables
from idp_local.gateway import LocalGateway
from idp_local.stack import aws_env
from idp_local.state import LocalState
from tests.helpers.cli import idp, listing, ok

REPO = Path(__file__).resolve().parents[2]
GOOD_PASSWORD = "correct horse battery staple"


@pytest.mark.usefixtures("local_state")
def test_user_lifecycle_add_list_show_disable_enable_delete(capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "group", "add", "engineers", "--description", "Builders")
    out = ok(
        capsys,
        "user",
        "add",
        "Bob",
        "--password-stdin",
        "--group",
        "engineers",
        "--email",
        "bob@example.com",
        "--display-name",
        "Bob Builder",
        stdin=GOOD_PASSWORD + "\n",
    )
    assert out == "Created user Bob.\n"

    table = ok(capsys, "user", "list")
    header, row = table.splitlines()
    assert header.split() == ["USERNAME", "NAME", "EMAIL", "ADMIN", "DISABLED", "LOCKED", "GROUPS"]
    assert row.split() == ["Bob", "Bob", "Builder", "bob@example.com", "no", "no", "no", "engineers"]
    assert header.index("EMAIL") == row.index("bob@example.com")  # columns are aligned

    shown = listing(capsys, "user", "show", "BOB")
    assert shown["username"] == "Bob" and shown["groups"] == ["engineers"] and shown["has_password"] is True
    assert "password_hash" not in shown and GOOD_PASSWORD not in json.dumps(shown)

    ok(capsys, "user", "disable", "bob")
    assert listing(capsys, "user", "show", "bob")["disabled"] is True
    ok(capsys, "user", "enable", "bob")
    assert listing(capsys, "user", "show", "bob")["disabled"] is False

    ok(capsys, "user", "groups", "bob", "--clear")
    assert listing(capsys, "user", "show", "bob")["groups"] == []
    ok(capsys, "user", "set-password", "bob", "--password-stdin", stdin="another long passphrase\n")
    ok(capsys, "user", "unlock", "bob")

    ok(capsys, "user", "delete", "bob")
    assert listing(capsys, "user", "list") == []
    assert "(none)" in ok(capsys, "user", "list")


@pytest.mark.usefixtures("local_state")
def test_user_delete_finishes_an_interrupted_deletion_and_says_what_it_removed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp_core import account_deletion

    ok(capsys, "user", "add", "bob", "--password-stdin", stdin=GOOD_PASSWORD + "\n")

    def interrupted(key: str) -> dict[str, int]:
        raise ConnectionError("the network went away")

    with monkeypatch.context() as patch:
        patch.setattr(account_deletion, "_remove_factors", interrupted)
        code, _, err = idp(capsys, "user", "delete", "bob")
    assert (code, err) == (1, "idp: unexpected error (ConnectionError): the network went away\n")
    shown = listing(capsys, "user", "show", "bob")
    assert shown["disabled"] is True and shown["deleting_since"] is not None
    assert idp(capsys, "user", "enable", "bob")[0] == 2

    assert ok(capsys, "user", "delete", "bob") == (
        "Deleted user bob (0 session(s) ended, 0 pending code(s) removed, 0 sign-in method(s) removed, "
        "0 hardware token(s) freed, 0 device(s) removed).\n"
    )
    assert listing(capsys, "user", "list") == []
    code, _, err = idp(capsys, "user", "delete", "bob")
    assert (code, err) == (2, "idp: There is no user 'bob'.\n")


@pytest.mark.usefixtures("local_state")
def test_groups_add_list_disable_enable(capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "group", "add", "Ops")
    ok(capsys, "group", "add", "dev", "--description", "Developers")

    assert [g["name"] for g in listing(capsys, "group", "list")] == ["dev", "Ops"]
    ok(capsys, "group", "disable", "ops")
    groups = {g["key"]: g for g in listing(capsys, "group", "list")}
    assert groups["ops"]["disabled"] is True and groups["dev"]["disabled"] is False
    ok(capsys, "group", "enable", "OPS")
    assert all(not g["disabled"] for g in listing(capsys, "group", "list"))


@pytest.mark.usefixtures("local_state")
def test_aws_app_add_list_show_delete(capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "group", "add", "admins")
    ok(capsys, "group", "add", "readers")
    out = ok(
        capsys,
        "app",
        "add-aws",
        "prod",
        "--account-id",
        "210987654321",
        "--role",
        "Admin=admins",
        "--role",
        "arn:aws:iam::210987654321:role/team/ReadOnly=readers",
        "--session-duration",
        "7200",
        "--provider-name",
        "corp-idp",
    )
    assert "Created AWS app prod" in out and "corp-idp" in out

    [app] = listing(capsys, "app", "list")
    assert app["account_id"] == "210987654321" and app["session_duration"] == 7200
    assert app["adaptive_policy"] is None, "a new app has no adaptive policy"
    assert app["provider_arn"] == "arn:aws:iam::210987654321:saml-provider/corp-idp"
    assert [(r["role_arn"], r["group"]) for r in app["roles"]] == [
        ("arn:aws:iam::210987654321:role/Admin", "admins"),
        ("arn:aws:iam::210987654321:role/team/ReadOnly", "readers"),
    ]
    text = ok(capsys, "app", "show", "prod")
    assert "arn:aws:iam::210987654321:role/Admin" in text and "https://signin.aws.amazon.com/saml" in text

    ok(capsys, "app", "delete", "prod")
    assert listing(capsys, "app", "list") == []


@pytest.mark.usefixtures("local_state")
def test_audit_lists_the_admin_actions_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "group", "add", "ops")

    events = listing(capsys, "audit", "--days", "2")

    assert [(e["type"], e["subject"], e["actor"].startswith("cli:")) for e in events] == [
        ("group.created", "ops", True)
    ]


NEW_APP = ["app", "add-aws", "x", "--account-id", "123456789012"]
BAD_INPUT = [
    pytest.param(
        ["app", "add-aws", "x", "--account-id", "12345", "--role", "R=g"], "", "12 digits", id="account-id"
    ),
    pytest.param([*NEW_APP, "--role", "Admin"], "", "ROLE_NAME=GROUP", id="role-without-equals"),
    pytest.param([*NEW_APP, "--role", "Admin=ghosts"], "", "no group 'ghosts'", id="app-unknown-group"),
    pytest.param(
        ["user", "add", "carol", "--group", "ghosts"], "", "no group 'ghosts'", id="user-unknown-group"
    ),
    pytest.param(["user", "add", "carol", "--password-stdin"], "short\n", "8", id="short-password"),
    pytest.param(
        ["user", "add", "carol", "--password", "hunter22hunter22"],
        "",
        "unrecognized arguments",
        id="password-as-argument",
    ),
    pytest.param(["user", "add", "bad name!"], "", "username", id="bad-username"),
    pytest.param(["user", "show", "nobody"], "", "no user 'nobody'", id="unknown-user"),
]


@pytest.mark.usefixtures("local_state")
@pytest.mark.parametrize(("args", "stdin", "expected"), BAD_INPUT)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], args: list[str], stdin: str, expected: str
) -> None:
    code, out, err = idp(capsys, *args, stdin=stdin)

    assert code == 2
    assert out == ""
    assert err.startswith("idp: ") and err.count("\n") == 1 and "Traceback" not in err
    assert expected in err
    assert listing(capsys, "user", "list") == []
    assert listing(capsys, "app", "list") == []
    assert listing(capsys, "audit") == []


def test_local_without_a_running_stack_says_so_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IDP_STATE_DIR", str(tmp_path))

    code, out, err = idp(capsys, "user", "list")

    assert (code, out) == (2, "")
    assert err.startswith("idp: The local stack is not running") and err.count("\n") == 1


def test_no_target_asks_for_local_or_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("USERS_TABLE", raising=False)

    code = main(["user", "list"])

    assert code == 2
    assert "--local" in capsys.readouterr().err


def test_the_installed_idp_command_runs_as_a_subprocess(local_state: LocalState, tmp_path: Path) -> None:
    idp_script = Path(sys.executable).parent / "idp"
    env = {**os.environ, "IDP_STATE_DIR": str(tmp_path / "state")}

    added = subprocess.run(
        [str(idp_script), "--local", "user", "add", "dana", "--password-stdin"],
        input=GOOD_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    listed = subprocess.run(
        [str(idp_script), "--local", "user", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    bad = subprocess.run(
        [str(idp_script), "--local", "app", "add-aws", "x", "--account-id", "1", "--role", "R=g"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )

    assert (added.returncode, added.stderr) == (0, "")
    assert [user["username"] for user in json.loads(listed.stdout)] == ["dana"]
    assert bad.returncode == 2 and bad.stderr.startswith("idp: ") and "Traceback" not in bad.stderr


def test_stack_target_reads_the_cloudformation_outputs(
    embedded_aws: tuple[str, LocalGateway],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import boto3

    endpoint, _ = embedded_aws
    for name, value in aws_env(endpoint).items():
        monkeypatch.setenv(name, value)
    tables = Tables.with_prefix(f"stack-{secrets.token_hex(4)}-")
    create_tables(tables)
    outputs = {
        "ApiUrl": "https://idp.example.com",
        "MetadataUrl": "https://idp.example.com/saml/metadata",
        "SigningKeyId": "key-id",
        **{Tables.output_name(concern): getattr(tables, concern) for concern in Tables.concerns()},
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    stack_name = f"idp-{secrets.token_hex(4)}"
    boto3.client("cloudformation").create_stack(StackName=stack_name, TemplateBody=json.dumps(template))

    added = main(["--stack", stack_name, "group", "add", "auditors"])
    listed = main(["--stack", stack_name, "group", "list", "--json"])
    missing = main(["--stack", "no-such-stack", "group", "list"])

    out, err = capsys.readouterr()
    assert (added, listed, missing) == (0, 0, 2)
    assert json.loads(out.split("\n", 1)[1])[0]["name"] == "auditors"
    assert err.startswith("idp: Cannot read the CloudFormation stack 'no-such-stack'")
    assert err.count("\n") == 1
