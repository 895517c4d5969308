"""The assertion's AuthnContextClassRef says how the user signed in (issue 11 point 5): a
password over TLS (``PasswordProtectedTransport``), or with a second factor the app accepts
(the REFEDS MFA profile). A service provider that requires MFA can then tell the two apart.

The class is read from the signed assertion, after checking its signature against the
certificate in the IdP's metadata, as a service provider would."""

from __future__ import annotations

import base64
import datetime
import html
import re
from typing import Any

import pytest
import requests
from signxml import SignatureConfiguration, XMLVerifier  # type: ignore[attr-defined]

from idp_core.mfa import policy
from idp_core.saml.aws import PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA
from idp_core.saml.xml import NAMESPACES, parse_xml
from tests.helpers.mfa import (
    MFA_APP,
    OPEN_APP,
    add_user,
    give_totp,
    path_of,
    sign_in_with_totp,
    submit_code,
    totp_code,
)
from tests.helpers.sso import Sso

_SAML_RESPONSE = re.compile(r'name="SAMLResponse" value="([^"]+)"')


pytestmark = pytest.mark.sso_setup("two_apps")


def class_ref(sso: Sso, page: requests.Response) -> str:
    """The AuthnContextClassRef of the signed assertion in an auto-post page."""
    match = _SAML_RESPONSE.search(page.text)
    assert match, page.text[:800]
    response = base64.b64decode(html.unescape(match.group(1)))
    metadata = parse_xml(sso.get(sso.browser(), "/saml/metadata").content)
    [certificate] = metadata.xpath("//ds:X509Certificate/text()", namespaces=NAMESPACES)
    pem = f"-----BEGIN CERTIFICATE-----\n{certificate.strip()}\n-----END CERTIFICATE-----\n"
    config = SignatureConfiguration(
        location="./{urn:oasis:names:tc:SAML:2.0:assertion}Assertion/",
        verification_time=datetime.datetime.fromtimestamp(sso.clock.now(), tz=datetime.UTC),
    )
    result: Any = XMLVerifier().verify(response, x509_cert=pem, expect_config=config)
    verified = result.signed_xml
    refs = verified.xpath(
        "saml:AuthnStatement/saml:AuthnContext/saml:AuthnContextClassRef/text()", namespaces=NAMESPACES
    )
    assert len(refs) == 1
    return str(refs[0])


def test_attack_a_service_provider_cannot_tell_a_password_only_sign_in_from_mfa(sso: Sso) -> None:
    add_user("alice", sso.clock)
    secret = give_totp(sso, "alice")
    # A password alone (an app without MFA) says so,
    browser = sso.browser()
    password_only = sso.sign_in(browser, "alice", app=OPEN_APP)  # answered with the launch
    assert class_ref(sso, password_only) == PASSWORD_PROTECTED_TRANSPORT
    # and after the authenticator code the same session's assertions say MFA, for every app.
    step_up = sso.get(browser, f"/apps/{MFA_APP}/launch")
    verified = submit_code(sso, browser, path_of(step_up), totp_code(secret, sso.clock))
    assert class_ref(sso, verified) == REFEDS_MFA
    assert class_ref(sso, sso.get(browser, f"/apps/{OPEN_APP}/launch")) == REFEDS_MFA


def test_the_answer_to_the_challenge_claims_mfa(sso: Sso) -> None:
    add_user("bob", sso.clock)
    browser = sign_in_with_totp(sso, "bob", give_totp(sso, "bob"))
    assert class_ref(sso, sso.get(browser, f"/apps/{MFA_APP}/launch")) == REFEDS_MFA


def test_a_second_factor_the_app_does_not_accept_is_not_claimed_as_mfa(sso: Sso) -> None:
    # The open app accepts only hardware tokens; a session that proved an authenticator app
    # signs in to it (no MFA required) but its assertion for that app claims only the password.
    add_user("carol", sso.clock)
    browser = sign_in_with_totp(sso, "carol", give_totp(sso, "carol"))
    policy.set_app_policy(OPEN_APP, mfa_required=False, methods=["token"], context=None, clock=sso.clock)
    assert class_ref(sso, sso.get(browser, f"/apps/{OPEN_APP}/launch")) == PASSWORD_PROTECTED_TRANSPORT
