"""Steps for `idp aws login` and its browser hand-off: what the credentials file holds, who its
credentials are to STS, and the hand-off's endpoints and pages driven over HTTP."""

from __future__ import annotations

import re

import boto3
import requests

from idp_core import handoff_seal
from idp_core.device_login import GRANT_TYPE
from tests.helpers.sso import Sso, csrf_token

# A profile of the user's own in the credentials file, which every login must keep as it is.
EXISTING = (
    "# My own profiles, kept as they are.\n[work]\naws_access_key_id = AKIAKEEPME\nregion = eu-west-1\n"
)
_USER_CODE = re.compile(r"\b([B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4})\b")
# The key pair of the command line these steps stand in for: their hand-offs are sealed to it.
CLIENT_KEY, CLIENT_PUBLIC_KEY = handoff_seal.new_client_key()


def caller_arn(access_key: str, secret_key: str, token: str) -> str:
    sts = boto3.client(
        "sts", aws_access_key_id=access_key, aws_secret_access_key=secret_key, aws_session_token=token
    )
    return str(sts.get_caller_identity()["Arn"])


def profile_lines(credentials_text: str, profile: str) -> dict[str, str]:
    """The keys of ``[profile]`` in a credentials file's text, read line by line (as the AWS
    tools read them)."""
    found: dict[str, str] = {}
    section = None
    for line in credentials_text.splitlines():
        if line.startswith("["):
            section = line.strip("[] ")
        elif section == profile and "=" in line:
            key, value = line.split("=", 1)
            found[key.strip()] = value.strip()
    return found


def user_code_in(text: str) -> str:
    """The XXXX-XXXX code the command line printed."""
    match = _USER_CODE.search(text)
    assert match, f"no user code in {text!r}"
    return match.group(1)


def start_handoff(sso: Sso, app: str, **headers: str) -> dict[str, object]:
    """What the command line gets when it starts a hand-off (with ``CLIENT_KEY``'s public key)."""
    answer = requests.post(
        f"{sso.url}/device/authorize",
        data={"app": app, handoff_seal.CLIENT_KEY_FIELD: CLIENT_PUBLIC_KEY},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text[:500]
    return dict(answer.json())


def picked_saml_response(picked: requests.Response, device_code: str) -> str:
    """The SAMLResponse of a pick-up's answer, opened with ``CLIENT_KEY`` as the command line does."""
    sealed = handoff_seal.Sealed.from_fields(picked.json()["sealed_saml_response"])
    opened = handoff_seal.open_sealed(sealed, CLIENT_KEY, handoff_seal.handoff_key(device_code))
    return opened.decode("ascii")


def poll(sso: Sso, device_code: str) -> requests.Response:
    return requests.post(
        f"{sso.url}/device/token", data={"grant_type": GRANT_TYPE, "device_code": device_code}, timeout=30
    )


def code_page(sso: Sso, browser: requests.Session, user_code: str) -> requests.Response:
    """The code's page (filled in from the command line's link) and its post: the confirmation."""
    page = sso.get(browser, f"/device?user_code={user_code}")
    assert page.status_code == 200, page.text[:500]
    return sso.post(browser, "/device", {"csrf_token": csrf_token(page.text), "user_code": user_code})


def decide(sso: Sso, browser: requests.Session, user_code: str, decision: str) -> requests.Response:
    """Press "Approve" (``decision`` "approve") or "Deny" ("deny") on the code's confirmation."""
    confirmation = code_page(sso, browser, user_code)
    assert confirmation.status_code == 200, confirmation.text[:800]
    return sso.post(
        browser, f"/device/{decision}", {"csrf_token": csrf_token(confirmation.text), "user_code": user_code}
    )
