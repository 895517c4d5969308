"""The `idp` second-factor commands (policy, mfa settings, tokens, user factors) against an
embedded AWS, through the same state file as `idp --local`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idp_core import accounts, apps
from idp_core.models import OathToken
from idp_local.state import LocalState
from tests.helpers.cli import idp

TOKEN_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TOKENS_CSV = f"TK0001,{TOKEN_SECRET},totp,6,30\nTK0002,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,hotp,6,30\n"


def test_policy_set_and_show_change_an_apps_mfa_requirement(
    capsys: pytest.CaptureFixture[str], demo_app: str
) -> None:
    shown_new = idp(capsys, "policy", "show", demo_app, "--json")
    turned_off = idp(capsys, "policy", "set", demo_app, "--mfa", "off")
    shown_off = idp(capsys, "policy", "show", demo_app, "--json")
    required = idp(capsys, "policy", "set", demo_app, "--mfa", "required", "--methods", "totp,backup")
    shown_required = idp(capsys, "policy", "show", demo_app, "--json")

    assert [result[0] for result in (shown_new, turned_off, shown_off, required, shown_required)] == [0] * 5
    assert json.loads(shown_new[1])["mfa_required"] is True, "new apps require a second factor"
    assert json.loads(shown_off[1])["mfa_required"] is False
    policy = json.loads(shown_required[1])
    assert policy["mfa_required"] is True
    assert sorted(policy["methods"]) == ["backup", "totp"]
    assert policy["accepted_methods"] == ["totp", "backup"]
    assert apps.get_app(demo_app).mfa_required is True
    assert json.loads(shown_new[1])["adaptive_policy"] is None


def test_policy_set_without_mfa_changes_only_what_it_names(
    capsys: pytest.CaptureFixture[str], demo_app: str
) -> None:
    # --mfa is optional: --methods alone keeps the app's requirement as it is.
    idp(capsys, "policy", "set", demo_app, "--mfa", "off")
    code, _, err = idp(capsys, "policy", "set", demo_app, "--methods", "totp")

    assert (code, err) == (0, "")
    app = apps.get_app(demo_app)
    assert (app.mfa_required, app.mfa_methods) == (False, {"totp"})


@pytest.mark.parametrize(
    "args",
    [
        ("policy", "set", "aws-demo", "--mfa", "off", "--methods", "totp,carrier-pigeon"),
        ("policy", "set", "aws-demo", "--mfa", "sometimes"),
        ("policy", "set", "aws-demo", "--mfa", "off", "--methods", ","),
        ("policy", "set", "no-such-app", "--mfa", "off"),
        ("policy", "set", "aws-demo"),
        ("policy", "set", "aws-demo", "--mfa", "off", "--adaptive", "no-such-policy"),
    ],
)
def test_bad_policy_input_exits_2_with_one_sentence_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], demo_app: str, args: tuple[str, ...]
) -> None:
    code, out, err = idp(capsys, *args)
    assert code == 2, err
    assert err.startswith("idp: ") and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""
    app = apps.get_app(demo_app)
    assert app.mfa_required is True and not app.mfa_methods


def test_mfa_settings_without_options_shows_and_with_options_saves(
    capsys: pytest.CaptureFixture[str],
    local_state: LocalState,
) -> None:
    shown = idp(capsys, "mfa", "settings", "--json")
    changed = idp(
        capsys,
        "mfa",
        "settings",
        "--default",
        "totp",
        "--allowed",
        "totp,email,backup",
        "--no-enrol-at-sign-in",
        "--sms-countries",
        "us,gb",
        "--json",
    )
    again = idp(capsys, "mfa", "settings", "--json")

    assert (shown[0], changed[0], again[0]) == (0, 0, 0)
    before = json.loads(shown[1])
    assert {"default_method", "allowed_methods", "enrol_at_sign_in"} <= set(before)
    after = json.loads(again[1])
    assert after == json.loads(changed[1])
    assert after["default_method"] == "totp"
    assert after["allowed_methods"] == ["totp", "email", "backup"]
    assert after["enrol_at_sign_in"] is False
    assert after["sms"]["allowed_countries"] == ["US", "GB"]


@pytest.mark.parametrize(
    "args",
    [
        ("--sms-countries", "USA,GB"),
        ("--default", "fax"),
        ("--allowed", "totp,fax"),
        ("--default", "totp,sms"),
    ],
)
def test_bad_mfa_settings_exit_2_and_save_nothing(
    capsys: pytest.CaptureFixture[str],
    local_state: LocalState,
    args: tuple[str, ...],
) -> None:
    before = idp(capsys, "mfa", "settings", "--json")[1]
    code, _, err = idp(capsys, "mfa", "settings", *args)
    after = idp(capsys, "mfa", "settings", "--json")[1]
    assert code == 2 and err.startswith("idp: ") and err.count("\n") == 1
    assert after == before


def test_tokens_are_imported_listed_and_assigned_without_showing_a_secret(
    capsys: pytest.CaptureFixture[str], with_data_key: LocalState, tmp_path: Path
) -> None:
    accounts.create_user(accounts.NewUser("bob", email="bob@example.com"))
    csv_file = tmp_path / "tokens.csv"
    csv_file.write_text(TOKENS_CSV, encoding="utf-8")

    imported = idp(capsys, "token", "import", str(csv_file))
    listed = idp(capsys, "token", "list", "--json")
    assigned = idp(capsys, "token", "assign", "TK0001", "bob")
    listed_after = idp(capsys, "token", "list", "--json")
    factors = idp(capsys, "user", "factors", "bob", "--json")
    factors_table = idp(capsys, "user", "factors", "bob")

    assert [r[0] for r in (imported, listed, assigned, listed_after, factors, factors_table)] == [0] * 6
    assert "2 token(s)" in imported[1]
    tokens = {t["serial"]: t for t in json.loads(listed[1])}
    assert set(tokens) == {"TK0001", "TK0002"}
    assert tokens["TK0002"]["kind"] == "hotp" and tokens["TK0001"]["assigned_to"] is None
    assert {t["serial"]: t["assigned_to"] for t in json.loads(listed_after[1])}["TK0001"] == "bob"
    (factor,) = json.loads(factors[1])
    assert (factor["kind"], factor["token_serial"]) == ("token", "TK0001")
    # The secrets are stored encrypted and never printed.
    for _, out, _ in (imported, listed, assigned, listed_after, factors, factors_table):
        assert TOKEN_SECRET not in out and "secret" not in out.lower()
    assert TOKEN_SECRET not in OathToken.get("TK0002").secret


def test_a_token_file_with_one_bad_row_imports_nothing(
    capsys: pytest.CaptureFixture[str], with_data_key: LocalState, tmp_path: Path
) -> None:
    csv_file = tmp_path / "tokens.csv"
    csv_file.write_text(TOKENS_CSV + "TK0003,not base32!,totp,6,30\n", encoding="utf-8")

    code, _, err = idp(capsys, "token", "import", str(csv_file))
    listed = idp(capsys, "token", "list", "--json")

    assert code == 2 and err.startswith("idp: ") and err.count("\n") == 1
    assert json.loads(listed[1]) == []


@pytest.mark.parametrize(
    "args",
    [
        ("token", "import", "/no/such/tokens.csv"),
        ("token", "assign", "NO-SUCH-SERIAL", "bob"),
        ("token", "assign", "TK0001", "nobody"),
        ("user", "factors", "nobody"),
    ],
)
def test_bad_token_and_factor_input_exits_2(
    capsys: pytest.CaptureFixture[str], with_data_key: LocalState, args: tuple[str, ...]
) -> None:
    accounts.create_user(accounts.NewUser("bob"))
    code, out, err = idp(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("idp: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_token_file_that_is_not_text_is_refused(
    capsys: pytest.CaptureFixture[str], with_data_key: LocalState, tmp_path: Path
) -> None:
    binary = tmp_path / "tokens.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = idp(capsys, "token", "import", str(binary))
    assert code == 2 and "not UTF-8 text" in err, err
