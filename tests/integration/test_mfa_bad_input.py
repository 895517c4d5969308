"""Bad input to the second-factor endpoints (S26): a clear 4xx with a sentence, and nothing
written: no counter, no factor, no transaction, no message sent."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from idp_core.models import Factor, RateCounter, Session, Transaction, User
from tests.helpers.mfa import (
    MFA_APP,
    add_user,
    alert,
    give_totp,
    sign_in_with_totp,
    sms_to,
)
from tests.helpers.sso import Sso, csrf_token

pytestmark = pytest.mark.sso_setup("two_apps")


@pytest.fixture
def half_way(sso: Sso) -> tuple[requests.Session, str, str]:
    """Ada after her password for the MFA app: the browser, the page's CSRF token and factor id."""
    add_user("ada", sso.clock)
    give_totp(sso, "ada")
    browser = sso.browser()
    page = sso.sign_in(browser, "ada", app=MFA_APP)
    (factor,) = [f.factor_id for f in Factor.query("ada")]
    return browser, csrf_token(page.text), factor


def stored() -> dict[str, Any]:
    return {
        "users": sorted(str(u.serialize()) for u in User.scan()),
        "factors": sorted(str(f.serialize()) for f in Factor.scan()),
        "sessions": sorted(s.id_hash for s in Session.scan()),
        "transactions": sorted(str(t.serialize()) for t in Transaction.scan()),
        "rate_counters": sorted(str(c.serialize()) for c in RateCounter.scan()),
    }


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("12ab56", 400, "The verification code is the 6-digit number"),
        ("", 400, "Verification code is required."),
        ("1" * 65, 400, "The verification code is too long."),
        ("1" * 1_000_000, 413, "The request is too large"),  # 1 MB, under the gateway's own limit
    ],
)
def test_malformed_codes_are_a_clear_4xx_and_write_nothing(
    sso: Sso, half_way: tuple[requests.Session, str, str], code: str, status: int, message: str
) -> None:
    browser, token, factor = half_way
    before = stored()
    answer = sso.post(
        browser, "/mfa/verify", {"csrf_token": token, "factor": factor, "code": code, "app": MFA_APP}
    )
    assert answer.status_code == status, answer.text[:300]
    assert message in alert(answer.text)
    assert stored() == before


@pytest.mark.parametrize("path", ["/mfa/verify", "/mfa/send"])
def test_an_unknown_factor_id_is_a_clear_400_and_writes_nothing(
    sso: Sso, half_way: tuple[requests.Session, str, str], path: str
) -> None:
    browser, token, _ = half_way
    before = stored()
    answer = sso.post(browser, path, {"csrf_token": token, "factor": "no-such-factor", "code": "123456"})
    assert answer.status_code == 400, answer.text[:300]
    assert "That method is not one you can use here" in alert(answer.text)
    assert stored() == before


def test_a_phone_number_without_its_country_code_is_refused_and_nothing_is_sent(sso: Sso) -> None:
    add_user("bea", sso.clock)
    secret = give_totp(sso, "bea")
    browser = sign_in_with_totp(sso, "bea", secret)  # a fresh second factor, so changes are allowed
    page = sso.get(browser, "/me/mfa/sms/new")
    before = stored()
    answer = sso.post(browser, "/me/mfa/sms", {"csrf_token": csrf_token(page.text), "phone": "020 7946 0958"})
    assert answer.status_code == 400
    assert "country code" in alert(answer.text)
    assert stored() == before
    assert sms_to("+442079460958") == [] and sms_to("+2079460958") == []
