"""Browser tests: real Chromium (Debian's, via Playwright) against `idp local` in a child process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from idp_local.process import LocalStackProcess
from idp_local.state import DemoAccount

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass(frozen=True)
class LocalIdp:
    """The running local stack as a test sees it."""

    base_url: str
    user: DemoAccount
    admin: DemoAccount
    process: LocalStackProcess

    def idp(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `idp --local ...` against this stack, as an admin would from a terminal."""
        return self.process.idp("--local", *args, stdin=stdin)

    def restart_functions(self) -> None:
        """New execution environments for every function, as after a deployment. Each worker
        keeps settings it read (directories, MFA settings, adaptive policies) for 30 seconds,
        as a warm Lambda does; a test that changed them starts afresh instead of waiting."""
        requests.post(f"{self.base_url}/_local/restart", timeout=30).raise_for_status()


@pytest.fixture(scope="session")
def local_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdp]:
    process = LocalStackProcess(tmp_path_factory.mktemp("e2e") / "state", cwd=REPO)
    state = process.start()
    try:
        yield LocalIdp(base_url=state.base_url, user=state.user, admin=state.admin, process=process)
    finally:
        process.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    local = getattr(item, "funcargs", {}).get("local_idp")
    if report.when == "call" and report.failed and isinstance(local, LocalIdp):
        # The server side of a failed browser test is in the stack's log, not in the page.
        report.sections.append(("idp local log (tail)", local.process.log()[-6000:]))


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test: no cookies carried from one test to the next."""
    fresh = browser.new_context()
    fresh.set_default_timeout(15_000)
    try:
        yield fresh
    finally:
        fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
