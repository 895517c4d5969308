"""The sso, otp, adaptive and provisioning functions behind the local gateway, for tests that
drive them over HTTP.

Each stack uses the test's fresh tables and FakeClock; each handler module is imported
once per process (its cold start reads the settings from the environment) and then
re-configured per test. The gateway routes by ``idp_core.routing``, as the deployed API
does. By default the handlers run in this process, one request at a time, so a test may
reach into their modules; with ``workers`` each function runs in a pool of worker
processes as `idp local` runs them, and the workers follow the test's FakeClock.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import requests

from idp_core.clock import FakeClock
from idp_core.config import LockoutPolicy, MessagingConfig, SessionPolicy, Settings, Tables
from idp_local.gateway import LambdaHandler, LocalGateway, build_event
from idp_local.workers import FUNCTIONS, WorkerPool, closing_pools
from tests.support.aws import AWS_ENV

PASSWORD = "correct horse battery staple"
EMAIL_SENDER = "idp@tests.example"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def handler_module(settings: Settings, function: str = "sso") -> ModuleType:
    """A handler module; its first import (the cold start) reads the settings from the environment."""
    saved = {name: os.environ.get(name) for name in settings.to_env()}
    os.environ.update(settings.to_env())
    try:
        return importlib.import_module(f"functions.{function}.handler")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def new_signing_key() -> str:
    return str(
        boto3.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    )


def with_next_signing_key(sso: Sso) -> Sso:
    """``sso`` configured with the deployment's second signing key, which key rotations use."""
    settings = dataclasses.replace(sso.settings, next_signing_key_id=new_signing_key())
    sso.handler.configure(settings, sso.clock)
    return dataclasses.replace(sso, settings=settings)


def new_data_key() -> str:
    """The symmetric key that encrypts TOTP and token secrets."""
    return str(boto3.client("kms").create_key(KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"])


def verify_email_sender(address: str = EMAIL_SENDER) -> None:
    # moto's SES, like SES in its sandbox, sends only from a verified identity.
    boto3.client("ses").verify_email_identity(EmailAddress=address)


@dataclass
class Sso:
    url: str
    settings: Settings
    clock: FakeClock
    handler: ModuleType
    otp_handler: ModuleType
    adaptive_handler: ModuleType
    provisioning_handler: ModuleType
    # The worker pools serving the requests, by function; empty when the handlers run in-process.
    pools: Mapping[str, WorkerPool] = dataclasses.field(default_factory=dict)

    def browser(self) -> requests.Session:
        return requests.Session()

    def get(self, browser: requests.Session, path: str, **kwargs: Any) -> requests.Response:
        return browser.get(self.url + path, allow_redirects=False, timeout=30, **kwargs)

    def post(
        self, browser: requests.Session, path: str, data: Any = None, **kwargs: Any
    ) -> requests.Response:
        return browser.post(self.url + path, data=data, allow_redirects=False, timeout=30, **kwargs)

    def login_form_token(self, browser: requests.Session, query: str = "") -> str:
        page = self.get(browser, "/login" + query)
        assert page.status_code == 200, page.text
        return csrf_token(page.text)

    def sign_in(
        self, browser: requests.Session, username: str, password: str = PASSWORD, **extra: str
    ) -> requests.Response:
        token = self.login_form_token(browser)
        return self.post(
            browser, "/login", {"csrf_token": token, "username": username, "password": password, **extra}
        )

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Call the Lambda handler directly with a hand-made event (bypassing the gateway)."""
        return dict(self.handler.lambda_handler(event, None))


def signed_in(sso: Sso, username: str, password: str = PASSWORD) -> requests.Session:
    """A browser that signed in as ``username`` (a password-only sign-in)."""
    browser = sso.browser()
    answer = sso.sign_in(browser, username, password)
    assert answer.status_code == 303, answer.text[:500]
    return browser


def is_signed_in(sso: Sso, browser: requests.Session) -> bool:
    """Whether ``browser``'s session cookie still opens the user's page."""
    answer = sso.get(browser, "/me")
    assert answer.status_code in (200, 303)
    return answer.status_code == 200


def csrf_token(page: str) -> str:
    match = _CSRF_FIELD.search(page)
    assert match, "the page has no CSRF field"
    return html.unescape(match.group(1))


def event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    stage: str = "prod",
) -> dict[str, Any]:
    items = list({"Host": "abc123.execute-api.us-east-1.amazonaws.com", **(headers or {})}.items())
    return build_event(
        method=method,
        path=path,
        query=query,
        header_items=items,
        body=body,
        source_ip="198.51.100.7",
        stage=stage,
    )


@contextmanager
def running_sso(
    tables: Tables,
    clock: FakeClock,
    *,
    public_base_url: bool = True,
    cookie_secure: bool = False,
    lockout: LockoutPolicy | None = None,
    sessions: SessionPolicy | None = None,
    workers: int = 0,
    next_signing_key: bool = False,
) -> Iterator[Sso]:
    gateway = LocalGateway(lambda event, context: {"statusCode": 503})
    verify_email_sender()
    settings = Settings(
        tables=tables,
        signing_key_id=new_signing_key(),
        data_key_id=new_data_key(),
        public_base_url=gateway.url if public_base_url else None,
        cookie_secure=cookie_secure,
        messaging=MessagingConfig(email_sender=EMAIL_SENDER),
    )
    if next_signing_key:  # The deployment's second key, for key rotations.
        settings = dataclasses.replace(settings, next_signing_key_id=new_signing_key())
    if lockout is not None:
        settings = dataclasses.replace(settings, lockout=lockout)
    if sessions is not None:
        settings = dataclasses.replace(settings, sessions=sessions)
    handler = handler_module(settings)
    handler.configure(settings, clock)
    otp_handler = handler_module(settings, "otp")
    otp_handler.configure(settings, clock)
    adaptive_handler = handler_module(settings, "adaptive")
    adaptive_handler.configure(settings, clock)
    provisioning_handler = handler_module(settings, "provisioning")
    provisioning_handler.configure(settings, clock)
    in_process: dict[str, LambdaHandler] = {
        "sso": handler.lambda_handler,
        "otp": otp_handler.lambda_handler,
        "adaptive": adaptive_handler.lambda_handler,
        "provisioning": provisioning_handler.lambda_handler,
    }
    # The workers get what a deployed function has: the embedded AWS and the settings.
    env = {**{name: os.environ[name] for name in AWS_ENV if name in os.environ}, **settings.to_env()}
    pools = {name: WorkerPool(name, env, size=workers, clock=clock) for name in FUNCTIONS} if workers else {}
    gateway.route_like_the_api(pools or in_process)
    with gateway, closing_pools(pools):
        yield Sso(
            url=gateway.url,
            settings=settings,
            clock=clock,
            handler=handler,
            otp_handler=otp_handler,
            adaptive_handler=adaptive_handler,
            provisioning_handler=provisioning_handler,
            pools=pools,
        )
