"""The admin console's "Signing key" page (issue 16 point 3): which key signs, the stack's
other key and whether /saml/metadata publishes it, the roll-over's stage with who made each
step when, and the CLI commands of the next step; at each stage of a rotation that the CLI
walks. It only shows: nothing on it switches keys, and it reads no KMS."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import re
from collections.abc import Iterator

import pytest
import requests

from idp_core import accounts, audit
from idp_core.models import KeyValue, User
from idp_core.saml import signing_keys
from idp_core.saml.xml import NAMESPACES, parse_xml
from idp_local.faults import Fault, FaultPlan
from tests.helpers.cli import act_on, idp_from_env
from tests.helpers.console import page_token, text_of
from tests.helpers.sso import PASSWORD, Sso, new_signing_key, signed_in, with_next_signing_key

pytestmark = pytest.mark.sso_setup("password_only")

PAGE = "/admin/signing-key"
NO_SWITCH_HERE = "The console does not switch keys"


@pytest.fixture
def sso(sso: Sso, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sso]:
    """The functions with the stack's second signing key; `idp` acts on them."""
    rotating = with_next_signing_key(sso)
    act_on(rotating.settings, monkeypatch)
    signing_keys.forget_cached_keys()
    yield rotating
    signing_keys.forget_cached_keys()


def published_fingerprints(sso: Sso) -> list[str]:
    """The SHA-256 fingerprints of the certificates /saml/metadata publishes, the signing one first."""
    answer = requests.get(sso.url + "/saml/metadata", timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    root = parse_xml(answer.content)
    return [
        hashlib.sha256(base64.b64decode("".join((element.text or "").split()))).hexdigest()
        for element in root.findall(".//md:IDPSSODescriptor//ds:X509Certificate", NAMESPACES)
    ]


def facts(page: str, label: str) -> dict[str, str]:
    """The terms and descriptions of the page's list ``label`` ("The key that signs now")."""
    found = re.search(rf'<dl class="facts" aria-label="{re.escape(label)}">(.*?)</dl>', page, re.S)
    assert found, f"the page has no list {label!r}"
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", found.group(1), re.S)
    return {term: " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).split()) for term, text in pairs}


def fingerprint_of(shown: dict[str, str]) -> str:
    return shown["SHA-256 fingerprint"].replace(":", "").lower()


def next_step(page: str) -> str:
    found = re.search(r"<h3>Next step</h3>.*?<pre><code>(.*?)</code></pre>", page, re.S)
    assert found, "the page shows no next step"
    return html.unescape(found.group(1))


def rotate(capsys: pytest.CaptureFixture[str], *args: str) -> None:
    code, _, err = idp_from_env(capsys, "signing-key", "rotate", *args)
    assert (code, err) == (0, ""), err


def shown_page(sso: Sso, admin: requests.Session) -> str:
    answer = sso.get(admin, PAGE)
    assert answer.status_code == 200, answer.text[:500]
    return answer.text


def test_before_any_rotation_the_page_shows_the_signing_key_as_the_metadata_publishes_it(
    sso: Sso, admin: requests.Session
) -> None:
    [published] = published_fingerprints(sso)
    first, second = sso.settings.signing_key_id, str(sso.settings.next_signing_key_id)

    page = shown_page(sso, admin)

    # The console's navigation leads here.
    nav = re.search(r'<nav aria-label="Administration".*?</nav>', page, re.S)
    assert nav and f'href="{PAGE}">Signing key</a>' in nav.group(0)
    signing = facts(page, "The key that signs now")
    assert signing["KMS key id"] == first
    assert signing["Alias"] == "alias/STACK/saml-signing (stack output SigningKeyId)"
    assert signing["Certificate subject"] == "CN=Serverless IdP SAML signing"
    assert fingerprint_of(signing) == published
    assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d UTC", signing["Not valid after"])
    following = facts(page, "The next key")
    assert following["KMS key id"] == second
    assert following["Alias"] == "alias/STACK/saml-signing-next (stack output NextSigningKeyId)"
    # No rotation made its certificate yet, and the page does not make it.
    assert following["Certificate"] == "Not made yet: the first request for the metadata makes it."
    assert "Published in the metadata: <strong>no</strong>" in page
    assert facts(page, "Roll-over") == {"Stage": "No rotation under way."}
    assert next_step(page) == "idp signing-key rotate start"
    assert NO_SWITCH_HERE in page and "has no IAM permissions" in page


def test_after_start_the_page_shows_both_published_keys_and_who_started_when(
    sso: Sso, admin: requests.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    rotate(capsys, "start")
    published = published_fingerprints(sso)

    page = shown_page(sso, admin)

    assert [
        fingerprint_of(facts(page, "The key that signs now")),
        fingerprint_of(facts(page, "The next key")),
    ] == (published)
    assert facts(page, "The next key")["KMS key id"] == sso.settings.next_signing_key_id
    assert "Published in the metadata: <strong>yes, beside the signing key</strong>" in page
    rollover = facts(page, "Roll-over")
    assert rollover["Stage"] == "Started: both certificates are published and the current key still signs."
    assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d UTC by cli:\S+", rollover["Started"])
    assert "Finished" not in rollover
    assert next_step(page).splitlines()[-2:] == [
        "idp signing-key rotate status",
        "idp signing-key rotate finish",
    ]
    assert "idp metadata &gt; idp-metadata.xml" in page


def test_after_finish_the_page_shows_the_new_signing_key_and_the_retired_one(
    sso: Sso, admin: requests.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    rotate(capsys, "start")
    before = published_fingerprints(sso)
    rotate(capsys, "finish")  # No AWS app, so no provider lacks the next certificate.
    [published] = published_fingerprints(sso)

    page = shown_page(sso, admin)

    signing = facts(page, "The key that signs now")
    assert signing["KMS key id"] == sso.settings.next_signing_key_id
    assert signing["Alias"] == "alias/STACK/saml-signing-next (stack output NextSigningKeyId)"
    assert fingerprint_of(signing) == published == before[1]
    retired = facts(page, "The retired key")
    assert retired["KMS key id"] == sso.settings.signing_key_id and fingerprint_of(retired) == before[0]
    assert "Published in the metadata: <strong>no</strong>" in page
    rollover = facts(page, "Roll-over")
    assert (
        rollover["Stage"] == "Finished: the other key signs, and the old certificate is no longer published."
    )
    assert rollover["Started"].endswith(rollover["Finished"].partition(" by ")[2])
    assert " by cli:" in rollover["Finished"]
    assert next_step(page).splitlines()[-2:] == [
        "idp doctor",
        "idp signing-key rotate finish --schedule-deletion 30",
    ]


def test_a_step_whose_audit_event_is_gone_is_shown_without_an_actor(
    sso: Sso, admin: requests.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    rotate(capsys, "start")
    for event in audit.recent(days=2):
        event.delete()

    rollover = facts(shown_page(sso, admin), "Roll-over")

    assert rollover["Started"].endswith(
        "UTC (its saml.signing_key.rotation_started event is no longer in the audit trail)"
    )


def test_a_deployment_with_one_signing_key_is_told_to_redeploy(sso: Sso, admin: requests.Session) -> None:
    sso.handler.configure(dataclasses.replace(sso.settings, next_signing_key_id=None), sso.clock)

    page = shown_page(sso, admin)

    assert facts(page, "The key that signs now")["KMS key id"] == sso.settings.signing_key_id
    assert "This deployment has one signing key" in page
    assert next_step(page) == "make deploy\nidp signing-key rotate start"


def test_the_page_reads_no_kms(sso: Sso, admin: requests.Session, faults: FaultPlan) -> None:
    published_fingerprints(sso)  # The certificate exists, as on any deployment that signed once.
    kms = faults.add(Fault("kms", "refused", operation="*"))

    page = shown_page(sso, admin)

    assert fingerprint_of(facts(page, "The key that signs now"))
    assert faults.matched(kms) == 0


def test_attack_a_signed_in_non_admin_cannot_see_the_signing_key_page(sso: Sso, root: User) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    bob = signed_in(sso, "bob")

    refused = sso.get(bob, PAGE)

    assert refused.status_code == 403
    assert sso.settings.signing_key_id not in refused.text and "fingerprint" not in refused.text
    assert "/admin/signing-key" not in sso.get(bob, "/me").text
    signed_out = sso.get(sso.browser(), PAGE)
    assert signed_out.status_code == 303 and signed_out.headers["Location"].startswith("/login")


def test_attack_the_page_switches_nothing(
    sso: Sso, admin: requests.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    rotate(capsys, "start")
    state = KeyValue.get(signing_keys.STATE_ITEM).value
    token = page_token(sso, admin)

    for path in (PAGE, PAGE + "/finish", PAGE + "/start"):
        answer = sso.post(admin, path, {"csrf_token": token})
        assert answer.status_code in (404, 405), (path, answer.status_code)

    assert KeyValue.get(signing_keys.STATE_ITEM).value == state
    assert "<form" not in shown_page(sso, admin).split("<h1>Signing key</h1>")[1]


def test_attack_a_stored_state_naming_a_foreign_key_is_refused_not_shown_as_signing(
    sso: Sso, admin: requests.Session
) -> None:
    # Whoever can write the settings table must not get their key presented as the IdP's (S32).
    foreign = new_signing_key()
    KeyValue(
        signing_keys.STATE_ITEM, value=signing_keys.SigningKeys(signing=foreign).to_json(), updated_at=0
    ).save()

    answer = sso.get(admin, PAGE)

    assert answer.status_code == 500
    assert "not one of this deployment's signing keys" in text_of(answer)
    assert "The key that signs now" not in answer.text and "fingerprint" not in answer.text
