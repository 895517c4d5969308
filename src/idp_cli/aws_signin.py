"""Signing in to the IdP from the terminal for ``idp aws login``: the same /login and /mfa pages
a browser uses, driven over HTTPS with a cookie jar, up to the page that would post the
SAMLResponse to AWS.

Driving the pages (rather than a separate API for the CLI) keeps one sign-in path: the same
lockout, second-factor and adaptive rules, the same audit events, nothing new to attack. The
CLI only reads what the pages show; it never sees a secret other than the ones the user types.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from idp_core.saml.aws import LOOPBACK_HOSTS

# The adaptive policies' device cookie (idp_core.adaptive.devices.DEVICE_COOKIE; that module
# loads the data models, which this client never uses).
DEVICE_COOKIE = "idp_device"

# The pages are small; anything larger is not the IdP answering.
MAX_PAGE_BYTES = 512 * 1024
TIMEOUT_SECONDS = 30
# A challenge that sends its code (SMS, e-mail) is one more page; more steps than this is a loop.
MAX_STEPS = 6
LOCAL_ACS_PATH = "/_local/aws/saml"
USER_AGENT = "idp-cli (idp aws login)"
# AWS's SAML sign-in endpoints (the global one, regional ones, and the other partitions): the only
# places a SAMLResponse for AWS is ever meant for.
AWS_SIGNIN_HOSTS = ("signin.aws.amazon.com", "signin.amazonaws-us-gov.com", "signin.amazonaws.cn")


class SignInRefused(Exception):
    """The IdP refused the sign-in (a wrong password or code, a locked account, no role): the
    message is the page's own sentence."""


class SignInImpossible(Exception):
    """The sign-in cannot finish from the terminal (a security key, enrolment first, a page the
    CLI does not know); the message says what to do instead."""


@dataclass(frozen=True)
class Form:
    action: str
    # The values a browser would send as they stand: hidden fields and pre-filled inputs.
    values: dict[str, str]
    names: frozenset[str]
    # A security key's form: its answer comes from the browser's WebAuthn API only.
    webauthn: bool = False


@dataclass(frozen=True)
class Page:
    url: str
    status: int
    forms: tuple[Form, ...]
    alerts: tuple[str, ...]

    def form_with(self, name: str) -> Form | None:
        return next((form for form in self.forms if name in form.names and not form.webauthn), None)

    def form_to(self, path_end: str) -> Form | None:
        return next((form for form in self.forms if urlsplit(form.action).path.endswith(path_end)), None)

    def message(self) -> str:
        return " ".join(self.alerts) or f"the IdP answered {self.status} at {self.url}"


class _PageParser(HTMLParser):
    """The forms and the alert sentences of a page (html.parser: the pages are the IdP's own,
    plain and well-formed; a full HTML library would add nothing the CLI reads)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.alerts: list[str] = []
        self._action: str | None = None
        self._values: dict[str, str] = {}
        self._names: set[str] = set()
        self._webauthn = False
        self._alert_depth = 0
        self._alert_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._action = attributes.get("action", "")
            self._values, self._names = {}, set()
            self._webauthn = "data-webauthn" in attributes
        elif tag == "input" and self._action is not None and attributes.get("name"):
            self._add_input(attributes)
        if self._alert_depth:
            self._alert_depth += 1
        elif attributes.get("role") == "alert" and "hidden" not in attributes:
            self._alert_depth = 1
            self._alert_text = []

    def _add_input(self, attributes: Mapping[str, str]) -> None:
        self._names.add(attributes["name"])
        # Unchecked boxes and secret fields are sent only when the CLI fills them.
        if attributes.get("type", "text") in ("checkbox", "radio", "password"):
            return
        if attributes.get("value"):
            self._values[attributes["name"]] = attributes["value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._action is not None:
            self.forms.append(Form(self._action, self._values, frozenset(self._names), self._webauthn))
            self._action = None
        if self._alert_depth:
            self._alert_depth -= 1
            text = " ".join("".join(self._alert_text).split())
            if not self._alert_depth and text:
                self.alerts.append(text)

    def handle_data(self, data: str) -> None:
        if self._alert_depth:
            self._alert_text.append(data)


def parse_page(url: str, status: int, html: str) -> Page:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return Page(url, status, tuple(parser.forms), tuple(parser.alerts))


class Browser:
    """A cookie jar and the pages of one IdP; forms are posted only to the IdP's own origin."""

    def __init__(self, base_url: str, user_agent: str = USER_AGENT) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"The IdP URL {base_url!r} is not an http(s) URL.")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            # The password would cross the network in clear text.
            raise ValueError(f"The IdP URL {base_url!r} must use https (http only for a local stack).")
        self.base_url = base_url.rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        # The IdP names the device after the client (its list of devices, new sign-in notices).
        self._opener.addheaders = [("User-Agent", user_agent)]

    def get(self, path: str, query: Mapping[str, str]) -> Page:
        url = f"{self.base_url}{path}?{urlencode(query)}"
        return self._open(urllib.request.Request(url))  # noqa: S310 - the scheme is http(s), checked above.

    def submit(self, page: Page, form: Form, values: Mapping[str, str]) -> Page:
        action = urljoin(page.url, form.action)
        if origin_of(action) != self.origin:
            raise SignInImpossible(
                f"The IdP's page posts to {action}, which is not the IdP; nothing was sent."
            )
        body = urlencode({**form.values, **values}).encode("utf-8")
        # The action has the IdP's origin, checked above: http(s) only.
        return self._open(urllib.request.Request(action, data=body, method="POST"))  # noqa: S310

    def post_json(self, path: str, values: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """A form post to one of the IdP's endpoints for programs (the browser hand-off's), and
        its JSON answer with its status: a refusal is JSON too (OAuth's error and description)."""
        body = urlencode(values).encode("utf-8")
        # The base URL is http(s), checked when the browser was made.
        request = urllib.request.Request(f"{self.base_url}{path}", data=body, method="POST")  # noqa: S310
        _, status, text = self._exchange(request)
        try:
            document = json.loads(text[:MAX_PAGE_BYTES])
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise SignInImpossible(f"The IdP answered {status} at {path} with something other than JSON.")
        return status, document

    def _open(self, request: urllib.request.Request) -> Page:
        return self._page(*self._exchange(request))

    def _exchange(self, request: urllib.request.Request) -> tuple[str, int, bytes]:
        """The answer's URL, status and body (at most one byte beyond the cap)."""
        try:
            with self._opener.open(request, timeout=TIMEOUT_SECONDS) as answer:
                return answer.geturl(), answer.status, answer.read(MAX_PAGE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            # A refusal is a page too (the sign-in form again, or the error page), with its sentence.
            with exc:
                return exc.geturl() or request.full_url, exc.code, exc.read(MAX_PAGE_BYTES + 1)
        except (urllib.error.URLError, OSError) as exc:
            raise SignInImpossible(f"Cannot reach the IdP at {self.base_url}: {exc}") from exc

    def _page(self, url: str, status: int, body: bytes) -> Page:
        if len(body) > MAX_PAGE_BYTES:
            raise SignInImpossible(f"The IdP's page at {url} is larger than {MAX_PAGE_BYTES} bytes.")
        return parse_page(url, status, body.decode("utf-8", errors="replace"))

    def device_cookies(self) -> list[dict[str, object]]:
        """The IdP's device cookies (``idp_device``, ``__Host-idp_device``), to keep for the next
        sign-in: the terminal is then one device to the adaptive policies, not a new one each time."""
        return [
            {
                "name": cookie.name,
                "value": cookie.value,
                "domain": cookie.domain,
                "path": cookie.path,
                "secure": cookie.secure,
                "expires": cookie.expires,
            }
            for cookie in self.jar
            if cookie.name.removeprefix("__Host-") == DEVICE_COOKIE
        ]

    def keep_device_cookies(self, saved: Sequence[Mapping[str, object]]) -> None:
        for item in saved:
            if str(item.get("name", "")).removeprefix("__Host-") != DEVICE_COOKIE:
                continue
            self.jar.set_cookie(_cookie(item))


def _cookie(item: Mapping[str, object]) -> http.cookiejar.Cookie:
    domain, path = str(item["domain"]), str(item["path"])
    expires = item.get("expires")
    return http.cookiejar.Cookie(
        version=0,
        name=str(item["name"]),
        value=str(item["value"]),
        port=None,
        port_specified=False,
        domain=domain,
        domain_specified=False,
        domain_initial_dot=False,
        path=path,
        path_specified=True,
        secure=bool(item.get("secure")),
        expires=int(expires) if isinstance(expires, int | float) else None,
        discard=False,
        comment=None,
        comment_url=None,
        rest={"HttpOnly": ""},
    )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def is_aws_acs(url: str, idp_url: str) -> bool:
    """Whether ``url`` is AWS's SAML sign-in endpoint (or, for an IdP on this machine, the local
    stack's stand-in for it): the only place an assertion the CLI hands to STS may be meant for."""
    parts = urlsplit(url)
    if parts.username or parts.password or parts.query or parts.fragment:
        return False
    local = urlsplit(idp_url)
    if local.hostname in LOOPBACK_HOSTS and parts.scheme == "http":
        return parts.netloc == local.netloc and parts.path == LOCAL_ACS_PATH
    host = (parts.hostname or "").lower()
    return (
        parts.scheme == "https"
        and parts.port is None
        and parts.path == "/saml"
        and any(host == known or host.endswith("." + known) for known in AWS_SIGNIN_HOSTS)
    )


@dataclass(frozen=True)
class Prompts:
    """What the sign-in asks the user; the password and the code never pass through argv."""

    username: Callable[[], str]
    password: Callable[[], str]
    code: Callable[[], str]


@dataclass(frozen=True)
class Posted:
    """The SAMLResponse the IdP's page would post, and where to."""

    acs_url: str
    saml_response_b64: str


def sign_in(browser: Browser, app: str, prompts: Prompts) -> Posted:
    """Sign in for ``app`` with the user's password and, when asked, a second factor's code;
    return the SAMLResponse the last page would post to the app's ACS."""
    page = browser.get("/login", {"app": app})
    form = page.form_with("password")
    if form is None:
        raise SignInImpossible(f"{page.url} shows no sign-in form ({page.message()}).")
    page = browser.submit(page, form, {"username": prompts.username(), "password": prompts.password()})
    if page.form_with("password") is not None:
        raise SignInRefused(page.message())
    sent = False
    for _ in range(MAX_STEPS):
        posted = _posted(page)
        if posted is not None:
            return posted
        send_form = page.form_to("/send")
        if send_form is not None and not sent:
            # A factor that sends its code (e-mail, SMS) shows the code field before the code
            # is sent: send it once, as the user would press "Send code", then ask for it.
            page, sent = browser.submit(page, send_form, {}), True
            continue
        page = _next_step(browser, page, prompts)
    raise SignInImpossible(f"The sign-in did not finish after {MAX_STEPS} pages; use the browser.")


def sign_out(browser: Browser) -> bool:
    """End the session the sign-in opened (its cookie dies with this process anyway; signing
    out ends it on the server too, with its audit event). False when the IdP did not."""
    page = browser.get("/me", {})
    form = page.form_to("/logout")
    if form is None:
        return False
    return browser.submit(page, form, {}).form_to("/logout") is None


def _posted(page: Page) -> Posted | None:
    form = page.form_with("SAMLResponse")
    if form is None or not form.values.get("SAMLResponse"):
        return None
    return Posted(urljoin(page.url, form.action), form.values["SAMLResponse"])


def _next_step(browser: Browser, page: Page, prompts: Prompts) -> Page:
    """One more page towards the SAMLResponse: the second factor's code typed in."""
    path = urlsplit(page.url).path
    if path.endswith("/me/mfa"):
        raise SignInImpossible(
            "This app needs a second factor and you have none yet: set one up in the browser at "
            f"{browser.base_url}/me/mfa, then run this again."
        )
    code_form = page.form_with("code")
    if code_form is not None:
        answer = browser.submit(page, code_form, {"code": prompts.code()})
        if answer.form_with("code") is not None and answer.alerts:
            raise SignInRefused(answer.message())
        return answer
    if any(form.webauthn for form in page.forms):
        raise SignInImpossible(
            "This sign-in asks for a security key or passkey, which only a browser can use; "
            "run the command again with --browser to sign in there."
        )
    if page.alerts or page.status >= 400:  # noqa: PLR2004 - HTTP's client and server errors.
        raise SignInRefused(page.message())
    raise SignInImpossible(f"The IdP showed a page the CLI does not know ({page.url}); use the browser.")
