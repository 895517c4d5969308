"""The local stack for second factors: the data key and e-mail sender are settings, the
sender is verified in the embedded SES, the demo app requires MFA, the MFA paths reach the
otp handler and the printed instructions say how to enrol."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from idp_local.gateway import LocalGateway
from idp_local.process import LocalStackProcess
from idp_local.stack import LOCAL_EMAIL_SENDER

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    process = LocalStackProcess(tmp_path_factory.mktemp("local-mfa") / "state", cwd=REPO)
    with process:
        yield process


def test_settings_name_the_data_key_and_the_email_sender(stack: LocalStackProcess) -> None:
    state = stack.state
    assert state is not None
    assert state.settings_env["DATA_KEY_ID"] == state.data_key_id
    assert state.settings_env["EMAIL_SENDER"] == LOCAL_EMAIL_SENDER


def test_the_email_sender_is_verified_in_the_embedded_ses(stack: LocalStackProcess) -> None:
    import boto3

    state = stack.state
    assert state is not None
    ses = boto3.client(
        "ses",
        endpoint_url=state.aws_endpoint_url,
        region_name=state.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert LOCAL_EMAIL_SENDER in ses.list_verified_email_addresses()["VerifiedEmailAddresses"]


def test_the_demo_app_requires_mfa_and_the_demo_user_has_an_email_address(stack: LocalStackProcess) -> None:
    state = stack.state
    assert state is not None
    policy = stack.idp("--local", "policy", "show", state.demo_app, "--json")
    user = stack.idp("--local", "user", "show", state.user.username, "--json")
    assert policy.returncode == 0, policy.stderr
    assert json.loads(policy.stdout)["mfa_required"] is True
    assert "@" in json.loads(user.stdout)["email"]


@pytest.mark.parametrize("path", ["/mfa", "/me/mfa", "/admin/mfa"])
def test_mfa_paths_are_served_by_the_otp_handler(stack: LocalStackProcess, path: str) -> None:
    # Without a session every MFA page sends the browser to sign in; the sso handler would
    # answer these paths with its own 404 page instead.
    response = requests.get(f"{stack.base_url}{path}", allow_redirects=False, timeout=30)
    assert response.status_code in (200, 302, 303, 401, 403), response.text[:300]
    assert response.status_code != 404


def test_instructions_say_how_to_enrol_a_second_factor(stack: LocalStackProcess) -> None:
    log = stack.log()
    assert f"{stack.base_url}/me/mfa" in log
    assert '"Authenticator app"' in log and "QR code" in log
    assert '"E-mail"' in log and f"{stack.base_url}/_local/outbox" in log


def _answer(name: str) -> Any:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": name}

    return handler


@pytest.mark.parametrize(
    ("path", "served_by"),
    [
        ("/", "sso"),
        ("/me", "sso"),
        ("/me/apps", "sso"),
        ("/mfa", "otp"),
        ("/mfa/send", "otp"),
        ("/mfa/verify", "sso"),
        ("/mfaxyz", "sso"),
        ("/me/mfa", "otp"),
        ("/me/mfa/totp/start", "otp"),
        ("/admin", "sso"),
        ("/admin/mfa/settings", "otp"),
        ("/me/devices", "adaptive"),
        ("/me/devices/abc/remove", "adaptive"),
        ("/admin/devices/bob", "adaptive"),
        ("/admin/adaptive/office", "adaptive"),
        ("/admin/adaptivex", "sso"),
        ("/admin/directories/corp/test/bind", "provisioning"),
    ],
)
def test_the_gateway_routes_by_path_prefix_like_the_api(path: str, served_by: str) -> None:
    with LocalGateway(_answer("nobody")) as gateway:
        functions = ("sso", "otp", "adaptive", "provisioning")
        gateway.route_like_the_api({name: _answer(name) for name in functions})
        response = requests.get(f"{gateway.url}{path}", timeout=30)
    assert response.text == served_by
