"""`idp aws login` and `idp aws credential-process`: a sign-in typed at the terminal, driving
the IdP's own pages over HTTP, then STS AssumeRoleWithSAML in the embedded AWS, then the shared
credentials file (or a credential_process JSON). Every refusal is one sentence, and nothing is
written to the credentials file."""

from __future__ import annotations

import datetime
import io
import json
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO, cast

import boto3
import pytest

from idp_cli.aws_signin import parse_page
from idp_cli.main import main
from idp_core import apps, saml_apps
from idp_core.adaptive import devices
from idp_core.clock import FakeClock
from idp_core.models import Session
from idp_core.saml.aws import MAX_VALIDITY_SECONDS
from idp_local import moto_extensions
from tests.helpers.adaptive import give_policy
from tests.helpers.aws_login import EXISTING, caller_arn, profile_lines
from tests.helpers.mfa import (
    ACCOUNT,
    MFA_APP,
    OPEN_APP,
    add_user,
    code_in,
    emails_to,
    make_factor,
    totp_code,
)
from tests.helpers.sso import PASSWORD, Sso

pytestmark = pytest.mark.sso_setup("two_apps", "password_only")

MULTI_ROLE_APP = "aws-multi"
LONG_SESSION_SECONDS = 7200
ENGINEER = f"arn:aws:iam::{ACCOUNT}:role/Engineer"
READER = f"arn:aws:iam::{ACCOUNT}:role/Reader"


def aws_cli(sso: Sso, *args: str, stdin: str, clock: FakeClock | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["aws", *args, "--url", sso.url], out=out, err=err, stdin=io.StringIO(stdin), clock=clock or sso.clock
    )
    return code, out.getvalue(), err.getvalue()


def sessions_of(username: str) -> list[Session]:
    return list(Session.by_user.query(username))


def test_login_with_password_and_code_writes_the_profile_and_keeps_the_others(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    credentials, config = aws_files
    code = totp_code(totp_secret, sso.clock)

    status, out, err = aws_cli(
        sso, "login", "--app", MFA_APP, "--profile", "dev", stdin=f"alice\n{PASSWORD}\n{code}\n"
    )

    assert (status, err) == (0, ""), err
    assert "Signed in as arn:aws:sts::123456789012:assumed-role/Engineer/alice" in out
    keys = profile_lines(credentials.read_text(encoding="utf-8"), "dev")
    assert caller_arn(
        keys["aws_access_key_id"], keys["aws_secret_access_key"], keys["aws_session_token"]
    ) == (f"arn:aws:sts::{ACCOUNT}:assumed-role/Engineer/alice")
    assert credentials.read_text(encoding="utf-8").startswith(EXISTING)  # Comments and profiles kept.
    assert sessions_of("alice") == []  # The CLI signed out once it had the assertion.
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    saved = config.read_text(encoding="utf-8")
    assert f"[profile dev]\nidp_url = {sso.url}\nidp_app = {MFA_APP}\n" in saved
    # The secrets typed never land in a file.
    assert PASSWORD not in credentials.read_text(encoding="utf-8") + saved
    assert code not in saved


def test_the_session_lasts_the_apps_session_duration_and_several_roles_are_asked_for(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    apps.create_aws_app(
        MULTI_ROLE_APP,
        apps.AwsAppChoices(
            account_id=ACCOUNT,
            roles=[("Engineer", "engineers"), ("Reader", "engineers")],
            session_duration=LONG_SESSION_SECONDS,
        ),
        mfa_required=False,
        clock=sso.clock,
    )
    started = datetime.datetime.now(tz=datetime.UTC)

    status, out, err = aws_cli(
        sso, "credential-process", "--app", MULTI_ROLE_APP, stdin=f"alice\n{PASSWORD}\n2\n"
    )

    assert status == 0, err
    assert err == f"The app offers you these roles:\n  1. {ENGINEER}\n  2. {READER}\n"
    answer = json.loads(out)
    assert answer["Version"] == 1
    assert set(answer) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    expires = datetime.datetime.fromisoformat(answer["Expiration"].replace("Z", "+00:00"))
    assert abs((expires - started).total_seconds() - LONG_SESSION_SECONDS) < 60
    assert caller_arn(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"]) == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/alice"
    )


class Typed:
    """Standard input whose lines are typed only when the CLI asks: a line may be a function,
    called then (a code that is sent during the sign-in)."""

    def __init__(self, *lines: str | Callable[[], str]) -> None:
        self._lines = list(lines)

    def isatty(self) -> bool:
        return False

    def readline(self, size: int = -1) -> str:
        line = self._lines.pop(0) if self._lines else ""
        return (line() if callable(line) else line) + "\n"


def test_a_code_sent_by_email_is_asked_for_once_sent(sso: Sso, aws_files: tuple[Path, Path]) -> None:
    credentials, _ = aws_files
    add_user("alice", sso.clock, email="alice@example.com")
    make_factor("alice", "email", sso.clock, email="alice@example.com")

    def emailed_code() -> str:
        return code_in(emails_to("alice@example.com")[-1].body)

    out, err = io.StringIO(), io.StringIO()
    status = main(
        ["aws", "login", "--url", sso.url, "--app", MFA_APP],
        out=out,
        err=err,
        stdin=cast(TextIO, Typed("alice", PASSWORD, emailed_code)),
        clock=sso.clock,
    )

    assert (status, err.getvalue()) == (0, "")
    assert profile_lines(credentials.read_text(encoding="utf-8"), "default")["aws_session_token"]


def test_a_saved_profile_needs_no_options_again(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    credentials, _ = aws_files
    first = aws_cli(sso, "login", "--app", OPEN_APP, "--profile", "dev", stdin=f"alice\n{PASSWORD}\n")
    assert first[0] == 0, first[2]
    before = profile_lines(credentials.read_text(encoding="utf-8"), "dev")

    out, err = io.StringIO(), io.StringIO()
    status = main(
        ["aws", "login", "--profile", "dev"], out=out, err=err, stdin=io.StringIO(f"alice\n{PASSWORD}\n")
    )

    assert (status, err.getvalue()) == (0, "")
    after = profile_lines(credentials.read_text(encoding="utf-8"), "dev")
    assert after["aws_access_key_id"] != before["aws_access_key_id"]
    assert credentials.read_text(encoding="utf-8").count("[dev]") == 1


def test_credential_process_serves_its_cache_until_the_credentials_near_their_end(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    _, config = aws_files
    # The terminal's clock is the real one here: moto's STS dates the credentials by it.
    terminal = FakeClock(time.time())
    answers = f"alice\n{PASSWORD}\n"

    first = aws_cli(sso, "credential-process", "--app", OPEN_APP, stdin=answers, clock=terminal)
    again = aws_cli(sso, "credential-process", "--app", OPEN_APP, stdin="", clock=terminal)
    other_app = aws_cli(sso, "credential-process", "--app", MFA_APP, stdin="", clock=terminal)
    terminal.advance(3600 - 299)  # The app's hour, less the 5 minutes' margin.
    renewed = aws_cli(sso, "credential-process", "--app", OPEN_APP, stdin=answers, clock=terminal)

    assert first[0] == 0, first[2]
    assert again == first  # No sign-in: standard input was empty.
    [cache] = (config.parent / "idp-cache").iterdir()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert other_app == (2, "", "idp: No username was given.\n")
    assert renewed[0] == 0, renewed[2]
    assert json.loads(renewed[1])["AccessKeyId"] != json.loads(first[1])["AccessKeyId"]


def test_the_terminal_stays_one_device_for_the_adaptive_policies(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    """Without its device cookie kept, every login would be a new device: a device limit would
    soon refuse the user, and each login would mail a new-device notice."""
    _, config = aws_files
    give_policy(OPEN_APP, sso.clock, register_devices=True, max_devices=1, on_exceed="deny")

    for _ in range(3):
        status, _, err = aws_cli(sso, "login", "--app", OPEN_APP, stdin=f"alice\n{PASSWORD}\n")
        assert status == 0, err

    assert len(devices.list_devices("alice")) == 1
    [kept] = (config.parent / "idp-cache").glob("device-*.json")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("app", "answers", "expected"),
    [
        pytest.param(
            OPEN_APP, "alice\nnot the password\n", "The username or password is incorrect.", id="password"
        ),
        pytest.param(
            MFA_APP, f"alice\n{PASSWORD}\n000000\n", "The verification code is not correct.", id="code"
        ),
    ],
)
def test_a_refused_sign_in_is_one_sentence_exit_1_and_writes_nothing(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path], app: str, answers: str, expected: str
) -> None:
    credentials, config = aws_files

    status, out, err = aws_cli(sso, "login", "--app", app, "--profile", "dev", stdin=answers)

    assert (status, out) == (1, "")
    assert err.startswith("idp: the IdP refused the sign-in: ") and expected in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert credentials.read_text(encoding="utf-8") == EXISTING
    assert not config.exists()


@pytest.fixture
def sts_clock(sso: Sso) -> Iterator[FakeClock]:
    """The embedded STS judges SAML assertions' NotOnOrAfter by this clock, as AWS by its own."""
    clock = FakeClock(sso.clock.now())
    moto_extensions.check_saml_expiry(clock)
    yield clock
    moto_extensions.check_saml_expiry(None)


def test_an_assertion_that_expired_before_sts_is_refused_by_sts(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path], sts_clock: FakeClock
) -> None:
    credentials, _ = aws_files
    in_time = aws_cli(sso, "credential-process", "--app", OPEN_APP, stdin=f"alice\n{PASSWORD}\n")
    assert in_time[0] == 0, in_time[2]
    # AWS's clock is at the assertion's NotOnOrAfter when the next one reaches STS.
    sts_clock.advance(MAX_VALIDITY_SECONDS)

    status, out, err = aws_cli(sso, "login", "--app", OPEN_APP, stdin=f"alice\n{PASSWORD}\n")

    assert (status, out) == (1, "")
    assert err.startswith(f"idp: AWS STS refused the role {READER}: The SAML assertion expired at "), err
    assert err.endswith("(its NotOnOrAfter); sign in again.\n") and err.count("\n") == 1, err
    assert credentials.read_text(encoding="utf-8") == EXISTING


def test_a_role_the_user_may_not_take_is_refused(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    credentials, _ = aws_files
    admin_role = f"arn:aws:iam::{ACCOUNT}:role/Admin"

    status, _, err = aws_cli(
        sso, "login", "--app", OPEN_APP, "--role", admin_role, stdin=f"alice\n{PASSWORD}\n"
    )

    assert status == 2
    assert f"idp: You may not take the role {admin_role}; this app offers you: {READER}." in err, err
    assert credentials.read_text(encoding="utf-8") == EXISTING


def test_a_user_without_a_role_in_the_app_is_told_by_the_idp(sso: Sso, aws_files: tuple[Path, Path]) -> None:
    credentials, _ = aws_files
    from idp_core import accounts

    accounts.create_user(accounts.NewUser("bob", password=PASSWORD), clock=sso.clock)

    status, _, err = aws_cli(sso, "login", "--app", OPEN_APP, stdin=f"bob\n{PASSWORD}\n")

    assert status == 1
    assert "You have no role in the app" in err, err
    assert credentials.read_text(encoding="utf-8") == EXISTING


def test_attack_sts_assumes_only_a_role_the_assertion_offers(sso: Sso, totp_secret: str) -> None:
    """The embedded STS refuses, as AWS does, a RoleArn the signed assertion does not offer."""
    browser = sso.browser()
    answer = sso.sign_in(browser, "alice", app=OPEN_APP)
    saml_response = parse_page(sso.url, answer.status_code, answer.text).form_with("SAMLResponse")
    assert saml_response is not None, answer.text[:300]
    sts = boto3.client("sts")
    provider = f"arn:aws:iam::{ACCOUNT}:saml-provider/{apps.get_app(OPEN_APP).provider_name}"

    with pytest.raises(sts.exceptions.ClientError, match="AccessDenied"):
        sts.assume_role_with_saml(
            RoleArn=ENGINEER, PrincipalArn=provider, SAMLAssertion=saml_response.values["SAMLResponse"]
        )
    offered = sts.assume_role_with_saml(
        RoleArn=READER, PrincipalArn=provider, SAMLAssertion=saml_response.values["SAMLResponse"]
    )
    assert offered["AssumedRoleUser"]["Arn"].endswith(":assumed-role/Reader/alice")


def test_attack_an_assertion_for_an_acs_that_is_not_aws_is_not_used(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    """An AWS app whose ACS URL points elsewhere (a mistake, or an admin's account taken over):
    its assertion carries real roles, yet the CLI never hands it to STS."""
    credentials, _ = aws_files
    apps.create_aws_app(
        "aws-elsewhere",
        apps.AwsAppChoices(
            account_id=ACCOUNT, roles=[("Engineer", "engineers")], acs_url="https://sp.example.org/saml"
        ),
        mfa_required=False,
        clock=sso.clock,
    )

    status, _, err = aws_cli(sso, "login", "--app", "aws-elsewhere", stdin=f"alice\n{PASSWORD}\n")

    assert status == 2
    assert "is for https://sp.example.org/saml, not for AWS's SAML sign-in; it was not used" in err, err
    assert credentials.read_text(encoding="utf-8") == EXISTING


def test_attack_a_saml_apps_assertion_is_not_used_for_aws(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    credentials, _ = aws_files
    settings = saml_apps.SamlAppSettings(
        sp=saml_apps.sp_by_hand(entity_id="https://wiki.example.org", acs_url="https://wiki.example.org/acs"),
        mfa_required=False,
    )
    saml_apps.create_saml_app("wiki", settings, clock=sso.clock)

    status, _, err = aws_cli(sso, "login", "--app", "wiki", stdin=f"alice\n{PASSWORD}\n")

    assert status == 2
    assert "is for https://wiki.example.org/acs, not for AWS's SAML sign-in" in err, err
    assert credentials.read_text(encoding="utf-8") == EXISTING


def test_attack_the_password_is_never_an_argument(sso: Sso, aws_files: tuple[Path, Path]) -> None:
    """No option takes the password (it would show in `ps` and the shell's history)."""
    status, _, err = aws_cli(sso, "login", "--app", OPEN_APP, "--password", PASSWORD, stdin="")

    assert status == 2
    assert "unrecognized arguments: --password" in err


def test_the_stack_is_not_where_staff_sign_in(aws_files: tuple[Path, Path]) -> None:
    err = io.StringIO()
    args = ["--stack", "ServerlessIdp", "aws", "login", "--app", OPEN_APP]

    status = main(args, err=err, stdin=io.StringIO())

    assert (status, err.getvalue()) == (
        2,
        "idp: `idp aws` signs in at the IdP's address: give it with --url, not --stack.\n",
    )
