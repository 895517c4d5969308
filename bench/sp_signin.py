"""SP-initiated sign-in through the local gateway against moto: a service provider (pysaml2)
sends a signed AuthnRequest by HTTP-Redirect, the user signs in with a password, and the
IdP answers with the signed Response, 100 times (BENCH_SP_SIGN_INS).

Each sign-in is what a browser does: GET /saml/sso (answered with a redirect to the sign-in
page), GET /login, POST /login (answered with the page that posts the Response). Reports the
AWS requests per sign-in by service and by step (exact counts), against BENCHMARKS.md's target
for an SP-initiated sign-in."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests
from saml2 import BINDING_HTTP_REDIRECT

from bench.common import verdict
from idp_core import accounts, saml_apps
from idp_core.clock import SYSTEM_CLOCK
from idp_core.saml.sp_metadata import parse_sp_metadata
from idp_local.request_count import RequestCounter
from tests.helpers.mfa import password_only
from tests.helpers.saml_sp import PySaml2Sp, key_pair, posted_form
from tests.helpers.sso import PASSWORD, csrf_token, running_sso
from tests.support.aws import fresh_tables, moto_server

SIGN_INS = int(os.environ.get("BENCH_SP_SIGN_INS", "100"))
TARGETS = {"dynamodb": 9, "kms": 2}
STEPS = ("GET /saml/sso", "GET /login", "POST /login")
APP = "bench-sp"
PERSISTENT = saml_apps.NAMEID_FORMATS["persistent"]


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _sign_in_once(
    url: str, sp: PySaml2Sp, username: str, counter: RequestCounter
) -> Counter[tuple[str, str, str]]:
    """One browser's SP-initiated sign-in; the AWS requests by (step, service, operation)."""
    browser = requests.Session()
    request_id, location = sp.request(BINDING_HTTP_REDIRECT, relay_state="bench")
    counts: Counter[tuple[str, str, str]] = Counter()

    def step(name: str, response: requests.Response) -> requests.Response:
        counts.update(
            {(name, service, operation): n for (service, operation), n in counter.snapshot().items()}
        )
        counter.reset()
        return response

    if not isinstance(location, str):
        raise TypeError("a Redirect-binding request is a URL")
    counter.reset()
    to_login = step(STEPS[0], browser.get(url + _path(location), allow_redirects=False, timeout=30))
    login_path = _path(to_login.headers["Location"])
    token = csrf_token(step(STEPS[1], browser.get(url + login_path, timeout=30)).text)
    next_page = unquote(login_path.split("next=", 1)[1])
    page = step(
        STEPS[2],
        browser.post(
            url + "/login",
            data={"csrf_token": token, "username": username, "password": PASSWORD, "next": next_page},
            allow_redirects=False,
            timeout=30,
        ),
    )
    response = sp.accept(posted_form(page.text).fields["SAMLResponse"], request_id)
    if response.in_response_to != request_id:
        raise RuntimeError("the SP did not accept the Response to its request")
    return counts


def run() -> dict:
    counter = RequestCounter()
    with moto_server(counter), tempfile.TemporaryDirectory() as folder:
        tables = fresh_tables()
        accounts.create_group("bench")
        with running_sso(tables, SYSTEM_CLOCK) as sso:  # type: ignore[arg-type]
            idp_metadata = requests.get(sso.url + "/saml/metadata", timeout=30).text
            sp = PySaml2Sp(
                idp_metadata, key_pair(Path(folder)), sign_requests=True, name_id_format=PERSISTENT
            )
            settings = saml_apps.SamlAppSettings(
                sp=parse_sp_metadata(sp.metadata()),
                attributes=[("email", "email"), ("groups", "groups")],
                mfa_required=False,
            )
            saml_apps.create_saml_app(APP, settings)
            password_only(SYSTEM_CLOCK)  # type: ignore[arg-type]
            names = [f"sp{i}" for i in range(SIGN_INS + 1)]
            for name in names:
                accounts.create_user(
                    accounts.NewUser(name, password=PASSWORD, email=f"{name}@example.com", groups=["bench"])
                )
            _sign_in_once(sso.url, sp, names[0], counter)  # warm: certificate and the SP's app cached
            totals: Counter[tuple[str, str, str]] = Counter()
            for name in names[1:]:
                totals.update(_sign_in_once(sso.url, sp, name, counter))
    per_service: Counter[str] = Counter()
    per_step: Counter[str] = Counter()
    for (step, service, _), count in totals.items():
        per_service[service] += count
        if service == "dynamodb":
            per_step[step] += count
    per_sign_in = {service: count / SIGN_INS for service, count in sorted(per_service.items())}
    rows = [
        (
            f"{service} requests per SP-initiated sign-in",
            f"{mean:.2f}",
            f"<= {TARGETS.get(service, 0)}",
            verdict(mean <= TARGETS.get(service, 0)),
        )
        for service, mean in per_sign_in.items()
    ]
    by_operation: Counter[str] = Counter()
    for (_, service, operation), count in totals.items():
        by_operation[f"{service}:{operation}"] += count
    figures = {
        "requests per sign-in": per_sign_in,
        "requests per sign-in by operation": {
            key: round(c / SIGN_INS, 2) for key, c in sorted(by_operation.items())
        },
        "dynamodb requests per step": {step: per_step[step] / SIGN_INS for step in STEPS},
        "sign-ins": SIGN_INS,
    }
    return {"figures": figures, "rows": rows}
