"""`idp aws login --browser` in real Chromium: a user whose only second factor is a passkey
cannot answer the terminal's prompts; the command line prints a code, the browser signs in with
the passkey (its virtual authenticator), the user approves, and the credentials file gets the
profile. The command line runs as a process of its own, as the user runs it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from playwright.sync_api import Page, expect

from idp_local.process import idp_command
from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import (
    PASSKEY,
    add_demo_user,
    localhost,
    register_key,
    sign_in,
    sign_out,
    virtual_authenticator,
    without_passkey_autofill,
)

PASSWORD = "browser-cli-passphrase"
USERNAME = "passkey-cli"
_COMPLETE_URL = re.compile(r"\(or open (\S+)\)")


def test_a_passkey_user_approves_the_command_line_in_the_browser(
    page: Page, local_idp: LocalIdp, tmp_path: Path
) -> None:
    base = localhost(local_idp)
    state = local_idp.process.state
    assert state is not None
    add_demo_user(local_idp, USERNAME, PASSWORD)
    without_passkey_autofill(page)
    virtual_authenticator(page, PASSKEY)
    sign_in(page, base, USERNAME, PASSWORD)
    register_key(page, base, "Laptop passkey")
    sign_out(page, base)
    credentials = tmp_path / "credentials"
    env = {
        **local_idp.process.env,
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
    }
    command = [*idp_command(), "--local", "aws", "login", "--app", state.demo_app, "--profile", "e2e"]
    cli = subprocess.Popen(
        [*command, "--browser", "--no-browser-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=local_idp.process.cwd,
    )
    try:
        assert cli.stderr is not None
        printed = "".join(cli.stderr.readline() for _ in range(2))
        found = _COMPLETE_URL.search(printed)
        assert found, printed
        # WebAuthn needs a host name: the same page at localhost.
        page.goto(found.group(1).replace(local_idp.base_url, base))
        expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/login"))
        page.get_by_role("button", name="Sign in with a passkey").click()
        # Back at the code's page, the code filled in: nothing is approved until the user says so.
        code = page.get_by_label("Code")
        expect(code).to_have_value(re.compile(r"^[A-Z]{4}-[A-Z]{4}$"))
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_text(f"sign in as {USERNAME} to")).to_be_visible()
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_role("heading", name="Command line signed in")).to_be_visible()
        out, err = cli.communicate(timeout=60)
    finally:
        cli.kill()
        cli.wait(timeout=30)
    assert cli.returncode == 0, err
    assert f"assumed-role/IdpDemoEngineer/{USERNAME}" in out
    text = credentials.read_text(encoding="utf-8")
    assert "[e2e]\naws_access_key_id = " in text and "aws_session_token = " in text
