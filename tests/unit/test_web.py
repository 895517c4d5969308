"""The web layer without AWS: redirect targets (S17), form parsing (S26), CSRF and headers (S16)."""

from __future__ import annotations

import base64

import pytest

from idp_core.clock import FakeClock
from idp_core.config import Settings, Tables
from idp_core.errors import BadRequest, CsrfFailure, PayloadTooLarge
from idp_core.models import Session
from idp_core.web import (
    Field,
    WebRequest,
    finalize,
    login_csrf_token,
    read_form,
    read_login_form,
    safe_next_path,
)
from idp_core.web.forms import UnsupportedMediaType
from idp_core.web.responses import content_security_policy, set_cookie

SETTINGS = Settings(tables=Tables.with_prefix("unit-"), signing_key_id="key")
FIELDS = {"name": Field("Name", 10), "note": Field("Note", 5, required=False)}
FORM = "application/x-www-form-urlencoded"


def request(
    body: str | None = None,
    *,
    content_type: str = FORM,
    cookie: str | None = None,
    base64_body: bool = False,
    settings: Settings = SETTINGS,
    stage: str = "prod",
) -> WebRequest:
    headers = {"Content-Type": content_type, "Host": "abc.execute-api.us-east-1.amazonaws.com"}
    if cookie:
        headers["Cookie"] = cookie
    if base64_body and body is not None:
        body = base64.b64encode(body.encode()).decode()
    event = {
        "httpMethod": "POST",
        "path": "/x",
        "headers": headers,
        "body": body,
        "isBase64Encoded": base64_body,
        "requestContext": {
            "domainName": headers["Host"],
            "stage": stage,
            "identity": {"sourceIp": "192.0.2.1"},
        },
    }
    return WebRequest.from_event(event, settings=settings, clock=FakeClock())


def session(csrf: str = "s" * 43) -> Session:
    return Session("hash", username="alice", created_at=0, last_seen_at=0, expires_at=1, csrf_token=csrf)


@pytest.mark.parametrize("target", ["/", "/me", "/me?tab=apps", "/apps/prod/launch?RelayState=x"])
def test_same_site_paths_are_accepted_as_next(target: str) -> None:
    assert safe_next_path(target) == target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "evil",
        "javascript:alert(1)",
        "/a\nb",
        "/" + "a" * 600,
        "\\\\evil.example",
        "/https:/evil",
    ],
)
def test_off_site_or_odd_next_targets_are_refused(target: str) -> None:
    with pytest.raises(BadRequest):
        safe_next_path(target)


def test_missing_next_means_the_default_page() -> None:
    assert safe_next_path(None) is None and safe_next_path("") is None


def test_signed_in_form_needs_the_session_csrf_token() -> None:
    assert read_form(request(f"name=bob&csrf_token={'s' * 43}"), session(), FIELDS) == {"name": "bob"}
    for body in ("name=bob", "name=bob&csrf_token=other", "name=bob&csrf_token="):
        with pytest.raises(CsrfFailure):
            read_form(request(body), session(), FIELDS)


def test_csrf_is_checked_before_the_fields() -> None:
    with pytest.raises(CsrfFailure):
        read_form(request("note=toolong"), session(), FIELDS)


def test_login_form_compares_the_hidden_field_with_the_double_submit_cookie() -> None:
    token = "t" * 43
    good = request(f"name=bob&csrf_token={token}", cookie=f"__Host-idp_csrf={token}; other=1")
    assert read_login_form(good, FIELDS)["name"] == "bob"
    with pytest.raises(CsrfFailure):
        read_login_form(request(f"name=bob&csrf_token={token}", cookie="__Host-idp_csrf=" + "u" * 43), FIELDS)
    with pytest.raises(CsrfFailure):
        read_login_form(request(f"name=bob&csrf_token={token}"), FIELDS)


def test_login_csrf_cookie_is_reused_or_created() -> None:
    token, cookies = login_csrf_token(request(cookie="__Host-idp_csrf=" + "t" * 43))
    assert token == "t" * 43 and cookies == []
    token, cookies = login_csrf_token(request())
    assert len(token) >= 43 and cookies == [
        f"__Host-idp_csrf={token}; Path=/; HttpOnly; SameSite=Lax; Secure"
    ]


def test_fields_are_capped_without_truncation_and_required_ones_must_be_there() -> None:
    csrf = f"csrf_token={'s' * 43}"
    with pytest.raises(BadRequest, match=r"Name must be at most 10 characters long\."):
        read_form(request(f"name={'b' * 11}&{csrf}"), session(), FIELDS)
    with pytest.raises(BadRequest, match=r"Name is required\."):
        read_form(request(f"note=hi&{csrf}"), session(), FIELDS)
    assert read_form(request(f"name=bob&unknown=1&{csrf}"), session(), FIELDS) == {"name": "bob"}


def test_body_size_content_type_and_encoding_are_checked_first() -> None:
    with pytest.raises(PayloadTooLarge):
        read_form(request("name=" + "x" * 17000), session(), FIELDS)
    with pytest.raises(PayloadTooLarge):
        read_form(request("name=" + "x" * 17000, base64_body=True), session(), FIELDS)
    with pytest.raises(UnsupportedMediaType):
        read_form(request('{"name": "bob"}', content_type="application/json"), session(), FIELDS)
    with pytest.raises(BadRequest, match="too many fields"):
        read_form(request("&".join(f"f{i}=1" for i in range(40))), session(), FIELDS)
    parsed = read_form(request(f"name=b%C3%B6b&csrf_token={'s' * 43}", base64_body=True), session(), FIELDS)
    assert parsed == {"name": "böb"}


def test_links_carry_the_stage_unless_a_public_base_url_is_set() -> None:
    staged = request()
    assert staged.base_url == "https://abc.execute-api.us-east-1.amazonaws.com/prod"
    assert staged.link("/login", next="/me") == "/prod/login?next=%2Fme"
    custom = request(
        settings=Settings(tables=SETTINGS.tables, signing_key_id="k", public_base_url="https://id.example")
    )
    assert (
        custom.link("/login") == "/login"
        and custom.absolute_url("/saml/metadata") == "https://id.example/saml/metadata"
    )


def test_cookies_are_host_prefixed_and_secure_when_deployed() -> None:
    assert (
        set_cookie(request(), "idp_session", "v")
        == "__Host-idp_session=v; Path=/; HttpOnly; SameSite=Lax; Secure"
    )
    local = Settings(tables=SETTINGS.tables, signing_key_id="k", cookie_secure=False)
    assert (
        set_cookie(request(settings=local), "idp_session", "v")
        == "idp_session=v; Path=/; HttpOnly; SameSite=Lax"
    )


def test_finalize_adds_every_security_header_and_keeps_route_headers() -> None:
    req = request()
    result = {"statusCode": 200, "multiValueHeaders": {"Content-Type": ["text/html"]}, "body": ""}
    headers = finalize(result, req)["multiValueHeaders"]
    assert headers["X-Frame-Options"] == ["DENY"]
    assert headers["Referrer-Policy"] == ["no-referrer"]
    assert headers["Strict-Transport-Security"] == ["max-age=63072000; includeSubDomains"]
    assert headers["X-Content-Type-Options"] == ["nosniff"]
    assert headers["Cache-Control"] == ["no-store"]
    assert headers["Content-Security-Policy"] == [
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ]
    cached = finalize({"statusCode": 200, "headers": {"Cache-Control": "public, max-age=60"}}, req)
    assert cached["multiValueHeaders"]["Cache-Control"] == ["public, max-age=60"]


def test_launch_page_policy_allows_only_its_nonce_and_the_acs_origin() -> None:
    req = request()
    req.allow_nonce_script = True
    req.extra_form_actions.append("https://signin.aws.amazon.com")
    csp = content_security_policy(req)
    assert f"script-src 'nonce-{req.nonce}'" in csp
    assert "form-action 'self' https://signin.aws.amazon.com;" in csp
    assert "unsafe-inline" not in csp
