"""`idp signing-key rotate start|status|finish` walks the SAML signing key over to the
deployment's second KMS key while users sign in to AWS through the local stand-in for AWS's
sign-in endpoint, whose IAM SAML provider holds certificates as AWS does: no sign-in fails
before, between or after the steps, and finish waits for every provider."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from idp_core import accounts, apps, audit
from idp_core.audit import EventType
from idp_core.clock import FakeClock
from idp_core.config import Tables
from idp_core.models import KeyValue
from idp_core.saml import signing_keys
from idp_core.saml.aws import AwsAssertion, build_signed_response
from idp_core.saml.certificate import signing_identity, stored_certificate
from idp_core.saml.signing_keys import RotationRefused
from idp_core.saml.xml import NAMESPACES, parse_xml
from idp_local.aws_emulator import AwsSignInEmulator
from tests.helpers.cli import act_on, idp_from_env
from tests.helpers.mfa import password_only
from tests.helpers.saml_sp import posted_form
from tests.helpers.sso import PASSWORD, Sso, new_signing_key, running_sso, with_next_signing_key

pytestmark = pytest.mark.sso_setup("password_only")

# moto's own account: the CLI reads its IAM SAML providers with the session's credentials.
ACCOUNT = "123456789012"
APP = "aws-rotating"
OTHER_APP = "aws-rotating-too"


@dataclasses.dataclass(frozen=True)
class Rotating:
    sso: Sso
    first_key: str
    second_key: str
    provider_arns: dict[str, str]  # app name -> IAM SAML provider ARN
    role_arn: str


@pytest.fixture
def rotating(sso: Sso, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rotating]:
    """The functions, in this process, with the deployment's second signing key."""
    yield _arranged(with_next_signing_key(sso), monkeypatch)
    signing_keys.forget_cached_keys()


def _arranged(sso: Sso, monkeypatch: pytest.MonkeyPatch) -> Rotating:
    """Two AWS apps of ``sso`` (each with its own IAM SAML provider, registered with the
    metadata of the first sign-in) and alice in their group; the CLI's environment names the
    same stack."""
    act_on(sso.settings, monkeypatch)
    signing_keys.forget_cached_keys()
    accounts.create_group("engineers", clock=sso.clock)
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD, groups=["engineers"]), clock=sso.clock)
    suffix = secrets.token_hex(4)
    arns = {}
    for app in (APP, OTHER_APP):
        created = apps.create_aws_app(
            app,
            apps.AwsAppChoices(
                account_id=ACCOUNT,
                roles=[(_role(app, suffix), "engineers")],
                provider_name=f"rotating-{app}-{suffix}",
            ),
            mfa_required=False,
            clock=sso.clock,
        )
        arns[app] = apps.provider_arn(created)
    return Rotating(
        sso,
        sso.settings.signing_key_id,
        str(sso.settings.next_signing_key_id),
        arns,
        apps.role_arn(ACCOUNT, _role(APP, suffix)),
    )


def _role(app: str, suffix: str) -> str:
    # moto's IAM outlives the test: names of its own keep its roles from meeting another test's.
    return f"{app}-{suffix}"


def _metadata(sso: Sso) -> bytes:
    answer = requests.get(sso.url + "/saml/metadata", timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    return answer.content


def _emulator(sso: Sso, app: str = APP) -> AwsSignInEmulator:
    """AWS's sign-in endpoint for ``app``; a provider it does not find it registers with the
    IdP's metadata of that moment, as an admin does at set-up."""
    acs_url = str(apps.get_app(app).acs_url)
    return AwsSignInEmulator(
        boto3.client("iam"), boto3.client("sts"), sso.clock, lambda: _metadata(sso), acs_url
    )


def _saml_response(sso: Sso, app: str = APP) -> str:
    browser = sso.browser()
    page = sso.sign_in(browser, "alice", PASSWORD, app=app)
    assert page.status_code == 200, page.text[:500]
    return posted_form(page.text).fields["SAMLResponse"]


def _sign_in_to_aws(sso: Sso, app: str = APP) -> str:
    """alice signs in to ``app`` and AWS accepts it; the certificate the response carries."""
    saml_response = _saml_response(sso, app)
    status, page = _emulator(sso, app).handle({"SAMLResponse": saml_response})
    assert status == 200, page
    assert "Signed in to AWS" in page
    return _signed_with(saml_response)


def _signed_with(saml_response: str) -> str:
    root = parse_xml(base64.b64decode(saml_response))
    return "".join((root.findtext(".//ds:X509Certificate", namespaces=NAMESPACES) or "").split())


def _published(metadata: bytes) -> list[str]:
    root = parse_xml(metadata)
    descriptors = root.findall(".//md:IDPSSODescriptor/md:KeyDescriptor", NAMESPACES)
    assert all(descriptor.get("use") == "signing" for descriptor in descriptors)
    return [
        "".join((descriptor.findtext(".//ds:X509Certificate", namespaces=NAMESPACES) or "").split())
        for descriptor in descriptors
    ]


def _certificate(key_id: str, clock: FakeClock) -> str:
    return signing_identity(boto3.client("kms"), key_id, clock).certificate_der_b64


def _update_provider(arn: str, metadata: bytes) -> None:
    """What the provider's admin does: upload the IdP's metadata of now to it."""
    boto3.client("iam").update_saml_provider(
        SAMLProviderArn=arn, SAMLMetadataDocument=metadata.decode("utf-8")
    )


def _status(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = idp_from_env(capsys, "signing-key", "rotate", "status", "--json")
    assert (code, err) == (0, ""), err
    return dict(json.loads(out))


def _holds_next(status: dict[str, Any]) -> dict[str, bool]:
    return {provider["arn"]: provider["holds_next"] for provider in status["providers"]}


def _events(event_type: EventType) -> list[Any]:
    return [event for event in audit.recent() if event.type == event_type]


def _ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = idp_from_env(capsys, "signing-key", "rotate", *args)
    assert (code, err) == (0, ""), f"idp signing-key rotate {' '.join(args)} failed: {err}"
    return out


def test_a_rotation_walked_through_start_provider_updates_and_finish_never_fails_a_sign_in(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    sso, clock = rotating.sso, rotating.sso.clock
    first, second = _certificate(rotating.first_key, clock), _certificate(rotating.second_key, clock)
    # Before: the first key signs alone; the sign-ins register both providers with that metadata.
    assert _published(_metadata(sso)) == [first]
    assert _sign_in_to_aws(sso) == first
    assert _sign_in_to_aws(sso, OTHER_APP) == first

    out = _ok(capsys, "start")
    assert rotating.second_key in out
    # Both certificates are published, the signing one first; the first key still signs.
    assert _published(_metadata(sso)) == [first, second]
    status = _status(capsys)
    assert (status["signing"], status["next"]) == (rotating.first_key, rotating.second_key)
    assert status["published"] == [rotating.first_key, rotating.second_key]
    assert _holds_next(status) == {arn: False for arn in rotating.provider_arns.values()}
    assert _sign_in_to_aws(sso) == first

    # Between: one provider updated, the other not yet: finish waits, and names the one.
    _update_provider(rotating.provider_arns[APP], _metadata(sso))
    assert _holds_next(_status(capsys)) == {
        rotating.provider_arns[APP]: True,
        rotating.provider_arns[OTHER_APP]: False,
    }
    code, _, err = idp_from_env(capsys, "signing-key", "rotate", "finish")
    assert code == 1
    assert rotating.provider_arns[OTHER_APP] in err and rotating.provider_arns[APP] not in err
    assert _sign_in_to_aws(sso) == first
    assert _sign_in_to_aws(sso, OTHER_APP) == first

    _update_provider(rotating.provider_arns[OTHER_APP], _metadata(sso))
    assert set(_holds_next(_status(capsys)).values()) == {True}
    _ok(capsys, "finish")

    # After: the second key signs, its certificate alone is published, both providers accept it.
    assert _published(_metadata(sso)) == [second]
    assert _sign_in_to_aws(sso) == second
    assert _sign_in_to_aws(sso, OTHER_APP) == second
    status = _status(capsys)
    assert (status["signing"], status["next"], status["retired"]) == (
        rotating.second_key,
        None,
        rotating.first_key,
    )
    assert [event.outcome for event in _events(EventType.SIGNING_KEY_ROTATION_STARTED)] == ["success"]
    finished = _events(EventType.SIGNING_KEY_ROTATION_FINISHED)
    assert sorted(event.outcome for event in finished) == ["failure", "success"]
    assert all(event.actor.startswith("cli:") for event in finished)


def test_a_warm_container_signs_with_the_old_key_after_finish_and_aws_still_accepts_it(
    tables: Tables, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As deployed: the sso function in a process of its own, which keeps the signing key it
    read for up to a minute. The finish, made elsewhere, reaches it later; meanwhile its
    sign-ins carry the old key's signature, which the updated providers still accept."""
    with running_sso(tables, clock, workers=1, next_signing_key=True) as sso:
        password_only(clock)
        rotating = _arranged(sso, monkeypatch)
        first, second = _certificate(rotating.first_key, clock), _certificate(rotating.second_key, clock)
        assert _sign_in_to_aws(sso) == first  # The container reads the signing key now.
        assert _sign_in_to_aws(sso, OTHER_APP) == first
        _ok(capsys, "start")
        for arn in rotating.provider_arns.values():
            _update_provider(arn, _metadata(sso))

        _ok(capsys, "finish")

        assert _sign_in_to_aws(sso) == first
        # The metadata is read afresh, and so is the signing key with it.
        assert _published(_metadata(sso)) == [second]
        assert _sign_in_to_aws(sso) == second


def test_the_next_rotation_goes_back_to_the_retired_key(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    _ok(capsys, "start")
    _ok(capsys, "finish", "--force")

    _ok(capsys, "start")

    status = _status(capsys)
    assert (status["signing"], status["next"], status["retired"]) == (
        rotating.second_key,
        rotating.first_key,
        None,
    )


def test_attack_finish_is_refused_while_a_provider_lacks_the_next_certificate_and_changes_nothing(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    sso = rotating.sso
    assert _sign_in_to_aws(sso)  # Registers the provider with the first certificate alone.
    _ok(capsys, "start")
    published = _published(_metadata(sso))

    code, out, err = idp_from_env(capsys, "signing-key", "rotate", "finish")

    assert (code, out) == (1, "")
    assert "Not switching to" in err and "do not hold its certificate" in err and "--force" in err
    assert _published(_metadata(sso)) == published
    assert _status(capsys)["signing"] == rotating.first_key
    # The signing key is unchanged, so the provider that was never updated still accepts.
    assert _sign_in_to_aws(sso) == published[0]


def test_attack_finish_waits_for_the_provider_of_every_account_an_app_signs_in_to(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    # The app also maps a role in a second account: that account's provider must take the
    # next certificate too, or its users stop signing in when signing switches.
    sso = rotating.sso
    assert _sign_in_to_aws(sso) and _sign_in_to_aws(sso, OTHER_APP)  # Registers both providers.
    app = apps.get_app(APP)
    apps.update_aws_app(
        APP,
        apps.AwsAppChoices(roles=[(app.roles[0].role, "engineers"), ("444455556666:Deployer", "engineers")]),
        clock=sso.clock,
    )
    _ok(capsys, "start")
    for arn in rotating.provider_arns.values():
        _update_provider(arn, _metadata(sso))
    second = apps.provider_arn_in("444455556666", apps.get_app(APP))
    assert _holds_next(_status(capsys)) == {
        **dict.fromkeys(rotating.provider_arns.values(), True),
        second: False,
    }
    code, out, err = idp_from_env(capsys, "signing-key", "rotate", "finish")
    assert (code, out) == (1, "") and second in err
    assert _status(capsys)["signing"] == rotating.first_key


def test_attack_forced_finish_switches_and_the_provider_without_the_certificate_refuses(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    # What --force accepts, shown: AWS refuses the new key's signatures where it is not held.
    sso = rotating.sso
    assert _sign_in_to_aws(sso)
    _ok(capsys, "start")

    _ok(capsys, "finish", "--force")

    status, page = _emulator(sso).handle({"SAMLResponse": _saml_response(sso)})
    assert status == 403
    assert "does not verify against the certificate registered" in page


def test_attack_a_response_signed_by_an_unpublished_key_is_refused_by_the_provider(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    sso, clock = rotating.sso, rotating.sso.clock
    assert _sign_in_to_aws(sso)
    _ok(capsys, "start")
    _update_provider(rotating.provider_arns[APP], _metadata(sso))
    stranger = signing_identity(boto3.client("kms"), new_signing_key(), clock)
    forged = AwsAssertion(
        issuer=sso.url + "/saml/metadata",
        acs_url=str(apps.get_app(APP).acs_url),
        name_id="alice",
        roles=((rotating.role_arn, rotating.provider_arns[APP]),),
        role_session_name="alice",
        session_duration=3600,
    )

    status, page = _emulator(sso).handle(
        {"SAMLResponse": base64.b64encode(build_signed_response(forged, stranger, clock)).decode("ascii")}
    )

    assert status == 403
    assert "does not verify against the certificate registered" in page


def test_attack_the_retired_key_is_refused_once_the_provider_holds_the_new_metadata_alone(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    sso = rotating.sso
    before = _saml_response(sso)  # Signed by the first key, not yet used.
    assert _sign_in_to_aws(sso)
    assert _sign_in_to_aws(sso, OTHER_APP)
    _ok(capsys, "start")
    _update_provider(rotating.provider_arns[APP], _metadata(sso))
    _update_provider(rotating.provider_arns[OTHER_APP], _metadata(sso))
    _ok(capsys, "finish")
    _update_provider(rotating.provider_arns[APP], _metadata(sso))

    status, page = _emulator(sso).handle({"SAMLResponse": before})

    assert status == 403
    assert "does not verify against the certificate registered" in page


def test_start_is_refused_while_a_rotation_is_under_way_and_on_a_single_key_deployment(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    kms = boto3.client("kms")
    with pytest.raises(RotationRefused, match="redeploy the stack"):
        signing_keys.start_rotation(kms, (rotating.first_key, None), context=None, clock=rotating.sso.clock)
    assert _status(capsys)["next"] is None

    _ok(capsys, "start")
    code, _, err = idp_from_env(capsys, "signing-key", "rotate", "start")
    assert code == 1 and "already under way" in err


def test_finish_without_a_rotation_and_deletion_during_one_are_refused(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = idp_from_env(capsys, "signing-key", "rotate", "finish")
    assert code == 1 and "No rotation is under way" in err
    _ok(capsys, "start")

    code, _, err = idp_from_env(capsys, "signing-key", "rotate", "finish", "--schedule-deletion", "30")

    assert code == 2 and "Finish the rotation first" in err
    assert _status(capsys)["next"] == rotating.second_key


def test_the_retired_key_is_deleted_only_when_asked_and_once_no_function_signs_with_it(
    rotating: Rotating,
) -> None:
    clock = FakeClock()
    kms = boto3.client("kms")
    keys = (rotating.first_key, rotating.second_key)
    signing_keys.start_rotation(kms, keys, context=None, clock=clock)
    signing_keys.finish_rotation(keys, lacking=["arn:x"], force=True, context=None, clock=clock)
    assert kms.describe_key(KeyId=rotating.first_key)["KeyMetadata"]["KeyState"] == "Enabled"

    with pytest.raises(RotationRefused, match="Warm functions may still sign"):
        signing_keys.schedule_retired_deletion(kms, keys, days=30, context=None, clock=clock)
    clock.advance(2 * signing_keys.CACHE_SECONDS)
    with pytest.raises(RotationRefused, match="7 to 30 days"):
        signing_keys.schedule_retired_deletion(kms, keys, days=3, context=None, clock=clock)
    deleted = signing_keys.schedule_retired_deletion(kms, keys, days=30, context=None, clock=clock)

    assert deleted == rotating.first_key
    assert kms.describe_key(KeyId=rotating.first_key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert _events(EventType.SIGNING_KEY_DELETION_SCHEDULED) == []  # written at the FakeClock's time
    assert [
        event.subject
        for event in audit.recent(clock=clock)
        if event.type == EventType.SIGNING_KEY_DELETION_SCHEDULED
    ] == [rotating.first_key]
    # A rotation back to it is refused with what to do, not a failure at the next sign-in.
    with pytest.raises(RotationRefused, match="PendingDeletion"):
        signing_keys.start_rotation(kms, keys, context=None, clock=clock)


def test_status_as_text_names_the_keys_and_each_apps_provider(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _sign_in_to_aws(rotating.sso)  # Registers the first app's provider; the other has none.
    _ok(capsys, "start")

    out = _ok(capsys, "status")

    lines = out.splitlines()
    assert f"signing    {rotating.first_key}" in lines
    assert f"next       {rotating.second_key}" in lines
    assert "rotation   under way" in lines
    (registered,) = [line for line in lines if line.startswith(rotating.provider_arns[APP])]
    assert registered.split()[1:] == [APP, rotating.first_key, "no"]
    (missing,) = [line for line in lines if line.startswith(rotating.provider_arns[OTHER_APP])]
    assert "does not exist" in missing and missing.endswith("no")


def test_attack_a_state_naming_a_key_of_someone_elses_choosing_is_neither_published_nor_used(
    rotating: Rotating, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever can write the settings table (an operator) cannot make the IdP publish or sign
    with a key of their choosing: only the deployment's two keys, which the stack made."""
    sso = rotating.sso
    stranger = new_signing_key()
    tampered = signing_keys.SigningKeys(signing=rotating.first_key, next=stranger)
    KeyValue(signing_keys.STATE_ITEM, value=tampered.to_json(), updated_at=sso.clock.now()).save()
    signing_keys.forget_cached_keys()

    metadata = requests.get(sso.url + "/saml/metadata", timeout=30)
    browser = sso.browser()
    signed_in = sso.sign_in(browser, "alice", PASSWORD, app=APP)
    code, _, err = idp_from_env(capsys, "signing-key", "rotate", "status")

    assert metadata.status_code == 500 and "X509Certificate" not in metadata.text
    assert signed_in.status_code == 500 and "SAMLResponse" not in signed_in.text
    assert stored_certificate(stranger) is None  # Nothing was ever signed with it.
    assert code == 2 and f"names {stranger}, which is not one of this deployment's signing keys" in err
