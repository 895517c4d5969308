"""A person signs in to SimpleSAMLphp (from Debian, a SAML SP no one here wrote) through the
IdP: SP-initiated, in Chromium, and SimpleSAMLphp shows the attributes it accepted."""

from __future__ import annotations

from pathlib import Path

import requests
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import LocalIdp
from tests.e2e.steps import add_demo_user, enrol_authenticator, fresh_browser_page, sign_in
from tests.support.simplesamlphp import login_url, metadata_url, simplesamlphp_sp

USERNAME = "sspuser"
PASSWORD = "a long enough e2e password"


def test_simplesamlphp_signs_a_user_in_through_the_idp(
    browser: Browser, local_idp: LocalIdp, tmp_path: Path
) -> None:
    base = local_idp.base_url
    idp_metadata = requests.get(f"{base}/saml/metadata", timeout=30).text
    with simplesamlphp_sp(tmp_path / "ssp", idp_metadata) as sp_url:
        sp_metadata = tmp_path / "sp-metadata.xml"
        sp_metadata.write_bytes(requests.get(metadata_url(sp_url), timeout=30).content)
        added = local_idp.idp(
            "app", "add-saml", "ssp", "--metadata-file", str(sp_metadata),
            "--attribute", "uid=username", "--attribute", "groups=groups",
            # SimpleSAMLphp's AuthnRequest asks for a transient NameID unless configured otherwise.
            "--name-id-format", "transient",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert local_idp.idp("policy", "set", "ssp", "--mfa", "off").returncode == 0
        add_demo_user(local_idp, USERNAME, PASSWORD)
        with fresh_browser_page(browser) as page:
            sign_in(page, base, USERNAME, PASSWORD)
            enrol_authenticator(page, base)  # Every user sets up a second factor first (S11).
            page.goto(login_url(sp_url))
            # The AuthnRequest, the signed-in session's Response, SimpleSAMLphp's checks: its page.
            expect(page.get_by_text(USERNAME, exact=True)).to_be_visible()
            state = local_idp.process.state
            assert state is not None
            expect(page.get_by_text(state.demo_group, exact=True)).to_be_visible()
            assert page.url.startswith(sp_url)
