"""How the `idp` CLI chooses its AWS region: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp_cli.region import RegionChoice, choose_region


@pytest.fixture
def aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS config file with a default and a 'prod' profile; no region in the environment."""
    config = tmp_path / "config"
    config.write_text(
        "[default]\nregion = us-west-2\n\n[profile prod]\nregion = eu-west-1\n\n[profile bare]\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return config


def test_the_region_option_wins(aws_config: Path) -> None:
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"}

    assert choose_region("ap-south-1", env) == RegionChoice("ap-south-1", "--region")


def test_aws_region_comes_before_aws_default_region(aws_config: Path) -> None:
    assert choose_region(
        None, {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"}
    ) == RegionChoice("eu-west-1", "AWS_REGION")
    assert choose_region(None, {"AWS_DEFAULT_REGION": "eu-west-2"}) == RegionChoice(
        "eu-west-2", "AWS_DEFAULT_REGION"
    )


def test_then_the_profiles_region(aws_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_region(None, {}) == RegionChoice("us-west-2", f"the profile 'default' in {aws_config}")

    monkeypatch.setenv("AWS_PROFILE", "prod")

    assert choose_region(None, {}) == RegionChoice("eu-west-1", f"the profile 'prod' in {aws_config}")


def test_a_profile_without_region_or_a_missing_profile_gives_no_region(
    aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "bare")
    bare = choose_region(None, {})
    monkeypatch.setenv("AWS_PROFILE", "missing")
    missing = choose_region(None, {})

    assert bare.region is None and "nor the profile 'bare'" in bare.source
    assert missing == RegionChoice(None, f"no region: the profile 'missing' is not in {aws_config}")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (RegionChoice("ap-south-1", "--region"), "ap-south-1"),
        (RegionChoice("eu-west-1", "AWS_REGION"), "eu-west-1"),
        (RegionChoice("eu-west-2", "AWS_DEFAULT_REGION"), "eu-west-2"),
        (RegionChoice("us-west-2", "the profile 'default' in ~/.aws/config"), None),
        (RegionChoice(None, "no region"), None),
    ],
)
def test_apply_points_boto3_at_the_choice(choice: RegionChoice, expected: str | None) -> None:
    env: dict[str, str] = {"AWS_DEFAULT_REGION": "eu-west-2"} if choice.source == "AWS_DEFAULT_REGION" else {}

    choice.apply(env)

    assert env.get("AWS_DEFAULT_REGION") == expected
