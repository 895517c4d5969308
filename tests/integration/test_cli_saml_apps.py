"""`idp app add-saml|update-saml` (issue 16 point 1): an SP from its metadata file or by hand;
bad input is one sentence and exit 2, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp_core import saml_apps
from idp_core.models import App
from tests.helpers.cli import idp, listing, ok
from tests.helpers.saml_sp import ACS_URL, SP_ENTITY, key_pair

METADATA = (
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">'
    '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
    '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
    'Location="{acs}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>'
)


@pytest.mark.usefixtures("bound")
def test_add_a_saml_app_from_metadata_and_by_hand_then_update_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    metadata = tmp_path / "sp.xml"
    metadata.write_text(METADATA.format(entity=SP_ENTITY, acs=ACS_URL))
    ok(capsys, "group", "add", "staff")
    out = ok(
        capsys, "app", "add-saml", "wiki", "--metadata-file", str(metadata),
        "--attribute", "email=email", "--attribute", "urn:oid:0.9.2342.19200300.100.1.3=email",
        "--group", "staff", "--sign", "assertion",
    )  # fmt: skip
    assert out.startswith(f"Created SAML app wiki for {SP_ENTITY}.")
    keys = key_pair(tmp_path / "crm")
    ok(
        capsys, "app", "add-saml", "crm", "--entity-id", "https://crm.example.test/saml",
        "--acs-url", "https://crm.example.test/acs", "--certificate", keys.cert_file,
        "--require-signed-requests", "--name-id-format", "email",
    )  # fmt: skip
    apps = {app["name"]: app for app in listing(capsys, "app", "list")}
    assert apps["wiki"]["kind"] == "saml" and apps["crm"]["kind"] == "saml"
    wiki = apps["wiki"]["sp"]
    assert wiki["entity_id"] == SP_ENTITY and wiki["acs"][0]["url"] == ACS_URL
    assert (wiki["sign_response"], wiki["sign_assertion"], wiki["groups"]) == (False, True, ["staff"])
    assert [(a["name"], a["name_format"].rsplit(":", 1)[1]) for a in wiki["attributes"]] == [
        ("email", "basic"),
        ("urn:oid:0.9.2342.19200300.100.1.3", "uri"),
    ]
    assert "name_id_salt" not in wiki
    shown = ok(capsys, "app", "show", "wiki")
    assert SP_ENTITY in shown and ACS_URL in shown and "persistent from opaque-id" in shown
    salt = saml_apps.sp_config(App.get("crm")).name_id_salt
    crm = apps["crm"]["sp"]
    assert (
        crm["requests_signed"] and crm["certificates"] == [keys.cert_b64] and crm["name_id_format"] == "email"
    )
    ok(capsys, "app", "update-saml", "crm", "--entity-id", "https://crm.example.test/saml",
       "--acs-url", "https://crm.example.test/acs2", "--name-id-format", "transient")  # fmt: skip
    crm = {app["name"]: app for app in listing(capsys, "app", "list")}["crm"]["sp"]
    assert crm["acs"][0]["url"] == "https://crm.example.test/acs2" and crm["name_id_format"] == "transient"
    assert saml_apps.sp_config(App.get("crm")).name_id_salt == salt  # Persistent NameIDs stay.


@pytest.mark.usefixtures("bound")
def test_attack_the_aws_app_update_cannot_rewrite_a_saml_app(capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "app", "add-saml", "crm", "--entity-id", "https://crm.example.test/saml",
       "--acs-url", "https://crm.example.test/acs")  # fmt: skip
    before = App.get("crm").attribute_values
    # AWS settings (an ACS URL among them) would be stored beside the SP's and muddle both.
    code, out, err = idp(capsys, "app", "update", "crm", "--acs-url", "https://evil.example/acs")
    assert (code, out) == (2, "") and "is a SAML app" in err and "update-saml" in err
    assert App.get("crm").attribute_values == before
    # Turning it off and on is the same as for any app.
    ok(capsys, "app", "update", "crm", "--disable")
    assert App.get("crm").disabled is True


BAD_INPUT = [
    pytest.param([], "Give --metadata-file, or --entity-id and --acs-url", id="no-sp"),
    pytest.param(["--entity-id", "urn:x"], "Give --metadata-file, or --entity-id and --acs-url", id="no-acs"),
    pytest.param(["--entity-id", "urn:x", "--acs-url", "http://evil.example/"], "https URL", id="http-acs"),
    pytest.param(["--metadata-file", "/nonexistent.xml"], "Cannot read /nonexistent.xml", id="no-file"),
    pytest.param(["--metadata-file", "DOCTYPE"], "DOCTYPE", id="doctype"),
    pytest.param(["--metadata-file", "EMPTY"], "not SAML 2.0 metadata", id="not-metadata"),
    pytest.param(
        ["--entity-id", "urn:x", "--acs-url", "https://sp.example/acs", "--require-signed-requests"],
        "Signed requests need the SP's signing certificate",
        id="signed-without-certificate",
    ),
    pytest.param(
        ["--entity-id", "urn:x", "--acs-url", "https://sp.example/acs", "--attribute", "mail=shoe_size"],
        "comes from one of",
        id="unknown-field",
    ),
    pytest.param(
        ["--entity-id", "urn:x", "--acs-url", "https://sp.example/acs", "--group", "ghosts"],
        "no group 'ghosts'",
        id="unknown-group",
    ),
]


@pytest.mark.usefixtures("local_state")
@pytest.mark.parametrize(("args", "expected"), BAD_INPUT)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], expected: str
) -> None:
    files = {
        "DOCTYPE": '<!DOCTYPE x [<!ENTITY e "e">]>' + METADATA.format(entity=SP_ENTITY, acs=ACS_URL),
        "EMPTY": "<empty/>",
    }
    for index, arg in enumerate(args):
        if arg in files:
            path = tmp_path / f"{arg}.xml"
            path.write_text(files[arg])
            args = [*args[:index], str(path), *args[index + 1 :]]
    code, out, err = idp(capsys, "app", "add-saml", "x", *args)
    assert (code, out) == (2, "")
    assert err.startswith("idp: ") and err.count("\n") == 1 and "Traceback" not in err
    assert expected in err, err
    assert listing(capsys, "app", "list") == []
