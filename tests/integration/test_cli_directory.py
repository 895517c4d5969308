"""`idp directory add-ldap|update|list|show|delete|test` against an embedded AWS and a real
OpenLDAP slapd: what an admin types, the tests of a directory's settings with a precise
reason for each failure, and bad input that exits 2 with one sentence and stores nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from idp_core.directories import store
from idp_core.directories.settings import AD_ATTRIBUTES, SWITCHES
from tests.helpers.cli import idp, listing, ok
from tests.helpers.ldap_directory import ALICE_PASSWORD, SERVICE_PASSWORD
from tests.support.slapd import Slapd, Subtree, closed_port

pytestmark = pytest.mark.usefixtures("with_data_key")


def add_args(slapd: Slapd, tree: Subtree, *extra: str, name: str = "corp") -> list[str]:
    return [
        "directory", "add-ldap", name,
        "--type", "openldap",
        "--url", slapd.url,
        "--allow-cleartext",  # slapd speaks plain LDAP on 127.0.0.1 (S30)
        "--bind-dn", f"uid=svc,{tree.dn}",
        "--bind-password-stdin",
        "--base", tree.people,
        *extra,
    ]  # fmt: skip


@pytest.fixture
def corp(capsys: pytest.CaptureFixture[str], slapd: Slapd, ldap_tree: Subtree, people: dict[str, str]) -> str:
    ok(capsys, *add_args(slapd, ldap_tree), stdin=SERVICE_PASSWORD + "\n")
    return "corp"


def test_a_directory_is_added_shown_listed_updated_and_deleted(
    capsys: pytest.CaptureFixture[str], slapd: Slapd, ldap_tree: Subtree
) -> None:
    added = ok(
        capsys,
        *add_args(slapd, ldap_tree, "--filter", "mail", "--map", "phone=mobile", "--activate"),
        "--display-name", "Corp LDAP", "--schedule", "rate(1 hour)",
        stdin=SERVICE_PASSWORD + "\n",
    )  # fmt: skip
    assert "Corp LDAP" in added and SERVICE_PASSWORD not in added
    sealed = store.get_directory("corp").bind_password
    assert sealed and SERVICE_PASSWORD not in sealed

    shown = listing(capsys, "directory", "show", "corp")
    assert (shown["name"], shown["display_name"], shown["type"], shown["urls"]) == (
        "corp",
        "Corp LDAP",
        "openldap",
        [slapd.url],
    )
    assert (shown["bind_dn"], shown["bases"], shown["bind_password_stored"]) == (
        f"uid=svc,{ldap_tree.dn}",
        [ldap_tree.people],
        True,
    )
    assert (shown["user_filter"], shown["search_filter"]) == ("mail", "(mail={username})")
    assert shown["attribute_map"]["phone"] == "mobile" and shown["attribute_map"]["email"] == "mail"
    assert (shown["activate"], shown["sync_users"], shown["schedule"]) == (True, False, "rate(1 hour)")
    text = ok(capsys, "directory", "show", "corp")
    assert re.search(r"^bind password stored +yes$", text, re.M) and re.search(
        r"^map phone +mobile$", text, re.M
    )
    for output in (text, str(shown)):
        assert SERVICE_PASSWORD not in output and sealed not in output
    assert [d["name"] for d in listing(capsys, "directory", "list")] == ["corp"]
    table = ok(capsys, "directory", "list")
    assert table.splitlines()[0].split()[:3] == ["NAME", "TYPE", "DISPLAY"] and "corp" in table

    # Only what is given changes; the password stays unless a new one is read.
    ok(capsys, "directory", "update", "corp", "--no-activate", "--sync-users", "--map", "email=mailAlias")
    updated = listing(capsys, "directory", "show", "corp")
    assert (updated["activate"], updated["sync_users"], updated["display_name"]) == (False, True, "Corp LDAP")
    assert updated["attribute_map"]["phone"] == "mobile" and updated["attribute_map"]["email"] == "mailAlias"
    assert store.get_directory("corp").bind_password == sealed
    ok(
        capsys,
        "directory",
        "update",
        "corp",
        "--bind-password-stdin",
        "--schedule",
        "none",
        stdin="new-secret\n",
    )
    item = store.get_directory("corp")
    assert item.bind_password != sealed
    assert store.bind_password(item, kms=_kms()) == "new-secret"
    assert listing(capsys, "directory", "show", "corp")["schedule"] is None

    assert "Deleted" in ok(capsys, "directory", "delete", "corp")
    assert listing(capsys, "directory", "list") == []


def test_changing_the_type_brings_that_types_default_mapping_and_filter(
    capsys: pytest.CaptureFixture[str], slapd: Slapd, ldap_tree: Subtree
) -> None:
    ok(capsys, *add_args(slapd, ldap_tree), stdin=SERVICE_PASSWORD)
    ok(capsys, "directory", "update", "corp", "--type", "ad")
    shown = listing(capsys, "directory", "show", "corp")
    assert (shown["type"], shown["user_filter"], shown["attribute_map"]) == (
        "ad",
        "sAMAccountName",
        AD_ATTRIBUTES,
    )


def test_every_switch_turns_on_and_off(
    capsys: pytest.CaptureFixture[str], slapd: Slapd, ldap_tree: Subtree
) -> None:
    on = [f"--{switch.replace('_', '-')}" for switch in SWITCHES]
    ok(capsys, *add_args(slapd, ldap_tree, *on), stdin=SERVICE_PASSWORD)
    assert all(listing(capsys, "directory", "show", "corp")[switch] is True for switch in SWITCHES)
    # Cleartext may be off only for an encrypted connection (S30).
    off = [f"--no-{switch.replace('_', '-')}" for switch in SWITCHES]
    ok(capsys, "directory", "update", "corp", *off, "--starttls")
    assert all(listing(capsys, "directory", "show", "corp")[switch] is False for switch in SWITCHES)


def test_all_tests_pass_for_a_user_with_the_right_password(
    capsys: pytest.CaptureFixture[str],
    corp: str,
    people: dict[str, str],
) -> None:
    code, out, err = idp(
        capsys, "directory", "test", corp, "--user", "alice", "--password-stdin", stdin=ALICE_PASSWORD
    )

    assert (code, err) == (0, "")
    lines = [line for line in out.splitlines() if not line.startswith(" ")]
    assert [line.split()[:2] for line in lines] == [
        ["connection", "ok:"],
        ["bind", "ok:"],
        ["attributes", "ok:"],
        ["sign-in", "ok:"],
    ]
    assert "email: alice@example.com" in out and "groups: awsadmins,developers" in out
    assert f"alice signed in as {people['alice']}." in out


def test_without_a_user_only_the_connection_and_the_bind_are_tested(
    capsys: pytest.CaptureFixture[str], corp: str
) -> None:
    out = ok(capsys, "directory", "test", corp)
    assert [line.split()[0] for line in out.splitlines()] == ["connection", "bind"]


@pytest.mark.parametrize(
    ("user", "password", "line", "reason"),
    [
        ("alice", "wrong-password", "sign-in", "refused the password"),
        ("bob", ALICE_PASSWORD, "attributes", r"No entry under .* matches \(uid=bob\)"),
        (
            "admin",
            None,
            "attributes",
            r"has no attribute for: phone \(telephoneNumber\), first name \(givenName\)",
        ),
    ],
)
def test_a_failing_test_names_its_precise_reason_and_exits_1(
    capsys: pytest.CaptureFixture[str], corp: str, user: str, password: str | None, line: str, reason: str
) -> None:
    args = ["directory", "test", corp, "--user", user] + (["--password-stdin"] if password else [])
    code, out, _ = idp(capsys, *args, stdin=password or "")

    assert code == 1
    failed = [row for row in out.splitlines() if "FAILED" in row]
    assert len(failed) == 1 and failed[0].startswith(line)
    assert re.search(reason, failed[0]), failed[0]


def test_a_wrong_bind_password_fails_the_bind_and_the_user_tests_do_not_run(
    capsys: pytest.CaptureFixture[str],
    slapd: Slapd,
    ldap_tree: Subtree,
    people: dict[str, str],
) -> None:
    ok(capsys, *add_args(slapd, ldap_tree), stdin="not-the-password")
    code, out, _ = idp(
        capsys, "directory", "test", "corp", "--user", "alice", "--password-stdin", stdin=ALICE_PASSWORD
    )

    assert code == 1
    rows = out.splitlines()
    assert rows[0].startswith("connection") and "ok:" in rows[0]
    assert rows[1].startswith("bind") and f"refused the bind DN uid=svc,{ldap_tree.dn}" in rows[1]
    assert [row.split()[0] for row in rows[2:]] == ["attributes", "sign-in"]
    assert all("not run" in row for row in rows[2:])


def test_an_unreachable_url_is_saved_and_its_test_says_unreachable(
    capsys: pytest.CaptureFixture[str], ldap_tree: Subtree
) -> None:
    url = f"ldap://127.0.0.1:{closed_port()}"
    ok(
        capsys,
        "directory", "add-ldap", "corp", "--type", "openldap", "--url", url, "--allow-cleartext",
        "--bind-dn", f"uid=svc,{ldap_tree.dn}", "--bind-password-stdin", "--base", ldap_tree.people,
        stdin=SERVICE_PASSWORD,
    )  # fmt: skip
    code, out, _ = idp(capsys, "directory", "test", "corp")
    assert code == 1
    rows = out.splitlines()
    assert rows[0].startswith("connection") and f"No directory server could be reached ({url}" in rows[0]
    assert rows[1].startswith("bind") and "not run" in rows[1]


def test_password_stdin_without_a_user_is_bad_input(capsys: pytest.CaptureFixture[str], corp: str) -> None:
    code, out, err = idp(capsys, "directory", "test", corp, "--password-stdin", stdin=ALICE_PASSWORD)
    assert (code, out) == (2, "")
    assert err.startswith("idp: --password-stdin") and err.count("\n") == 1


def _kms() -> Any:
    import boto3

    return boto3.client("kms")


@pytest.fixture
def bad_ca(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    return str(path)


@pytest.mark.parametrize(
    ("extra", "stdin", "message"),
    [
        (["--ca-cert", "BAD_CA"], SERVICE_PASSWORD, "not a PEM X.509 certificate"),
        (["--ca-cert", "/nonexistent/ca.pem"], SERVICE_PASSWORD, "cannot read the CA certificate"),
        (["--filter", "(cn=admin)"], SERVICE_PASSWORD, "exactly one {username} slot"),
        (["--filter", "(uid={username}"], SERVICE_PASSWORD, "not a valid LDAP filter"),
        (["--map", "shoe_size=shoeSize"], SERVICE_PASSWORD, "'shoe_size' is not a mapped field"),
        (["--map", "email"], SERVICE_PASSWORD, "--map expects FIELD=ATTRIBUTE"),
        (["--map", "email=mail;binary"], SERVICE_PASSWORD, "is not an LDAP attribute name"),
        (["--url", "http://ldap.example.com"], SERVICE_PASSWORD, "is not a directory server URL"),
        (["--schedule", "every hour"], SERVICE_PASSWORD, "is not a schedule"),
        (["--welcome-emails"], SERVICE_PASSWORD, "Welcome e-mails go to users created from the directory"),
        (["--group-lookup", "search"], SERVICE_PASSWORD, "A group search needs the DN"),
        ([], "", "--bind-password-stdin read an empty password"),
        ([], "two\nlines", "--bind-password-stdin expects a single line"),
        (["--type", "novell"], SERVICE_PASSWORD, "invalid choice: 'novell'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_stores_nothing(
    capsys: pytest.CaptureFixture[str],
    slapd: Slapd,
    ldap_tree: Subtree,
    bad_ca: str,
    extra: list[str],
    stdin: str,
    message: str,
) -> None:
    args = add_args(slapd, ldap_tree, *[bad_ca if item == "BAD_CA" else item for item in extra])
    code, out, err = idp(capsys, *args, stdin=stdin)

    assert (code, out) == (2, "")
    assert err.startswith("idp: ") and err.count("\n") == 1 and message in err
    assert listing(capsys, "directory", "list") == []


def test_cleartext_needs_the_switch_and_show_says_how_connections_are_secured(
    capsys: pytest.CaptureFixture[str], slapd: Slapd, ldap_tree: Subtree
) -> None:
    plain = [arg for arg in add_args(slapd, ldap_tree) if arg != "--allow-cleartext"]
    code, out, err = idp(capsys, *plain, stdin=SERVICE_PASSWORD + "\n")
    assert (code, out) == (2, "")
    assert err.startswith(f"idp: Connections to {slapd.url} would not be encrypted,") and err.count("\n") == 1
    assert store.list_directories() == []

    ok(capsys, *add_args(slapd, ldap_tree), stdin=SERVICE_PASSWORD + "\n")
    shown = listing(capsys, "directory", "show", "corp")
    assert (shown["allow_cleartext"], shown["connection"]) == (
        True,
        "Unencrypted, allowed by an administrator",
    )
    text = ok(capsys, "directory", "show", "corp").splitlines()
    assert ["connection", "Unencrypted, allowed by an administrator"] in [
        line.split(None, 1) for line in text
    ]
    # Turning the switch off while the URL is still ldap:// without StartTLS is refused...
    code, _, err = idp(capsys, "directory", "update", "corp", "--no-allow-cleartext")
    assert code == 2 and "would not be encrypted" in err
    assert store.load("corp").allow_cleartext is True
    # ...and allowed together with StartTLS.
    ok(capsys, "directory", "update", "corp", "--no-allow-cleartext", "--starttls")
    shown = listing(capsys, "directory", "show", "corp")
    assert (shown["allow_cleartext"], shown["connection"]) == (False, "Encrypted (StartTLS)")


def test_bad_input_on_update_changes_nothing(capsys: pytest.CaptureFixture[str], corp: str) -> None:
    before = store.get_directory(corp)
    for args in (
        ["--url", "ldap://bad host"],
        ["--filter", "(uid=x)"],
        ["--starttls", "--url", "ldaps://h:636"],
    ):
        code, _, err = idp(capsys, "directory", "update", corp, "--display-name", "Changed", *args)
        assert code == 2 and err.startswith("idp: ")
    after = store.get_directory(corp)
    assert (after.settings, after.bind_password, after.updated_at) == (
        before.settings,
        before.bind_password,
        before.updated_at,
    )


@pytest.mark.parametrize(
    "args", [("update", "ghost", "--activate"), ("show", "ghost"), ("delete", "ghost"), ("test", "ghost")]
)
def test_an_unknown_directory_exits_2(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    code, out, err = idp(capsys, "directory", *args)
    assert (code, out) == (2, "")
    assert err == "idp: There is no directory 'ghost'.\n"


def test_sync_imports_users_and_groups_now_and_shows_the_last_run(
    capsys: pytest.CaptureFixture[str], corp: str, ldap_tree: Subtree
) -> None:
    from idp_core.models import User

    off = ok(capsys, "directory", "sync", corp, "--full")
    assert re.search(r"^created +0$", off, re.M) and re.search(r"^not registered +2$", off, re.M)
    assert "problem: auto registration is off: 2 directory users were not created" in off
    ok(capsys, "directory", "update", corp, "--auto-register")
    counts = listing(capsys, "directory", "sync", corp, "--full")
    assert (counts["created"], counts["not_registered"], counts["errors"], counts["full"]) == (2, 0, 0, True)
    assert User.get("alice").source == "ldap:corp" and User.get("alice").group_names() == [
        "awsadmins",
        "developers",
    ]
    text = ok(capsys, "directory", "sync", corp)
    assert re.search(r"^run +incremental$", text, re.M) and re.search(r"^created +0$", text, re.M)
    shown = listing(capsys, "directory", "show", corp)
    assert shown["last_import"]["full"] is False and shown["last_import"]["unchanged"] >= 0
    code, _, err = idp(capsys, "directory", "sync", "ghost")
    assert code == 2 and "There is no directory 'ghost'" in err


def test_sync_refuses_to_run_while_another_import_holds_the_lock_and_runs_once_it_expired(
    capsys: pytest.CaptureFixture[str], corp: str
) -> None:
    """A scheduled or requested run is importing: `idp directory sync` exits 1 with when the
    lock ends at the latest, and imports nothing; a lock whose run died runs out and no longer
    stops it."""
    from idp_core.directories import scheduling
    from idp_core.models import AuditEvent, User

    ok(capsys, "directory", "update", corp, "--auto-register")
    now = time.time()
    held = scheduling.take_lock(store.get_directory(corp), now, slot=False)
    assert held is not None

    code, out, err = idp(capsys, "directory", "sync", corp, "--full")

    until = time.strftime("%H:%M", time.gmtime(held))
    assert (code, out) == (1, "")
    assert (
        err
        == f"idp: An import of corp is running (until at most {until} UTC); try again when it has finished.\n"
    )
    assert [user for user in User.scan() if user.source == "ldap:corp"] == []
    assert [e for e in AuditEvent.scan() if e.type == "directory.import"] == []
    assert store.get_directory(corp).running_until == held

    # The run that held it was killed: its lock expired a second ago.
    scheduling.release_lock(corp, held)
    expired = scheduling.take_lock(store.get_directory(corp), now - scheduling.LOCK_SECONDS - 1, slot=False)
    assert expired is not None and expired < time.time()

    counts = listing(capsys, "directory", "sync", corp, "--full")

    assert (counts["created"], counts["full"]) == (2, True)
    item = store.get_directory(corp)
    # The sync released its own lock, recorded its full run and took no scheduled slot.
    assert (item.running_until, item.last_full_at, item.last_scheduled_at) == (
        None,
        counts["finished_at"],
        None,
    )
