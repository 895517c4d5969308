"""Any SAML 2.0 service provider (issue 16 point 1): SP-initiated sign-in through the pages,
with pysaml2 and python3-saml as the SPs that make the requests and check the Responses."""

from __future__ import annotations

import base64
import re
import time
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import pytest
import requests
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.response import StatusNoPassive

from idp_core import accounts, saml_apps
from idp_core.audit import recent
from idp_core.clock import FakeClock
from idp_core.models import Transaction
from idp_core.saml.sp_metadata import parse_sp_metadata
from tests.helpers.mfa import give_totp, submit_code, totp_code
from tests.helpers.saml_sp import (
    ACS_URL,
    SLO_URL,
    SP_ENTITY,
    KeyPair,
    OneLoginSp,
    PySaml2Sp,
    key_pair,
    path_and_query,
    posted_form,
)
from tests.helpers.security_keys import register_key, sign_in_with_passkey, soft_key_for
from tests.helpers.sso import PASSWORD, Sso

pytestmark = pytest.mark.sso_setup("password_only")
APP = "wiki"
FORMATS = {name: uri for name, uri in saml_apps.NAMEID_FORMATS.items()}


@pytest.fixture
def clock() -> FakeClock:
    # The SP libraries check validity against the real time, so the IdP's clock starts at "now"
    # (a minute early, so that a test may move it on a little).
    return FakeClock(start=time.time() - 60)


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return key_pair(tmp_path / "sp")


@pytest.fixture
def idp_metadata(sso: Sso) -> str:
    answer = requests.get(sso.url + "/saml/metadata", timeout=30)
    assert answer.status_code == 200
    return answer.text


@pytest.fixture
def people(sso: Sso) -> None:
    accounts.create_group("staff", clock=sso.clock)
    accounts.create_user(
        accounts.NewUser(
            "alice",
            password=PASSWORD,
            email="alice@example.com",
            display_name="Alice Example",
            groups=["staff"],
        ),
        clock=sso.clock,
    )


def register(sp: Any, *, clock: FakeClock, name_id_format: str = "persistent", **options: Any) -> None:
    """The SP as an app, from its own metadata, sending e-mail and groups."""
    settings = saml_apps.SamlAppSettings(
        sp=parse_sp_metadata(sp.metadata()),
        name_id_format=name_id_format,
        attributes=[
            ("email", "email"),
            ("groups", "groups"),
            ("urn:oid:2.16.840.1.113730.3.1.241", "display_name"),
        ],
        mfa_required=False,
        **options,
    )
    saml_apps.create_saml_app(APP, settings, clock=clock)


def pysaml2_sp(
    idp_metadata: str, keys: KeyPair, *, signed: bool, name_id_format: str = "persistent"
) -> PySaml2Sp:
    return PySaml2Sp(idp_metadata, keys, sign_requests=signed, name_id_format=FORMATS[name_id_format])


def sign_in_through(sso: Sso, browser: requests.Session, first: requests.Response) -> requests.Response:
    """Follow the IdP from the SP's request through the sign-in page to the auto-posting page."""
    assert first.status_code in (302, 303), first.text[:500]
    answer = first
    for _ in range(6):
        location = path_and_query(answer.headers["Location"])
        if location.startswith("/login"):
            token = sso.login_form_token(browser, location[len("/login") :])
            next_page = unquote(location.split("next=", 1)[1])
            answer = sso.post(
                browser,
                "/login",
                {"csrf_token": token, "username": "alice", "password": PASSWORD, "next": next_page},
            )
        else:
            answer = sso.get(browser, location)
        if answer.status_code == 200:
            return answer
        assert answer.status_code in (302, 303), answer.text[:500]
    raise AssertionError("the IdP never answered with a page")


def start(
    sso: Sso, browser: requests.Session, binding: str, request: str | dict[str, str]
) -> requests.Response:
    if binding == BINDING_HTTP_REDIRECT:
        assert isinstance(request, str)
        return sso.get(browser, path_and_query(request))
    assert isinstance(request, dict)
    return sso.post(browser, "/saml/sso", request)


# ---------------------------------------------------------------- pysaml2 as the SP


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
@pytest.mark.parametrize("signed", [True, False])
def test_pysaml2_sp_initiated_sign_in_is_accepted_by_the_sp(
    sso: Sso, people: None, idp_metadata: str, keys: KeyPair, binding: str, signed: bool
) -> None:
    sp = pysaml2_sp(idp_metadata, keys, signed=signed)
    register(sp, clock=sso.clock, require_signed_requests=signed)
    browser = sso.browser()
    request_id, request = sp.request(binding, relay_state="back-to/page?x=1")
    page = sign_in_through(sso, browser, start(sso, browser, binding, request))
    form = posted_form(page.text)
    assert form.action == ACS_URL
    assert form.fields["RelayState"] == "back-to/page?x=1"
    response = sp.accept(form.fields["SAMLResponse"], request_id)
    assert response.in_response_to == request_id
    assert response.name_id.format == FORMATS["persistent"]
    assert response.name_id.text != "alice" and len(response.name_id.text) >= 40
    assert response.ava["email"] == ["alice@example.com"]
    assert response.ava["groups"] == ["staff"]


@pytest.mark.parametrize("name_id_format", ["persistent", "email", "transient", "unspecified"])
def test_pysaml2_accepts_every_name_id_format(
    sso: Sso, people: None, idp_metadata: str, keys: KeyPair, name_id_format: str
) -> None:
    sp = pysaml2_sp(idp_metadata, keys, signed=True, name_id_format=name_id_format)
    register(sp, clock=sso.clock, name_id_format=name_id_format)
    browser = sso.browser()
    names = []
    for _ in range(2):
        request_id, request = sp.request(BINDING_HTTP_REDIRECT)
        first = start(sso, browser, BINDING_HTTP_REDIRECT, request)
        page = sign_in_through(sso, browser, first) if first.status_code != 200 else first
        response = sp.accept(posted_form(page.text).fields["SAMLResponse"], request_id)
        assert response.name_id.format == FORMATS[name_id_format]
        names.append(response.name_id.text)
    expected = {"email": "alice@example.com", "unspecified": "alice"}.get(name_id_format)
    if expected:
        assert names == [expected, expected]
    elif name_id_format == "persistent":
        assert names[0] == names[1] and "alice" not in names[0]
    else:
        assert names[0] != names[1] and "alice" not in names[0]


@pytest.fixture
def signing_sp(sso: Sso, people: None, idp_metadata: str, keys: KeyPair) -> PySaml2Sp:
    """A pysaml2 SP that signs its requests, registered as the app."""
    sp = pysaml2_sp(idp_metadata, keys, signed=True)
    register(sp, clock=sso.clock)
    return sp


def test_a_signed_in_user_gets_the_response_at_once(sso: Sso, signing_sp: PySaml2Sp) -> None:
    sp = signing_sp
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    request_id, request = sp.request(BINDING_HTTP_REDIRECT)
    page = start(sso, browser, BINDING_HTTP_REDIRECT, request)
    assert page.status_code == 200
    assert sp.accept(posted_form(page.text).fields["SAMLResponse"], request_id).in_response_to == request_id


def test_a_passkey_answers_an_sp_initiated_sign_in_at_once(sso: Sso, signing_sp: PySaml2Sp) -> None:
    # The passkey's answer is the Response itself, as the password's is: no page in between.
    sp = signing_sp
    setup = sso.browser()
    assert sso.sign_in(setup, "alice").status_code == 303
    key = soft_key_for(sso)
    assert register_key(sso, setup, key, label="Laptop").status_code == 303
    browser = sso.browser()
    request_id, request = sp.request(BINDING_HTTP_REDIRECT)
    location = path_and_query(start(sso, browser, BINDING_HTTP_REDIRECT, request).headers["Location"])
    assert location.startswith("/login?")
    page = sign_in_with_passkey(sso, browser, key, next_page=unquote(location.split("next=", 1)[1]))
    assert page.status_code == 200, page.text[:500]
    assert sp.accept(posted_form(page.text).fields["SAMLResponse"], request_id).in_response_to == request_id


def test_is_passive_without_a_session_answers_no_passive(sso: Sso, signing_sp: PySaml2Sp) -> None:
    sp = signing_sp
    browser = sso.browser()
    request_id, request = sp.request(BINDING_HTTP_REDIRECT, is_passive="true")
    page = start(sso, browser, BINDING_HTTP_REDIRECT, request)
    assert page.status_code == 200 and "Sign in" not in page.text
    with pytest.raises(StatusNoPassive):
        sp.accept(posted_form(page.text).fields["SAMLResponse"], request_id)


def test_force_authn_asks_for_the_password_again(sso: Sso, signing_sp: PySaml2Sp) -> None:
    sp = signing_sp
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    sso.clock.advance(5)
    request_id, request = sp.request(BINDING_HTTP_REDIRECT, force_authn="true")
    page = start(sso, browser, BINDING_HTTP_REDIRECT, request)
    assert page.status_code == 200 and 'name="password"' in page.text and "SAMLResponse" not in page.text
    next_page = f"/saml/continue?request={page.text.split('request=', 1)[1][:64]}"
    login_token = re.search(
        r'name="csrf_token" value="([^"]+)">\s*<input type="hidden" name="next"', page.text
    )
    assert login_token
    signed_in = sso.post(
        browser,
        "/login",
        {"csrf_token": login_token.group(1), "username": "alice", "password": PASSWORD, "next": next_page},
    )
    # The answer to the password is the Response itself.
    assert signed_in.status_code == 200, signed_in.text[-800:]
    assert (
        sp.accept(posted_form(signed_in.text).fields["SAMLResponse"], request_id).in_response_to == request_id
    )


def test_an_app_that_requires_a_second_factor_asks_for_it_first(sso: Sso, signing_sp: PySaml2Sp) -> None:
    sp = signing_sp
    saml_apps_policy(APP, sso.clock)
    secret = give_totp(sso, "alice")
    browser = sso.browser()
    request_id, request = sp.request(BINDING_HTTP_REDIRECT)
    login = start(sso, browser, BINDING_HTTP_REDIRECT, request)
    location = path_and_query(login.headers["Location"])
    next_page = unquote(location.split("next=", 1)[1])
    token = sso.login_form_token(browser, location[len("/login") :])
    password_done = sso.post(
        browser, "/login", {"csrf_token": token, "username": "alice", "password": PASSWORD, "next": next_page}
    )
    # The app's policy asks for the second factor at once: the challenge is the answer.
    assert password_done.status_code == 200 and "Verification code" in password_done.text
    assert "SAMLResponse" not in password_done.text
    verified = submit_code(
        sso, browser, "/mfa?" + urlencode({"next": next_page}), totp_code(secret, sso.clock)
    )
    assert verified.status_code == 303
    page = sso.get(browser, path_and_query(verified.headers["Location"]))
    assert page.status_code == 200, (verified.headers["Location"], page.headers.get("Location"))
    response = sp.accept(posted_form(page.text).fields["SAMLResponse"], request_id)
    assert "refeds.org/profile/mfa" in str(response.authn_info())


def saml_apps_policy(app: str, clock: FakeClock) -> None:
    from idp_core.mfa import policy

    policy.set_app_policy(app, mfa_required=True, context=None, clock=clock)


# ---------------------------------------------------------------- python3-saml as the SP


def onelogin_sp(
    sso: Sso, idp_metadata: str, keys: KeyPair, *, signed: bool, name_id_format: str = "persistent"
) -> OneLoginSp:
    certificate = re.search(r"<ds:X509Certificate>([^<]+)<", idp_metadata)
    assert certificate
    return OneLoginSp(
        idp_entity=sso.url + "/saml/metadata",
        sso_url=sso.url + "/saml/sso",
        idp_cert=certificate.group(1),
        keys=keys,
        sign_requests=signed,
        name_id_format=FORMATS[name_id_format],
    )


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("name_id_format", ["persistent", "email", "transient", "unspecified"])
def test_python3_saml_accepts_the_response(
    sso: Sso, people: None, idp_metadata: str, keys: KeyPair, signed: bool, name_id_format: str
) -> None:
    sp = onelogin_sp(sso, idp_metadata, keys, signed=signed, name_id_format=name_id_format)
    register(sp, clock=sso.clock, name_id_format=name_id_format, require_signed_requests=signed)
    browser = sso.browser()
    request_id, url = sp.login_url("https://sp.example.test/after-sign-in")
    page = sign_in_through(sso, browser, sso.get(browser, path_and_query(url)))
    auth = sp.accept(posted_form(page.text), request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert auth.is_authenticated()
    assert auth.get_nameid_format() == FORMATS[name_id_format]
    assert auth.get_attributes()["email"] == ["alice@example.com"]
    assert posted_form(page.text).fields["RelayState"] == "https://sp.example.test/after-sign-in"


# ---------------------------------------------------------------- attacks: a clear 4xx, nothing issued


def authn_request(sso: Sso, *, request_id: str = "_req1", extra: str = "", prolog: str = "") -> bytes:
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sso.clock.now()))
    return (
        f'{prolog}<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{request_id}" Version="2.0" '
        f'IssueInstant="{issued}" Destination="{sso.url}/saml/sso" {extra}>'
        f"<saml:Issuer>{SP_ENTITY}</saml:Issuer></samlp:AuthnRequest>"
    ).encode()


def redirect_query(document: bytes, **extra: str) -> dict[str, str]:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated = compressor.compress(document) + compressor.flush()
    return {"SAMLRequest": base64.b64encode(deflated).decode(), **extra}


def assert_refused(answer: requests.Response, status: int, message: str) -> None:
    assert answer.status_code == status, answer.text[-600:]
    assert message in answer.text
    assert 'role="alert"' in answer.text
    assert "SAMLResponse" not in answer.text


def nothing_issued(sso: Sso) -> None:
    issued = [event for event in recent(clock=sso.clock) if event.type == "saml.assertion_issued"]
    assert issued == []


@pytest.fixture
def open_sp(sso: Sso, people: None, idp_metadata: str, keys: KeyPair) -> PySaml2Sp:
    """An SP registered without required signatures, and alice signed in to a browser."""
    sp = pysaml2_sp(idp_metadata, keys, signed=False)
    register(sp, clock=sso.clock)
    return sp


def test_attack_unsigned_request_to_an_app_that_requires_signatures(
    sso: Sso, people: None, idp_metadata: str, keys: KeyPair
) -> None:
    register(pysaml2_sp(idp_metadata, keys, signed=True), clock=sso.clock, require_signed_requests=True)
    unsigned = pysaml2_sp(idp_metadata, keys, signed=False)
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        _, request = unsigned.request(binding)
        assert_refused(start(sso, browser, binding, request), 403, "must sign its requests")
    nothing_issued(sso)


def test_attack_request_signed_by_another_key(
    sso: Sso, people: None, idp_metadata: str, keys: KeyPair, tmp_path: Path
) -> None:
    register(pysaml2_sp(idp_metadata, keys, signed=True), clock=sso.clock, require_signed_requests=True)
    impostor = pysaml2_sp(idp_metadata, key_pair(tmp_path / "impostor", "impostor"), signed=True)
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        _, request = impostor.request(binding)
        assert_refused(start(sso, browser, binding, request), 403, "does not verify")
    nothing_issued(sso)


def test_attack_acs_url_not_in_metadata(sso: Sso, open_sp: PySaml2Sp) -> None:
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    document = authn_request(sso, extra='AssertionConsumerServiceURL="https://evil.example/acs"')
    assert_refused(
        sso.get(browser, "/saml/sso", params=redirect_query(document)), 400, "not an assertion consumer"
    )
    index = authn_request(sso, request_id="_req2", extra='AssertionConsumerServiceIndex="7"')
    assert_refused(sso.get(browser, "/saml/sso", params=redirect_query(index)), 400, "names no HTTP-POST")
    nothing_issued(sso)


def test_attack_replayed_request_id(sso: Sso, open_sp: PySaml2Sp) -> None:
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    query = redirect_query(authn_request(sso))
    first = sso.get(browser, "/saml/sso", params=query)
    assert first.status_code == 200 and "SAMLResponse" in first.text
    replayed = sso.get(browser, "/saml/sso", params=query)
    assert_refused(replayed, 409, "already received")
    # Answering the same pending request twice is refused too.
    stored = [item for item in Transaction.scan() if item.purpose == "saml-answered"]
    assert len(stored) == 1
    again = sso.get(browser, "/saml/continue", params={"request": stored[0].id_hash.split(":", 1)[1]})
    assert_refused(again, 400, "answered already")


def test_attack_xml_with_a_doctype(sso: Sso, open_sp: PySaml2Sp) -> None:
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    prolog = '<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    document = authn_request(sso, prolog=prolog)
    assert_refused(sso.get(browser, "/saml/sso", params=redirect_query(document)), 400, "DOCTYPE")
    posted = {"SAMLRequest": base64.b64encode(document).decode()}
    assert_refused(sso.post(browser, "/saml/sso", posted), 400, "DOCTYPE")
    nothing_issued(sso)


def test_attack_deflate_bomb(sso: Sso, open_sp: PySaml2Sp) -> None:
    browser = sso.browser()
    bomb = authn_request(sso, extra=f'ProviderName="{"A" * 5_000_000}"')
    query = redirect_query(bomb)
    assert len(query["SAMLRequest"]) < 16_000  # Small on the wire, five megabytes inflated.
    assert_refused(sso.get(browser, "/saml/sso", params=query), 413, "inflates to more than")
    nothing_issued(sso)


def test_attack_oversized_request(sso: Sso, open_sp: PySaml2Sp) -> None:
    browser = sso.browser()
    document = authn_request(sso, extra=f'ProviderName="{"A" * 70_000}"')
    posted = {"SAMLRequest": base64.b64encode(document).decode()}
    assert_refused(sso.post(browser, "/saml/sso", posted), 413, "too large")
    nothing_issued(sso)


def test_attack_relay_state_over_the_limit(sso: Sso, open_sp: PySaml2Sp) -> None:
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    query = redirect_query(authn_request(sso), RelayState="r" * 1025)
    assert_refused(sso.get(browser, "/saml/sso", params=query), 400, "RelayState is longer than 1024 bytes")
    fits = sso.get(browser, "/saml/sso", params=redirect_query(authn_request(sso), RelayState="r" * 1024))
    assert posted_form(fits.text).fields["RelayState"] == "r" * 1024


def test_attack_request_from_an_unknown_sp_or_too_old(sso: Sso, open_sp: PySaml2Sp) -> None:
    browser = sso.browser()
    unknown = authn_request(sso).replace(SP_ENTITY.encode(), b"https://stranger.example/sp")
    assert_refused(sso.get(browser, "/saml/sso", params=redirect_query(unknown)), 404, "No app is registered")
    old = authn_request(sso)
    sso.clock.advance(3600)
    assert_refused(sso.get(browser, "/saml/sso", params=redirect_query(old)), 400, "too long ago")
    nothing_issued(sso)


def test_single_logout_ends_the_session_and_answers_python3_saml(
    sso: Sso, people: None, idp_metadata: str, keys: KeyPair
) -> None:
    sp = onelogin_sp(sso, idp_metadata, keys, signed=True)
    register(sp, clock=sso.clock, require_signed_requests=True)
    browser = sso.browser()
    request_id, url = sp.login_url("https://sp.example.test/after-sign-in")
    page = sign_in_through(sso, browser, sso.get(browser, path_and_query(url)))
    auth = sp.accept(posted_form(page.text), request_id)
    assert auth.is_authenticated()
    assert sso.get(browser, "/me").status_code == 200
    logout_id, logout_url = sp.logout_url(str(auth.get_nameid()))
    answer = sso.get(browser, path_and_query(logout_url))
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("https://sp.example.test/slo?SAMLResponse=")
    query = dict(parse_qsl(answer.headers["Location"].split("?", 1)[1]))
    done = sp.accept_logout(query, logout_id)
    assert done.get_errors() == [], done.get_last_error_reason()
    assert sso.get(browser, "/me").status_code == 303  # Signed out here.
    # The same LogoutRequest again is a replay.
    assert_refused(sso.get(browser, path_and_query(logout_url)), 409, "already received")


def test_attack_unsigned_logout_request_is_refused(
    sso: Sso, people: None, idp_metadata: str, keys: KeyPair
) -> None:
    sp = onelogin_sp(sso, idp_metadata, keys, signed=True)
    register(sp, clock=sso.clock)
    sp.settings["security"]["logoutRequestSigned"] = False  # type: ignore[index]
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    _, logout_url = sp.logout_url("someone")
    assert_refused(sso.get(browser, path_and_query(logout_url)), 403, "must sign its requests")
    assert sso.get(browser, "/me").status_code == 200  # Still signed in.


def test_the_app_tile_on_me_posts_an_unsolicited_response_to_the_default_acs(
    sso: Sso, people: None, idp_metadata: str, keys: KeyPair
) -> None:
    sp = pysaml2_sp(idp_metadata, keys, signed=True)
    register(sp, clock=sso.clock, groups=["staff"])
    accounts.create_user(accounts.NewUser("mallory", password=PASSWORD), clock=sso.clock)
    alice = sso.browser()
    assert sso.sign_in(alice, "alice").status_code == 303
    tiles = sso.get(alice, "/me")
    assert f"/apps/{APP}/launch" in tiles.text and "SAML app" in tiles.text
    page = sso.get(alice, f"/apps/{APP}/launch")
    form = posted_form(page.text)
    assert form.action == ACS_URL and "RelayState" not in form.fields
    response = sp.accept(form.fields["SAMLResponse"], None)
    assert response.in_response_to is None and response.ava["groups"] == ["staff"]
    # A RelayState of the user's choosing is not passed on to an SP from here (S17).
    redirected = sso.get(alice, f"/apps/{APP}/launch", params={"RelayState": "https://evil.example/"})
    assert_refused(redirected, 400, "starts at its own start page")
    mallory = sso.browser()
    assert sso.sign_in(mallory, "mallory").status_code == 303
    assert f"/apps/{APP}/launch" not in sso.get(mallory, "/me").text
    assert_refused(sso.get(mallory, f"/apps/{APP}/launch"), 403, "may not use the app")


def test_signing_only_the_response_or_only_the_assertion_is_accepted(
    sso: Sso, people: None, idp_metadata: str, keys: KeyPair
) -> None:
    sp = PySaml2Sp(
        idp_metadata,
        keys,
        sign_requests=True,
        name_id_format=FORMATS["persistent"],
        want_signed=(True, False),
    )
    register(sp, clock=sso.clock, signing="response")
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    request_id, request = sp.request(BINDING_HTTP_REDIRECT)
    page = start(sso, browser, BINDING_HTTP_REDIRECT, request)
    saml_response = base64.b64decode(posted_form(page.text).fields["SAMLResponse"])
    signatures = [match.start() for match in re.finditer(rb"<ds:Signature[ >]", saml_response)]
    assert len(signatures) == 1 and signatures[0] < saml_response.index(b"<saml:Assertion")
    assert sp.accept(posted_form(page.text).fields["SAMLResponse"], request_id).in_response_to == request_id


def test_the_apps_adaptive_policy_holds_for_sp_initiated_sign_in(sso: Sso, signing_sp: PySaml2Sp) -> None:
    from idp_core.adaptive import policies
    from idp_core.mfa import policy

    policies.save_policy(policies.AdaptivePolicy(name="office", deny_cidrs=("127.0.0.0/8",)), create=True)
    policy.set_app_policy(APP, adaptive="office", clock=sso.clock)
    browser = sso.browser()
    _, request = signing_sp.request(BINDING_HTTP_REDIRECT)
    login = start(sso, browser, BINDING_HTTP_REDIRECT, request)
    location = path_and_query(login.headers["Location"])
    token = sso.login_form_token(browser, location[len("/login") :])
    next_page = unquote(location.split("next=", 1)[1])
    denied = sso.post(
        browser, "/login", {"csrf_token": token, "username": "alice", "password": PASSWORD, "next": next_page}
    )
    assert denied.status_code == 403 and "SAMLResponse" not in denied.text
    decisions = [event for event in recent(clock=sso.clock) if event.type == "adaptive.decision"]
    assert decisions and decisions[0].details["app"] == APP
    nothing_issued(sso)


def signed_logout_request(sso: Sso, keys: KeyPair, name_id: str) -> str:
    """A LogoutRequest with an enveloped signature by the SP's key, as the HTTP-POST binding sends it."""
    from lxml import etree
    from signxml import SignatureConstructionMethod, XMLSigner  # type: ignore[attr-defined]

    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sso.clock.now()))
    document = etree.fromstring(
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_logout1" Version="2.0" '
        f'IssueInstant="{issued}" '
        f'Destination="{sso.url}/saml/slo"><saml:Issuer>{SP_ENTITY}</saml:Issuer>'
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
        f"<saml:NameID>{name_id}</saml:NameID></samlp:LogoutRequest>"
    )
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    )
    signed = signer.sign(document, key=keys.key_pem.encode(), cert=keys.cert_pem)
    return base64.b64encode(etree.tostring(signed)).decode()


def test_single_logout_by_http_post_answers_pysaml2_with_a_signed_logout_response(
    sso: Sso, signing_sp: PySaml2Sp, keys: KeyPair
) -> None:
    browser = sso.browser()
    assert sso.sign_in(browser, "alice").status_code == 303
    posted = sso.post(
        browser, "/saml/slo", {"SAMLRequest": signed_logout_request(sso, keys, "x"), "RelayState": "bye"}
    )
    # A cross-site POST carries no session cookie: a GET to this site brings it.
    assert posted.status_code == 303 and path_and_query(posted.headers["Location"]).startswith(
        "/saml/slo/continue"
    )
    answer = sso.get(browser, path_and_query(posted.headers["Location"]))
    form = posted_form(answer.text)
    assert form.action == SLO_URL and form.fields["RelayState"] == "bye"
    response = signing_sp.client.parse_logout_request_response(form.fields["SAMLResponse"], BINDING_HTTP_POST)
    assert response.in_response_to == "_logout1" and response.status_ok()
    assert sso.get(browser, "/me").status_code == 303  # Signed out here.
