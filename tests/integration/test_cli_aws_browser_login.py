"""`idp aws login --browser`: the browser hand-off (after RFC 8628). The command line starts a
hand-off over HTTP, the user approves its code in a signed-in browser (here a requests session
driving the pages), and the command line picks the SAMLResponse up once and continues as a
terminal sign-in does (STS in the embedded AWS, the credentials file). Time moves with the
test's clock: the command line's waits between polls advance it."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError

from idp_cli.aws_credentials import read_assertion
from idp_cli.main import main
from idp_core import device_login, handoff_seal
from idp_core.clock import FakeClock
from idp_core.device_login import EXPIRES_SECONDS, INTERVAL_SECONDS, USER_CODE_ALPHABET
from idp_core.mfa import policy
from idp_core.models import AuditEvent, RateCounter, Transaction, User
from idp_core.scope import RequestScope
from tests.helpers.aws_login import (
    EXISTING,
    caller_arn,
    code_page,
    decide,
    picked_saml_response,
    poll,
    profile_lines,
    start_handoff,
    user_code_in,
)
from tests.helpers.mfa import ACCOUNT, MFA_APP, OPEN_APP, add_user, sign_in_with_totp
from tests.helpers.security_keys import key_challenge, key_options, register_key, soft_key_for
from tests.helpers.soft_key import SoftKey
from tests.helpers.sso import PASSWORD, Sso, csrf_token, signed_in
from tests.support.parallel import all_at_once

pytestmark = pytest.mark.sso_setup("two_apps", "password_only")

ENGINEER_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/Engineer/alice"
READER_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/alice"


def _encode_key(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def browser_login(sso: Sso, *args: str, in_the_browser: Callable[[str], None]) -> tuple[int, str, str]:
    """Run `idp aws ... --browser --no-browser-open`; at its first wait, ``in_the_browser``
    gets the code it printed (the user at the browser meanwhile)."""
    out, err = io.StringIO(), io.StringIO()
    done: list[str] = []

    def wait(seconds: float) -> None:
        sso.clock.advance(seconds)
        if not done:
            done.append(user_code_in(err.getvalue()))
            in_the_browser(done[0])

    status = main(
        ["aws", *args, "--url", sso.url, "--browser", "--no-browser-open"],
        out=out,
        err=err,
        stdin=io.StringIO(""),
        clock=sso.clock,
        wait=wait,
    )
    return status, out.getvalue(), err.getvalue()


def approver(sso: Sso, browser: requests.Session) -> Callable[[str], None]:
    def approve(user_code: str) -> None:
        approved = decide(sso, browser, user_code, "approve")
        assert approved.status_code == 200 and "Command line signed in" in approved.text, approved.text[:800]

    return approve


def test_a_browser_approval_writes_the_profile(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    credentials, config = aws_files
    browser = sign_in_with_totp(sso, "alice", totp_secret, app=MFA_APP)

    status, out, err = browser_login(
        sso, "login", "--app", MFA_APP, "--profile", "dev", in_the_browser=approver(sso, browser)
    )

    assert status == 0, err
    assert f"open {sso.url}/device in your browser and enter the code" in err
    assert f"Signed in as {ENGINEER_ARN}" in out
    text = credentials.read_text(encoding="utf-8")
    assert text.startswith(EXISTING)
    keys = profile_lines(text, "dev")
    assert caller_arn(
        keys["aws_access_key_id"], keys["aws_secret_access_key"], keys["aws_session_token"]
    ) == (ENGINEER_ARN)
    assert f"[profile dev]\nidp_url = {sso.url}\nidp_app = {MFA_APP}\n" in config.read_text(encoding="utf-8")


def test_credential_process_with_the_browser_prints_the_json(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    browser = signed_in(sso, "alice")

    status, out, err = browser_login(
        sso, "credential-process", "--app", OPEN_APP, in_the_browser=approver(sso, browser)
    )

    assert status == 0, err
    answer = json.loads(out)  # Standard output is the JSON alone; the code went to standard error.
    assert caller_arn(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"]) == READER_ARN


def test_the_endpoints_answer_as_rfc_8628_says(sso: Sso, totp_secret: str) -> None:
    started = start_handoff(sso, OPEN_APP, **{"User-Agent": "idp-cli (test)"})
    device_code, user_code = str(started["device_code"]), str(started["user_code"])
    assert len(device_code) >= 43  # 256 bits in base64url
    assert re.fullmatch(rf"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}", user_code)
    assert started["verification_uri"] == f"{sso.url}/device"
    assert started["verification_uri_complete"] == f"{sso.url}/device?user_code={user_code}"
    assert (started["expires_in"], started["interval"]) == (EXPIRES_SECONDS, INTERVAL_SECONDS)

    first = poll(sso, device_code)
    too_soon = poll(sso, device_code)
    sso.clock.advance(INTERVAL_SECONDS)
    later = poll(sso, device_code)
    browser = signed_in(sso, "alice")
    confirmation = code_page(sso, browser, user_code.lower().replace("-", " "))  # typed loosely
    approved = decide(sso, browser, user_code, "approve")
    sso.clock.advance(INTERVAL_SECONDS)
    picked = poll(sso, device_code)
    again = poll(sso, device_code)

    assert (first.status_code, first.json()["error"]) == (400, "authorization_pending")
    assert (too_soon.status_code, too_soon.json()["error"]) == (400, "slow_down")
    assert later.json()["error"] == "authorization_pending"
    # The confirmation names the app and where and when the command line asked.
    assert confirmation.status_code == 200, confirmation.text[:500]
    assert "aws-open" in confirmation.text and user_code in confirmation.text
    assert 'id="asked-from">127.0.0.1<' in confirmation.text
    assert 'id="asked-by">idp-cli (test)<' in confirmation.text
    assert 'id="asked-at">2027-01-15 08:00 UTC<' in confirmation.text
    assert approved.status_code == 200
    assert picked.status_code == 200 and read_assertion(picked_saml_response(picked, device_code)).roles
    assert picked.headers["Cache-Control"] == "no-store"
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")  # Once only.


def test_a_denied_handoff_answers_access_denied_and_cannot_be_approved(sso: Sso, totp_secret: str) -> None:
    started = start_handoff(sso, OPEN_APP)
    browser = signed_in(sso, "alice")

    denied = decide(sso, browser, str(started["user_code"]), "deny")
    approve_after = code_page(sso, browser, str(started["user_code"]))
    answer = poll(sso, str(started["device_code"]))

    assert denied.status_code == 200 and "Sign-in denied" in denied.text
    assert approve_after.status_code == 400 and "expired or was answered already" in approve_after.text
    assert (answer.status_code, answer.json()["error"]) == (400, "access_denied")
    assert sorted(event.type for event in AuditEvent.scan() if event.type.startswith("handoff.")) == [
        "handoff.denied",
        "handoff.started",
    ]


def test_a_refused_browser_sign_in_is_one_sentence_and_writes_nothing(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    credentials, _ = aws_files
    browser = signed_in(sso, "alice")

    def deny(user_code: str) -> None:
        decide(sso, browser, user_code, "deny")

    status, out, err = browser_login(sso, "login", "--app", OPEN_APP, in_the_browser=deny)

    assert (status, out) == (1, "")
    assert err.endswith("idp: the IdP refused the sign-in: The sign-in was denied in the browser.\n"), err
    assert credentials.read_text(encoding="utf-8") == EXISTING


def test_an_unknown_or_saml_app_is_refused_at_the_start(sso: Sso) -> None:
    unknown = requests.post(f"{sso.url}/device/authorize", data={"app": "no-such-app"}, timeout=30)
    malformed = requests.post(f"{sso.url}/device/authorize", data={"app": "../x"}, timeout=30)

    assert unknown.status_code == 404 and unknown.json()["error"] == "invalid_request"
    assert "There is no app 'no-such-app'." in unknown.json()["error_description"]
    assert malformed.status_code == 400
    assert Transaction.count() == 0


# ---------------------------------------------------------------- attacks


def test_attack_user_codes_cannot_be_guessed_per_user(sso: Sso, totp_secret: str) -> None:
    """Each code tried counts; past the user's limit even the right code is refused with a 429."""
    started = start_handoff(sso, OPEN_APP)
    browser = signed_in(sso, "alice")
    wrong = [code_page(sso, browser, "BCDF-GHJK") for _ in range(device_login.CODE_TRIES_PER_USER)]

    refused = code_page(sso, browser, str(started["user_code"]))

    assert {answer.status_code for answer in wrong} == {400}
    assert refused.status_code == 429
    assert "Too many codes were tried: at most 10 every 10 minutes." in refused.text
    # The window passes (and the code with it): a new code works again.
    sso.clock.advance(device_login.CODE_TRIES_WINDOW_SECONDS)
    assert code_page(sso, browser, str(start_handoff(sso, OPEN_APP)["user_code"])).status_code == 200


def test_attack_user_codes_cannot_be_guessed_from_one_address_with_many_users(sso: Sso) -> None:
    tries = device_login.CODE_TRIES_PER_ADDRESS // device_login.CODE_TRIES_PER_USER
    for number in range(tries):
        add_user(f"guesser{number}", sso.clock)
        browser = signed_in(sso, f"guesser{number}")
        for _ in range(device_login.CODE_TRIES_PER_USER):
            assert code_page(sso, browser, "BCDF-GHJK").status_code == 400
    add_user("fresh", sso.clock)

    refused = code_page(sso, signed_in(sso, "fresh"), "BCDF-GHJK")

    assert refused.status_code == 429 and "Too many codes were tried: at most 30" in refused.text


def test_attack_an_expired_code_is_neither_approved_nor_picked_up(sso: Sso, totp_secret: str) -> None:
    started = start_handoff(sso, OPEN_APP)
    browser = signed_in(sso, "alice")
    page = sso.get(browser, f"/device?user_code={started['user_code']}")
    sso.clock.advance(EXPIRES_SECONDS)

    approved = sso.post(
        browser,
        "/device/approve",
        {"csrf_token": csrf_token(page.text), "user_code": str(started["user_code"])},
    )
    answer = poll(sso, str(started["device_code"]))

    assert approved.status_code == 400 and "expired or was answered already" in approved.text
    assert (answer.status_code, answer.json()["error"]) == (400, "expired_token")
    assert not [event for event in AuditEvent.scan() if event.type == "saml.assertion_issued"]


def test_attack_a_device_code_is_picked_up_once_even_by_two_at_the_same_moment(
    sso: Sso, totp_secret: str
) -> None:
    started = start_handoff(sso, OPEN_APP)
    assert decide(sso, signed_in(sso, "alice"), str(started["user_code"]), "approve").status_code == 200
    scope = RequestScope(settings=sso.settings, clock=sso.clock)

    def pick_up() -> str:
        try:
            return device_login.pick_up(str(started["device_code"]), scope)
        except device_login.HandoffRefused as exc:
            return exc.code

    outcomes = all_at_once([pick_up] * 4)

    assert sorted(outcome == "invalid_grant" for outcome in outcomes) == [False, True, True, True], outcomes
    assert [event.type for event in AuditEvent.scan()].count("handoff.picked_up") == 1


def test_attack_answers_at_the_same_moment_leave_one_answer(sso: Sso, totp_secret: str) -> None:
    """Two approvals and a denial of one code, each past the code's check before any is
    written, then written at the same moment: one answer stands, and only it is audited."""
    started = start_handoff(sso, OPEN_APP)
    scope = RequestScope(settings=sso.settings, clock=sso.clock)
    alice = User.get("alice")
    found = [device_login.find(str(started["user_code"]), alice, scope) for _ in range(3)]
    approved_with = base64.b64encode(b"<samlp:Response/>").decode()

    def answer(handoff: device_login.Handoff, approve: bool) -> Callable[[], str]:
        def run() -> str:
            try:
                if approve:
                    device_login.approve(handoff, alice, approved_with, [], scope)
                else:
                    device_login.deny(handoff, alice, scope)
            except device_login.HandoffRefused as exc:
                return exc.code
            return "approved" if approve else "denied"

        return run

    outcomes = all_at_once([answer(found[0], True), answer(found[1], True), answer(found[2], False)])

    assert sorted(outcome == "invalid_grant" for outcome in outcomes) == [False, True, True], outcomes
    [standing] = [outcome for outcome in outcomes if outcome != "invalid_grant"]
    types = [event.type for event in AuditEvent.scan()]
    assert (types.count("handoff.approved"), types.count("handoff.denied")) == (
        (1, 0) if standing == "approved" else (0, 1)
    ), types
    picked = poll(sso, str(started["device_code"]))
    assert picked.status_code == (200 if standing == "approved" else 400), picked.text


def test_attack_a_wrong_device_code_gets_nothing(sso: Sso, totp_secret: str) -> None:
    started = start_handoff(sso, OPEN_APP)
    assert decide(sso, signed_in(sso, "alice"), str(started["user_code"]), "approve").status_code == 200

    guessed = poll(sso, secrets.token_urlsafe(32))
    oversized = poll(sso, "A" * 200)
    wrong_grant = requests.post(
        f"{sso.url}/device/token",
        data={"grant_type": "authorization_code", "device_code": str(started["device_code"])},
        timeout=30,
    )

    assert (guessed.status_code, guessed.json()["error"]) == (400, "invalid_grant")
    assert oversized.status_code == 400
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (400, "unsupported_grant_type")
    assert poll(sso, str(started["device_code"])).status_code == 200  # Still there for its owner.


def test_attack_an_approval_without_the_csrf_token_is_refused(sso: Sso, totp_secret: str) -> None:
    started = start_handoff(sso, OPEN_APP)
    browser = signed_in(sso, "alice")

    forged = sso.post(browser, "/device/approve", {"user_code": str(started["user_code"])})
    forged_deny = sso.post(
        browser, "/device/deny", {"user_code": str(started["user_code"]), "csrf_token": "x" * 40}
    )

    assert forged.status_code == 403 and forged_deny.status_code == 403
    assert poll(sso, str(started["device_code"])).json()["error"] == "authorization_pending"


def test_attack_the_code_from_the_link_never_approves_by_itself(sso: Sso, totp_secret: str) -> None:
    started = start_handoff(sso, OPEN_APP)
    browser = signed_in(sso, "alice")

    page = sso.get(browser, f"/device?user_code={started['user_code']}")
    confirmation = code_page(sso, browser, str(started["user_code"]))

    assert page.status_code == 200 and f'value="{started["user_code"]}"' in page.text
    assert confirmation.status_code == 200 and "Approve" in confirmation.text
    assert poll(sso, str(started["device_code"])).json()["error"] == "authorization_pending"


def test_attack_an_app_the_user_is_not_assigned_to_is_refused_and_nothing_is_kept(sso: Sso) -> None:
    from idp_core import accounts

    accounts.create_user(accounts.NewUser("bob", password=PASSWORD), clock=sso.clock)  # in no group
    started = start_handoff(sso, OPEN_APP)

    refused = decide(sso, signed_in(sso, "bob"), str(started["user_code"]), "approve")

    assert refused.status_code == 403 and "You have no role in the app" in refused.text
    assert poll(sso, str(started["device_code"])).json()["error"] == "authorization_pending"
    refusals = [event for event in AuditEvent.scan() if event.type == "saml.assertion_refused"]
    assert [event.subject for event in refusals] == ["bob"]


def test_attack_a_phishing_resistant_app_still_needs_the_security_key_in_the_browser(
    sso: Sso, totp_secret: str, clock: FakeClock
) -> None:
    """alice signed in with her authenticator app; the app accepts security keys only: the
    approval steps up with her key, and only then is anything kept."""
    browser = sign_in_with_totp(sso, "alice", totp_secret, app=MFA_APP)
    key = soft_key_for(sso)
    assert register_key(sso, browser, key).status_code == 303
    policy.set_app_policy(MFA_APP, phishing_resistant_only=True, clock=clock)
    started = start_handoff(sso, MFA_APP)
    user_code = str(started["user_code"])

    step_up = decide(sso, browser, user_code, "approve")
    pending = poll(sso, str(started["device_code"]))
    verified = step_up_with_key(sso, browser, key, step_up.headers["Location"])
    approved = decide(sso, browser, user_code, "approve")
    clock.advance(INTERVAL_SECONDS)
    picked = poll(sso, str(started["device_code"]))

    assert step_up.status_code == 303
    assert step_up.headers["Location"].startswith("/mfa?app=aws-secure&next=%2Fdevice%3Fuser_code%3D")
    assert pending.json()["error"] == "authorization_pending"
    # The key's answer goes back to the code's page, not to AWS.
    assert verified.status_code == 303 and verified.headers["Location"] == f"/device?user_code={user_code}"
    assert approved.status_code == 200, approved.text[:800]
    assert picked.status_code == 200
    assert read_assertion(picked_saml_response(picked, str(started["device_code"]))).roles


def step_up_with_key(sso: Sso, browser: requests.Session, key: SoftKey, challenge: str) -> requests.Response:
    """Answer the challenge page at ``challenge`` (with its target) with ``key``."""
    page = sso.get(browser, challenge)
    target = parse_qs(urlsplit(challenge).query)
    fields = {**key_challenge(sso, browser, MFA_APP), "next": target["next"][0]}
    assert page.status_code == 200 and f'value="{target["next"][0]}"' in html.unescape(page.text)
    return sso.post(browser, "/mfa/verify", {**fields, "code": key.get(key_options(sso, browser, fields))})


def test_attack_the_device_page_returns_only_to_itself(sso: Sso, totp_secret: str) -> None:
    anonymous = sso.get(sso.browser(), "/device?user_code=BCDF-GHJK")
    off_site = sso.get(sso.browser(), "/login?next=//evil.example/device")

    assert anonymous.status_code == 303
    assert anonymous.headers["Location"] == "/login?next=%2Fdevice%3Fuser_code%3DBCDF-GHJK"
    assert off_site.status_code == 400


def test_attack_the_device_code_is_in_no_url_no_log_and_no_audit_event(
    sso: Sso, totp_secret: str, capfd: pytest.CaptureFixture[str]
) -> None:
    started = start_handoff(sso, OPEN_APP)
    device_code, user_code = str(started["device_code"]), str(started["user_code"])
    assert decide(sso, signed_in(sso, "alice"), user_code, "approve").status_code == 200
    assert poll(sso, device_code).status_code == 200

    logged = "".join(capfd.readouterr())
    audited = json.dumps([event.attribute_values for event in AuditEvent.scan()], default=str)
    kept = json.dumps([item.attribute_values for item in Transaction.scan()], default=str)

    # The page's link carries the user code only; the device code travels in POST bodies alone.
    assert device_code not in str(started["verification_uri_complete"])
    for secret in (device_code, user_code, user_code.replace("-", "")):
        assert secret not in logged and secret not in audited and secret not in kept
    assert {"handoff.started", "handoff.approved", "handoff.picked_up"} <= {
        json.loads(audited)[index]["type"] for index in range(len(json.loads(audited)))
    }


def test_attack_a_reader_of_the_table_gets_no_usable_assertion(sso: Sso, totp_secret: str) -> None:
    """Between the approval and the pick-up, whoever reads the transactions table (a backup, an
    over-broad IAM reader; the audit table too) finds only the SAMLResponse sealed to the
    command line's key: no assertion in any form, and nothing STS takes."""
    started = start_handoff(sso, OPEN_APP)
    device_code = str(started["device_code"])
    assert decide(sso, signed_in(sso, "alice"), str(started["user_code"]), "approve").status_code == 200

    items = [*Transaction.scan(), *AuditEvent.scan()]
    stored = [str(value) for item in items for value in item.attribute_values.values()]
    sts = boto3.client("sts")
    sso.clock.advance(INTERVAL_SECONDS)
    saml_response = picked_saml_response(poll(sso, device_code), device_code)
    offer = read_assertion(saml_response).roles[0]

    def assume(saml_assertion: str) -> str:
        try:
            answer = sts.assume_role_with_saml(
                RoleArn=offer.role_arn, PrincipalArn=offer.provider_arn, SAMLAssertion=saml_assertion
            )
        except (ClientError, BotoCoreError) as exc:
            return f"refused: {type(exc).__name__}"
        return str(answer["AssumedRoleUser"]["Arn"])

    xml = base64.b64decode(saml_response)
    assert b"<saml:Assertion" in xml and assume(saml_response) == READER_ARN  # The opened one works.
    kept = "\n".join(stored)
    assert saml_response not in kept and saml_response[:64] not in kept
    for value in stored:
        assert "Assertion" not in value and "urn:oasis:names:tc:SAML" not in value
        assert b"Assertion" not in _any_base64_decoding(value)
        assert assume(value).startswith("refused"), value[:200]
    sealed = json.loads(next(value for value in stored if "ciphertext" in value))
    assert sealed.keys() == {"idp_public_key", "nonce", "ciphertext"}
    for blob in (json.dumps(sealed), sealed["ciphertext"], _std_base64(sealed["ciphertext"])):
        assert assume(blob).startswith("refused")


def _std_base64(base64url: str) -> str:
    return base64.b64encode(base64.urlsafe_b64decode(base64url + "=" * (-len(base64url) % 4))).decode()


def _any_base64_decoding(value: str) -> bytes:
    """What ``value`` decodes to as base64 or base64url (empty when it is neither)."""
    decoded = b""
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            decoded += decode(value + "=" * (-len(value) % 4))
        except ValueError:
            continue
    return decoded


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (None, "client_public_key is required: the command line's X25519 public key"),
        ("", "client_public_key is required"),
        (_encode_key(bytes(range(1, 32))), "must be an X25519 public key: 32 bytes in unpadded base64url"),
        (_encode_key(bytes(range(1, 34))), "must be an X25519 public key"),
        (_encode_key(bytes(range(1, 33))) + "=", "must be an X25519 public key"),
        # The standard alphabet's + and / are not base64url (a fixed key: xdist workers collect the same ids).
        ("+/" + _encode_key(bytes(range(1, 33)))[2:], "must be an X25519 public key"),
        ("K" * 65, "client_public_key must be at most 64 characters long"),
        # A low-order point: every shared secret with it is zero.
        (_encode_key(bytes(32)), "client_public_key is not a usable X25519 public key"),
    ],
)
def test_attack_a_missing_or_malformed_client_key_is_refused_and_nothing_is_stored(
    sso: Sso, sent: str | None, message: str
) -> None:
    fields = {"app": OPEN_APP, **({"client_public_key": sent} if sent is not None else {})}

    answer = requests.post(f"{sso.url}/device/authorize", data=fields, timeout=30)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert message in answer.json()["error_description"]
    assert Transaction.count() == 0 and RateCounter.count() == 0
    assert not [event for event in AuditEvent.scan() if event.type.startswith("handoff.")]


def test_attack_a_handoff_sealed_to_another_key_is_not_opened_and_writes_nothing(
    sso: Sso, totp_secret: str, aws_files: tuple[Path, Path]
) -> None:
    """Someone who can change the hand-off puts their own public key on it before the approval:
    the SAMLResponse is sealed to them, so the command line cannot open it and writes nothing."""
    credentials, _ = aws_files
    browser = signed_in(sso, "alice")
    _, other_public_key = handoff_seal.new_client_key()

    def swap_the_key_and_approve(user_code: str) -> None:
        for item in Transaction.scan(Transaction.handoff.exists()):
            details = json.loads(str(item.handoff))
            item.update(
                actions=[
                    Transaction.handoff.set(json.dumps({**details, "client_public_key": other_public_key}))
                ]
            )
        approver(sso, browser)(user_code)

    status, out, err = browser_login(sso, "login", "--app", OPEN_APP, in_the_browser=swap_the_key_and_approve)

    assert (status, out) == (2, "")
    assert err.endswith(
        "The IdP's answer does not open with this command's key: it was sealed for another sign-in "
        "or changed on the way. Nothing was written; run the command again.\n"
    ), err
    assert credentials.read_text(encoding="utf-8") == EXISTING
    assert [event.type for event in AuditEvent.scan()].count("handoff.picked_up") == 1
