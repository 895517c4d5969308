"""`idp adaptive create|update|list|show|delete` and `idp policy set APP --adaptive NAME`
against an embedded AWS: what an admin types, and bad input that exits 2 with one sentence
and saves nothing."""

from __future__ import annotations

import json

import pytest

from idp_core import apps
from idp_local.state import LocalState
from tests.helpers.cli import idp, listing, ok


def test_a_policy_is_created_changed_listed_shown_and_deleted(
    capsys: pytest.CaptureFixture[str],
    local_state: LocalState,
) -> None:
    created = ok(
        capsys,
        "adaptive", "create", "office",
        "--allow-cidr", "192.0.2.0/24", "--allow-cidr", "2001:db8::/32",
        "--deny-cidr", "192.0.2.128/25",
        "--outside-allow", "challenge",
    )  # fmt: skip
    assert "192.0.2.0/24" in created and "challenge" in created
    ok(
        capsys,
        "adaptive",
        "update",
        "office",
        "--register-devices",
        "--max-devices",
        "2",
        "--on-exceed",
        "deny",
    )
    shown = listing(capsys, "adaptive", "show", "office")
    assert shown["allow_cidrs"] == ["192.0.2.0/24", "2001:db8::/32"]  # kept by the update
    assert shown["deny_cidrs"] == ["192.0.2.128/25"]
    assert (shown["outside_allow"], shown["register_devices"], shown["max_devices"], shown["on_exceed"]) == (
        "challenge",
        True,
        2,
        "deny",
    )
    assert [p["name"] for p in listing(capsys, "adaptive", "list")] == ["office"]
    table = ok(capsys, "adaptive", "list")
    assert table.splitlines()[0].split()[:3] == ["NAME", "ALLOW", "DENY"] and "office" in table
    assert "Deleted" in ok(capsys, "adaptive", "delete", "office")
    assert listing(capsys, "adaptive", "list") == []


@pytest.mark.parametrize(
    "args",
    [
        ("create", "office", "--allow-cidr", "10.0.0.1/8"),
        ("create", "office", "--deny-cidr", "not-a-network"),
        ("create", "office", "--max-devices", "-1"),
        ("create", "office", "--max-devices", "1000000"),
        ("create", "office", "--max-devices", "1000"),
        ("create", "office", "--register-devices", "--trust-days", "400"),
        ("create", "office", "--register-devices", "--trust-days", "-1"),
        # Trust needs registered devices: the trusted device must be recognised again.
        ("create", "office", "--trust-days", "30"),
        ("create", "office", "--deny-cidr", "nonsense"),
        ("create", "office", "--max-devices", "two"),
        ("create", "office", "--outside-allow", "maybe"),
        ("create", "Bad Name!"),
        ("update", "ghost", "--max-devices", "3"),
        ("show", "ghost"),
        ("delete", "ghost"),
    ],
)
def test_bad_input_and_unknown_names_exit_2_and_save_nothing(
    capsys: pytest.CaptureFixture[str],
    local_state: LocalState,
    args: tuple[str, ...],
) -> None:
    code, _, err = idp(capsys, "adaptive", *args)
    assert code == 2 and err.startswith("idp: ") and err.count("\n") == 1, (code, err)
    assert json.loads(ok(capsys, "adaptive", "list", "--json")) == []


def test_trust_days_and_new_sign_in_notices_are_saved_shown_and_listed(
    capsys: pytest.CaptureFixture[str],
    local_state: LocalState,
) -> None:
    created = listing(
        capsys,
        "adaptive",
        "create",
        "laptops",
        "--register-devices",
        "--trust-days",
        "30",
        "--notify-new-sign-in",
    )
    assert (created["trust_days"], created["notify_new_sign_in"]) == (30, True)
    text = ok(capsys, "adaptive", "show", "laptops")
    assert {tuple(line.rsplit(None, 1)) for line in text.splitlines()} >= {
        ("trust days", "30"),
        ("notify new sign in", "yes"),
    }
    # The notices are sign-in behaviour now, so nothing says they are not applied.
    assert "not yet applied" not in text

    ok(capsys, "adaptive", "update", "laptops", "--no-notify-new-sign-in")
    shown = listing(capsys, "adaptive", "show", "laptops")
    assert (shown["trust_days"], shown["notify_new_sign_in"], shown["register_devices"]) == (30, False, True)
    ok(capsys, "adaptive", "update", "laptops", "--trust-days", "0")
    assert listing(capsys, "adaptive", "show", "laptops")["trust_days"] == 0

    ok(capsys, "adaptive", "update", "laptops", "--trust-days", "7", "--notify-new-sign-in")
    header, row = ok(capsys, "adaptive", "list").splitlines()
    assert header.split()[-3:] == ["NOTIFY", "TRUST", "DAYS"]
    assert row.split()[-2:] == ["yes", "7"]


@pytest.mark.parametrize(
    "args",
    [
        ("--max-devices", "-1"),
        ("--max-devices", "1000"),
        ("--trust-days", "400"),
        ("--allow-cidr", "10.0.0.1/8"),
        ("--deny-cidr", "nonsense"),
        ("--no-register-devices",),  # trust without registered devices
    ],
)
def test_a_bad_update_leaves_the_stored_policy_as_it_was(
    capsys: pytest.CaptureFixture[str],
    local_state: LocalState,
    args: tuple[str, ...],
) -> None:
    ok(capsys, "adaptive", "create", "office", "--allow-cidr", "192.0.2.0/24", "--register-devices")
    ok(capsys, "adaptive", "update", "office", "--trust-days", "14", "--max-devices", "3")
    before = listing(capsys, "adaptive", "show", "office")

    code, out, err = idp(capsys, "adaptive", "update", "office", *args)

    assert code == 2 and out == "" and err.startswith("idp: ") and err.count("\n") == 1, (code, err)
    assert listing(capsys, "adaptive", "show", "office") == before


# ---------------------------------------------------------------- an app's adaptive policy


def _policy_events(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [e for e in listing(capsys, "audit") if e["type"] == "app.mfa_policy.changed"]


def test_policy_set_adaptive_stores_the_policy_shows_it_and_audits_it(
    capsys: pytest.CaptureFixture[str],
    demo_app: str,
) -> None:
    ok(capsys, "adaptive", "create", "office", "--allow-cidr", "192.0.2.0/24")

    said = ok(capsys, "policy", "set", demo_app, "--adaptive", "Office")

    # The name goes through the same cleaning as `idp adaptive`; MFA stays as it was.
    assert ("adaptive policy", "office") in {tuple(line.rsplit(None, 1)) for line in said.splitlines()}
    assert apps.get_app(demo_app).adaptive_policy == "office"
    assert apps.get_app(demo_app).mfa_required is True
    shown = listing(capsys, "policy", "show", demo_app)
    assert (shown["adaptive_policy"], shown["mfa_required"]) == ("office", True)
    assert listing(capsys, "app", "show", demo_app)["adaptive_policy"] == "office"
    assert [a["adaptive_policy"] for a in listing(capsys, "app", "list")] == ["office"]
    text = ok(capsys, "policy", "show", demo_app)
    assert ("adaptive policy", "office") in {tuple(line.rsplit(None, 1)) for line in text.splitlines()}
    assert ("adaptive_policy", "office") in {
        tuple(line.rsplit(None, 1)) for line in ok(capsys, "app", "show", demo_app).splitlines()
    }
    (event,) = _policy_events(capsys)
    assert event["subject"] == demo_app and str(event["actor"]).startswith("cli:")
    assert event["details"] == {
        "mfa_required": "True",
        "methods": "(allowed methods)",
        "adaptive": "office",
        "phishing_resistant_only": "False",
    }


def test_policy_set_adaptive_none_removes_the_policy(
    capsys: pytest.CaptureFixture[str],
    demo_app: str,
) -> None:
    ok(capsys, "adaptive", "create", "office")
    ok(capsys, "policy", "set", demo_app, "--adaptive", "office")

    text = ok(capsys, "policy", "set", demo_app, "--adaptive", "none")

    assert apps.get_app(demo_app).adaptive_policy is None
    assert ("adaptive policy", "none") in {tuple(line.rsplit(None, 1)) for line in text.splitlines()}
    assert listing(capsys, "app", "show", demo_app)["adaptive_policy"] is None
    newest = _policy_events(capsys)[0]
    assert newest["details"]["adaptive"] == "none"  # type: ignore[index]


@pytest.mark.parametrize("before", [None, "office"])
def test_an_unknown_adaptive_policy_is_named_and_the_app_is_left_unchanged(
    capsys: pytest.CaptureFixture[str],
    demo_app: str,
    before: str | None,
) -> None:
    ok(capsys, "adaptive", "create", "office")
    if before:
        ok(capsys, "policy", "set", demo_app, "--adaptive", before)
    events_before = len(_policy_events(capsys))

    # Checked before anything is written: the --mfa change in the same command is not made either.
    code, out, err = idp(capsys, "policy", "set", demo_app, "--mfa", "off", "--adaptive", "ghost")

    assert code == 2 and out == "" and err.count("\n") == 1, (code, err)
    assert err == "idp: There is no adaptive policy 'ghost'.\n"
    app = apps.get_app(demo_app)
    assert (app.adaptive_policy, app.mfa_required) == (before, True)
    assert len(_policy_events(capsys)) == events_before


@pytest.mark.parametrize("name", ["Bad Name!", "x" * 64])
def test_a_malformed_adaptive_policy_name_is_refused(
    capsys: pytest.CaptureFixture[str],
    demo_app: str,
    name: str,
) -> None:
    code, out, err = idp(capsys, "policy", "set", demo_app, "--adaptive", name)

    assert code == 2 and out == "" and "policy name" in err and err.count("\n") == 1, (code, err)
    assert apps.get_app(demo_app).adaptive_policy is None


def test_policy_set_needs_at_least_one_change(
    capsys: pytest.CaptureFixture[str],
    demo_app: str,
) -> None:
    code, out, err = idp(capsys, "policy", "set", demo_app)

    assert code == 2 and out == ""
    assert "--mfa" in err and "--methods" in err and "--adaptive" in err and err.count("\n") == 1
    assert _policy_events(capsys) == []


def test_a_policy_an_app_uses_cannot_be_deleted(
    capsys: pytest.CaptureFixture[str],
    demo_app: str,
) -> None:
    ok(capsys, "adaptive", "create", "office")
    ok(capsys, "policy", "set", demo_app, "--adaptive", "office")

    code, out, err = idp(capsys, "adaptive", "delete", "office")

    assert code == 2 and out == "" and demo_app in err and err.count("\n") == 1, (code, err)
    assert [p["name"] for p in listing(capsys, "adaptive", "list")] == ["office"]
    assert apps.get_app(demo_app).adaptive_policy == "office"
    # Once no app uses it, it goes.
    ok(capsys, "policy", "set", demo_app, "--adaptive", "none")
    ok(capsys, "adaptive", "delete", "office")
    assert listing(capsys, "adaptive", "list") == []
