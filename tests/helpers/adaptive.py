"""Steps for the adaptive-authentication tests: browsers that connect from a chosen loopback
address (the gateway takes the client address from the socket, as API Gateway does),
policies given to apps, and what the sign-in answered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from idp_core.adaptive import devices, policies
from idp_core.clock import FakeClock
from idp_core.mfa import policy
from idp_core.models import AuditEvent, User
from idp_core.scope import Browser
from idp_local.gateway import LocalGateway
from tests.helpers.scope import scope_at
from tests.helpers.sso import Sso

_REFERENCE = re.compile(r"this reference: ([0-9A-F]{8})\.")


class _FromAddress(HTTPAdapter):
    """Connects from ``source`` (any 127.0.0.0/8 address is local on Linux)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def browser_at(source_ip: str) -> requests.Session:
    """A browser (its own cookie jar) whose connections come from ``source_ip``."""
    browser = requests.Session()
    browser.mount("http://", _FromAddress(source_ip))
    return browser


def give_policy(app: str, clock: FakeClock, name: str = "office", **fields: Any) -> policies.AdaptivePolicy:
    """Create the adaptive policy ``name`` and make ``app`` use it."""
    saved = policies.save_policy(policies.AdaptivePolicy(name=name, **fields), create=True, clock=clock)
    policy.set_app_policy(app, adaptive=name, clock=clock)
    return saved


def reference_on(page: str) -> str:
    match = _REFERENCE.search(page)
    assert match, f"the page shows no reference: {page[:800]}"
    return match.group(1)


def decisions(outcome: str | None = None) -> list[AuditEvent]:
    """The adaptive.decision audit events (any day), oldest first."""
    events = [event for event in AuditEvent.scan() if event.type == "adaptive.decision"]
    return sorted(
        (event for event in events if outcome is None or event.outcome == outcome), key=lambda e: float(e.at)
    )


def is_saml_post(response: requests.Response) -> bool:
    return response.status_code == 200 and 'name="SAMLResponse"' in response.text


def launch_from_login(sso: Sso, browser: requests.Session, signed_in: requests.Response) -> requests.Response:
    """The launch a sign-in for an app without a second factor owed answers with: the page that
    posts the SAMLResponse itself (or the page that refuses it)."""
    assert signed_in.status_code != 303 or "/launch" not in signed_in.headers.get("Location", ""), (
        "the sign-in redirected to the launch instead of answering with it"
    )
    return signed_in


@contextmanager
def ipv6_gateway(sso: Sso) -> Iterator[str]:
    """The same functions on [::1], for sign-ins from the IPv6 loopback address; yields its URL."""
    gateway = LocalGateway(lambda event, context: {"statusCode": 503}, host="::1")
    gateway.route_like_the_api(
        {
            "sso": sso.handler.lambda_handler,
            "otp": sso.otp_handler.lambda_handler,
            "adaptive": sso.adaptive_handler.lambda_handler,
            "provisioning": sso.provisioning_handler.lambda_handler,
        }
    )
    with gateway:
        yield gateway.url


def trusted_device(username: str, clock: FakeClock) -> devices.Device:
    """A device ``username`` registered and trusted for 30 days, as if after a sign-in."""
    registration = devices.register(
        User.get(username),
        scope_at(clock, browser=Browser("198.51.100.7", "Firefox/1")),
        max_devices=5,
        trust_days=30,
    )
    return registration.device
