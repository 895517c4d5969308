"""`idp adaptive create|update|list|show|delete` against an embedded AWS: what an admin types,
and bad input that exits 2 with one sentence and saves nothing."""

from __future__ import annotations

import json

import pytest

from idp_local.state import LocalState
from tests.integration.test_cli import embedded_aws, idp, listing, local_state, ok  # noqa: F401 - fixtures


def test_a_policy_is_created_changed_listed_shown_and_deleted(
    capsys: pytest.CaptureFixture[str],
    local_state: LocalState,  # noqa: F811 - fixture
) -> None:
    created = ok(
        capsys,
        "adaptive", "create", "office",
        "--allow-cidr", "192.0.2.0/24", "--allow-cidr", "2001:db8::/32",
        "--deny-cidr", "192.0.2.128/25",
        "--outside-allow", "challenge",
    )  # fmt: skip
    assert "192.0.2.0/24" in created and "challenge" in created
    assert "not yet applied at sign-in" in created
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
    local_state: LocalState,  # noqa: F811 - fixture
    args: tuple[str, ...],
) -> None:
    code, _, err = idp(capsys, "adaptive", *args)
    assert code == 2 and err.startswith("idp: ") and err.count("\n") == 1, (code, err)
    assert json.loads(ok(capsys, "adaptive", "list", "--json")) == []
