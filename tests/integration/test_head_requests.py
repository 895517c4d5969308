"""HEAD is answered like GET without a body (issue 12): API Gateway's ANY methods pass HEAD
to the functions as it is, and Powertools' resolver routes GET only, so without this a HEAD
of any page was a 404."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.sso import Sso, event


def _header_names(response: dict[str, Any]) -> set[str]:
    return {name.lower() for name in response.get("multiValueHeaders") or {}}


@pytest.mark.parametrize("path", ["/login", "/saml/metadata", "/no-such-page"])
def test_head_answers_what_get_answers_without_the_body(sso: Sso, path: str) -> None:
    got = sso.invoke(event("GET", path))
    head = sso.invoke(event("HEAD", path))

    assert head["statusCode"] == got["statusCode"]
    assert got["body"], "the GET has a body, so an empty HEAD body is the point"
    assert head["body"] == ""
    assert _header_names(head) == _header_names(got)
    for name in ("Content-Type", "Content-Security-Policy", "Strict-Transport-Security", "Cache-Control"):
        assert head["multiValueHeaders"][name] == got["multiValueHeaders"][name]


def test_head_of_a_protected_page_redirects_like_get(sso: Sso) -> None:
    head = sso.invoke(event("HEAD", "/me"))

    assert head["statusCode"] == sso.invoke(event("GET", "/me"))["statusCode"] == 303
    assert head["multiValueHeaders"]["Location"][0].endswith("/login?next=%2Fme")
    assert head["body"] == ""


def test_attack_head_cannot_reach_a_post_only_route(sso: Sso) -> None:
    """HEAD takes GET's routes, never POST's: a HEAD to the sign-in form's target changes
    nothing and checks no credential."""
    head = sso.invoke(event("HEAD", "/logout"))
    get = sso.invoke(event("GET", "/logout"))

    assert head["statusCode"] == get["statusCode"]
    assert head["body"] == ""
