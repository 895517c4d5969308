"""The rules of `idp aws login` that need no IdP: where an assertion may go, and how the shared
credentials file changes (one profile's keys, every other line kept, mode 0600)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from idp_cli import aws_signin
from idp_cli.aws_credentials import check_profile_name, set_keys
from idp_cli.aws_signin import Browser, is_aws_acs
from idp_core.adaptive import devices

IDP = "https://idp.example.com"
LOCAL_IDP = "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("acs", "idp", "expected"),
    [
        ("https://signin.aws.amazon.com/saml", IDP, True),
        ("https://us-east-1.signin.aws.amazon.com/saml", IDP, True),
        ("https://signin.amazonaws-us-gov.com/saml", IDP, True),
        ("https://signin.amazonaws.cn/saml", IDP, True),
        ("http://127.0.0.1:8000/_local/aws/saml", LOCAL_IDP, True),
        # Look-alikes and other places.
        ("http://signin.aws.amazon.com/saml", IDP, False),
        ("https://signin.aws.amazon.com.evil.example/saml", IDP, False),
        ("https://evilsignin.aws.amazon.com/saml", IDP, False),
        ("https://notsignin.amazonaws.cn.example/saml", IDP, False),
        ("https://signin.aws.amazon.com:8443/saml", IDP, False),
        ("https://signin.aws.amazon.com/saml?next=https://evil.example", IDP, False),
        ("https://user@signin.aws.amazon.com/saml", IDP, False),
        ("https://signin.aws.amazon.com/other", IDP, False),
        ("https://sp.example.org/acs", IDP, False),
        # The local stand-in only for an IdP on this machine, on the IdP's own port.
        ("http://127.0.0.1:8000/_local/aws/saml", IDP, False),
        ("http://127.0.0.1:9000/_local/aws/saml", LOCAL_IDP, False),
        ("http://127.0.0.1:8000/acs", LOCAL_IDP, False),
    ],
)
def test_only_aws_signin_endpoints_receive_the_assertion(acs: str, idp: str, expected: bool) -> None:
    assert is_aws_acs(acs, idp) is expected


@pytest.mark.parametrize(
    "url", ["http://idp.example.com", "ftp://idp.example.com", "file:///etc/passwd", "idp"]
)
def test_attack_the_password_goes_only_over_https_or_to_this_machine(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        Browser(url)


def test_setting_a_profile_keeps_every_other_line(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(
        "# mine\n[work]\naws_access_key_id = A\n\n[dev]\nregion = eu-west-1\naws_access_key_id = OLD\n"
        "[last]\nx = 1\n",
        encoding="utf-8",
    )

    set_keys(path, "dev", {"aws_access_key_id": "NEW", "aws_session_token": "T"})

    assert path.read_text(encoding="utf-8") == (
        "# mine\n[work]\naws_access_key_id = A\n\n[dev]\nregion = eu-west-1\naws_access_key_id = NEW\n"
        "aws_session_token = T\n\n[last]\nx = 1\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_new_profile_is_added_at_the_end_in_a_new_private_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "credentials"

    set_keys(path, "dev", {"aws_access_key_id": "K"})
    set_keys(path, "other", {"aws_access_key_id": "L"})

    assert (
        path.read_text(encoding="utf-8") == "[dev]\naws_access_key_id = K\n\n[other]\naws_access_key_id = L\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_linked_credentials_file_is_updated_where_it_lives(tmp_path: Path) -> None:
    target = tmp_path / "dotfiles" / "credentials"
    target.parent.mkdir()
    target.write_text("[work]\nx = 1\n", encoding="utf-8")
    link = tmp_path / "credentials"
    link.symlink_to(target)

    set_keys(link, "dev", {"aws_access_key_id": "K"})

    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "[work]\nx = 1\n\n[dev]\naws_access_key_id = K\n"


@pytest.mark.parametrize("name", ["dev]\n[default", "", "a b", "../dev", "x" * 65])
def test_attack_a_profile_name_cannot_start_another_section(name: str) -> None:
    with pytest.raises(ValueError, match="profile name"):
        check_profile_name(name)


def test_the_cli_keeps_the_cookie_the_adaptive_policies_set() -> None:
    assert aws_signin.DEVICE_COOKIE == devices.DEVICE_COOKIE
