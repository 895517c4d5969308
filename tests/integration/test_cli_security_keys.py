"""The `idp` commands for security keys and passkeys: a user's keys (name, model, created,
last used) and removing one, the app switch "phishing-resistant only", and the MFA settings
for user verification and allowed models; bad input exits 2 with one sentence."""

from __future__ import annotations

import json

import pytest

from idp_core import accounts, apps
from idp_core.clock import SYSTEM_CLOCK
from idp_core.mfa import factors, policy
from idp_core.models import Factor, WebAuthnCredential
from idp_local.state import LocalState
from tests.helpers.cli import idp, listing, ok
from tests.helpers.mfa import make_factor

YUBIKEY_5 = "cb69481e-8ff7-4039-93ec-0a2729a154a8"


@pytest.fixture
def alices_key(bound: LocalState) -> str:
    accounts.create_user(accounts.NewUser("alice", password="correct horse battery staple"))
    make_factor("alice", "totp", SYSTEM_CLOCK)
    key = make_factor(
        "alice", "webauthn", SYSTEM_CLOCK, aaguid=YUBIKEY_5, credential_id="Y3JlZA",
        public_key="a2V5", sign_count=3, transports={"usb"}, user_verified=True,
    )  # fmt: skip
    key.update(actions=[Factor.label.set("YubiKey")])
    WebAuthnCredential("Y3JlZA", username="alice", factor_id=key.factor_id, created_at=1.0).save()
    return key.factor_id


def test_user_keys_lists_name_model_and_dates_and_only_keys(
    capsys: pytest.CaptureFixture[str], alices_key: str
) -> None:
    [key] = listing(capsys, "user", "keys", "alice")
    assert (key["id"], key["name"], key["aaguid"], key["transports"]) == (
        alices_key,
        "YubiKey",
        YUBIKEY_5,
        ["usb"],
    )
    assert key["created_at"] and key["last_used_at"] is None
    table = ok(capsys, "user", "keys", "alice")
    assert "MODEL (AAGUID)" in table and YUBIKEY_5 in table and "totp" not in table


def test_user_remove_key_removes_the_key_and_its_credential(
    capsys: pytest.CaptureFixture[str], alices_key: str
) -> None:
    out = ok(capsys, "user", "remove-key", "alice", alices_key)
    assert "Removed the security key 'YubiKey' of alice" in out
    assert [f.kind for f in factors.list_factors("alice")] == ["totp"]
    with pytest.raises(WebAuthnCredential.DoesNotExist):
        WebAuthnCredential.get("Y3JlZA")


def test_remove_key_refuses_another_kind_of_factor_and_unknown_ids(
    capsys: pytest.CaptureFixture[str], alices_key: str
) -> None:
    [totp] = [f for f in factors.list_factors("alice") if f.kind == "totp"]
    code, _, err = idp(capsys, "user", "remove-key", "alice", totp.factor_id)
    assert code == 2 and "is not a security key of alice" in err
    code, _, err = idp(capsys, "user", "remove-key", "alice", "no-such-key")
    assert code == 2 and err.strip().endswith(".")
    assert len(factors.list_factors("alice")) == 2


def test_policy_set_phishing_resistant_only(capsys: pytest.CaptureFixture[str], demo_app: str) -> None:
    ok(capsys, "policy", "set", demo_app, "--methods", "totp,webauthn", "--phishing-resistant-only")
    shown = json.loads(ok(capsys, "policy", "show", demo_app, "--json"))
    assert shown["phishing_resistant_only"] is True and shown["accepted_methods"] == ["webauthn"]
    assert apps.get_app(demo_app).phishing_resistant_only is True
    ok(capsys, "policy", "set", demo_app, "--no-phishing-resistant-only")
    shown = json.loads(ok(capsys, "policy", "show", demo_app, "--json"))
    assert shown["accepted_methods"] == ["totp", "webauthn"]


def test_mfa_settings_for_security_keys(capsys: pytest.CaptureFixture[str], bound: LocalState) -> None:
    shown = json.loads(
        ok(
            capsys,
            "mfa",
            "settings",
            "--webauthn-user-verification",
            "required",
            "--webauthn-models",
            YUBIKEY_5,
            "--json",
        )
    )
    assert shown["webauthn_user_verification"] == "required" and shown["webauthn_models"] == [YUBIKEY_5]
    assert policy.load_settings().webauthn_models == (YUBIKEY_5,)
    shown = json.loads(ok(capsys, "mfa", "settings", "--webauthn-models", "none", "--json"))
    assert shown["webauthn_models"] == []


def test_bad_security_key_settings_exit_2_and_save_nothing(
    capsys: pytest.CaptureFixture[str], bound: LocalState
) -> None:
    code, _, err = idp(capsys, "mfa", "settings", "--webauthn-models", "not-an-aaguid")
    assert code == 2 and "is not an AAGUID" in err
    code, _, err = idp(capsys, "mfa", "settings", "--webauthn-user-verification", "sometimes")
    assert code == 2
    assert policy.load_settings().webauthn_models == ()
