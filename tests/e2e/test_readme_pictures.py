"""The README's pictures of the sign-in page, the challenge, /me, /me/mfa and two console pages,
taken in Chromium along real journeys (issue 12 point 8), so a change to a page changes its
picture. Each picture is taken only once its page shows what the README says it shows, and a
file is rewritten only when the picture changed."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from idp_local.process import LocalStackProcess
from tests.e2e import pictures
from tests.e2e.conftest import REPO, LocalIdp
from tests.e2e.pictures import RENDERING_NOISE, capture, largest_difference, picture_context
from tests.e2e.steps import enrol_authenticator, expect_signed_in_to_aws, sign_out, submit_password

# Users beside the demo ones, so the console's user list looks like a company's.
MORE_USERS = (
    ("bob", "Bob Builder", "bob@example.com", "engineers"),
    ("carol", "Carol Auditor", "carol@example.com", "auditors"),
)
DISABLED_USER = "carol"
# A PNG picture with the red channel of its first pixel moved by DELTA (clamped to 0-255).
_SHIFT_ONE_PIXEL = """async ([base64, delta]) => {
    const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const drawing = canvas.getContext("2d");
    drawing.drawImage(bitmap, 0, 0);
    const pixels = drawing.getImageData(0, 0, bitmap.width, bitmap.height);
    pixels.data[0] = Math.min(255, Math.max(0, pixels.data[0] + delta));
    drawing.putImageData(pixels, 0, 0);
    const blob = await canvas.convertToBlob({ type: "image/png" });
    const shifted = new Uint8Array(await blob.arrayBuffer());
    return btoa(Array.from(shifted, (byte) => String.fromCharCode(byte)).join(""));
}"""


@pytest.fixture(scope="module")
def local_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdp]:
    """A local stack of this module's own (it replaces the shared one here): the other browser
    tests add users to theirs, and the pictures must not depend on which of them ran first."""
    process = LocalStackProcess(tmp_path_factory.mktemp("pictures") / "state", cwd=REPO)
    state = process.start()
    local = LocalIdp(base_url=state.base_url, user=state.user, admin=state.admin, process=process)
    try:
        added = local.idp("group", "add", "auditors")
        assert added.returncode == 0, added.stderr
        for username, display_name, email, group in MORE_USERS:
            added = local.idp(
                "user", "add", username, "--display-name", display_name, "--email", email, "--group", group
            )
            assert added.returncode == 0, added.stderr
        disabled = local.idp("user", "disable", DISABLED_USER)
        assert disabled.returncode == 0, disabled.stderr
        yield local
    finally:
        process.stop()


@pytest.fixture
def picture_page(browser: Browser) -> Iterator[Page]:
    context = picture_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_pictures_of_the_sign_in_page_the_challenge_me_and_me_mfa(
    picture_page: Page, local_idp: LocalIdp
) -> None:
    page, base, user = picture_page, local_idp.base_url, local_idp.user
    state = local_idp.process.state
    assert state is not None

    page.goto(f"{base}/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_empty()
    expect(page.get_by_label("Password")).to_be_empty()
    capture(page, "sign-in.png")

    submit_password(page, user.username, user.password)
    authenticator = enrol_authenticator(page, base)
    page.goto(f"{base}/me/mfa")
    page.get_by_role("button", name="Backup codes").click()
    expect(page.get_by_role("list", name="Backup codes").locator("code")).to_have_count(10)
    page.get_by_role("link", name=re.compile("^(Continue|Done)$")).click()

    page.goto(f"{base}/me")
    expect(page.get_by_role("heading", name="My apps")).to_be_visible()
    expect(page.get_by_role("link", name="AWS console (demo account)")).to_be_visible()
    capture(page, "me.png")

    page.goto(f"{base}/me/mfa")
    expect(page.get_by_role("heading", name="Two-factor authentication (2FA)")).to_be_visible()
    expect(page.get_by_role("cell", name="Active", exact=True)).to_have_count(2)
    capture(page, "me-mfa.png")

    sign_out(page, base)
    page.goto(f"{base}/apps/{state.demo_app}/launch")
    submit_password(page, user.username, user.password)
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/mfa"))
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    expect(page.get_by_label("Verification code")).to_be_empty()
    capture(page, "challenge.png")
    # The challenge pictured is a working one: its code signs in to the demo app. The
    # enrolment spent the current time step (S6); the server accepts one step ahead.
    page.get_by_label("Verification code").fill(authenticator.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect_signed_in_to_aws(page, base, user.username)


def test_pictures_of_the_console_user_list_and_2fa_settings(picture_page: Page, local_idp: LocalIdp) -> None:
    page, base, admin = picture_page, local_idp.base_url, local_idp.admin
    page.goto(f"{base}/login")
    submit_password(page, admin.username, admin.password)
    enrol_authenticator(page, base)  # an admin without a second factor does not reach the console

    page.goto(f"{base}/admin/users")
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    users = page.get_by_role("table", name="All users")
    for username in (admin.username, local_idp.user.username, *(user[0] for user in MORE_USERS)):
        expect(users.get_by_role("link", name=username, exact=True)).to_be_visible()
    capture(page, "console-users.png")

    # The menu leads to the signing key's page, which only shows (no form switches keys).
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Signing key").click()
    expect(page.get_by_role("heading", name="The key that signs now")).to_be_visible()
    expect(page.get_by_text("No rotation under way.")).to_be_visible()
    expect(page.get_by_role("main").locator("form")).to_have_count(0)

    page.goto(f"{base}/admin/mfa")
    expect(page.get_by_role("heading", name="2FA options for end users")).to_be_visible()
    expect(page.get_by_role("group", name="Methods users can set up")).to_be_visible()
    expect(page.get_by_label("Default method")).to_be_visible()
    capture(page, "console-2fa.png")


def shifted(page: Page, png: bytes, delta: int) -> bytes:
    encoded = page.evaluate(_SHIFT_ONE_PIXEL, [base64.b64encode(png).decode("ascii"), delta])
    return base64.b64decode(encoded)


def test_a_picture_is_rewritten_when_the_page_changes_and_kept_when_only_rendering_noise_differs(
    picture_page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pictures, "IMAGES", tmp_path)
    page = picture_page
    page.set_content("<h1>A page</h1><p>Its picture, taken twice.</p>")
    with pytest.warns(pictures.PictureChanged):
        taken = capture(page, "page.png").read_bytes()

    noisy = shifted(page, taken, -RENDERING_NOISE)
    assert noisy != taken and largest_difference(page.context, taken, noisy) == RENDERING_NOISE
    (tmp_path / "page.png").write_bytes(noisy)
    capture(page, "page.png")
    assert (tmp_path / "page.png").read_bytes() == noisy  # the same picture: the file is left alone

    stale = shifted(page, taken, -100)
    assert largest_difference(page.context, taken, stale) == 100
    (tmp_path / "page.png").write_bytes(stale)
    with pytest.warns(pictures.PictureChanged, match="changed: commit it with the page"):
        capture(page, "page.png")
    assert (tmp_path / "page.png").read_bytes() == taken
