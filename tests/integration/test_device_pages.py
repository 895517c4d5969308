"""The devices pages over HTTP: a user's own list (/me/devices) with rename, remove and
"stop trusting", and the admin's view of any user's devices (/admin/devices/<user>) with the
unlock of the account lockout. Checks who may touch which device (404 for another user's),
CSRF (S16), clear refusals that change nothing (S26) and the audit actor (S25)."""

from __future__ import annotations

from typing import Any

import lxml.html
import pytest
import requests

from idp_core import accounts
from idp_core.adaptive import devices
from idp_core.clock import FakeClock, readable_utc
from idp_core.models import AuditEvent, Device, User
from idp_core.scope import Browser
from tests.helpers.console import submit, text_of
from tests.helpers.mfa import signed_in_admin
from tests.helpers.scope import scope_at
from tests.helpers.sso import PASSWORD, Sso, csrf_token

CHROME_ON_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)
FIREFOX_ON_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
# The value a browser keeps in its device cookie (``devices.usable_token`` accepts it).
BROWSER_TOKEN = "b" * 43
TRUST_DAYS = 30


# The users here have no second factor and are not made to enrol; the admin has one.
pytestmark = pytest.mark.sso_setup("password_only")


def register(
    username: str,
    clock: FakeClock,
    *,
    token: str | None = None,
    user_agent: str = CHROME_ON_LINUX,
    trust_days: int = 0,
) -> Device:
    registration = devices.register(
        accounts.get_user(username),
        scope_at(clock, browser=Browser("127.0.0.9", user_agent, token)),
        max_devices=5,
        trust_days=trust_days,
    )
    return registration.device


def signed_in(sso: Sso, username: str, *, device_token: str | None = None) -> requests.Session:
    browser = sso.browser()
    if device_token is not None:
        # The local stack is plain http, so the cookie has no __Host- prefix.
        browser.cookies.set(devices.DEVICE_COOKIE, device_token)
    assert sso.sign_in(browser, username).status_code == 303
    return browser


def root_signed_in(sso: Sso) -> requests.Session:
    """root, stored as an administrator now, signed in and stepped up: the console wants both."""
    accounts.create_user(accounts.NewUser("root", password=PASSWORD, is_admin=True), clock=sso.clock)
    return signed_in_admin(sso)


def rows(response: requests.Response) -> dict[str, str]:
    """The devices table: the text of each row by the device id of its forms."""
    document = lxml.html.fromstring(response.text)
    found = {}
    for row in document.xpath("//table/tbody/tr"):
        (action,) = row.xpath(".//form[contains(@action, '/rename')]/@action")
        found[action.rsplit("/", 2)[-2]] = " ".join(row.text_content().split())
    return found


def device_state() -> list[dict[str, Any]]:
    """Every device and count, to show that a refused request changed nothing."""
    return sorted(
        [d.serialize() for d in Device.scan()] + [{u.username: u.device_count} for u in User.scan()],
        key=str,
    )


def device_events() -> list[AuditEvent]:
    return [event for event in AuditEvent.scan() if event.type.startswith("device.")]


# ---------------------------------------------------------------- the user's own list


def test_the_list_shows_each_device_with_its_trust_and_marks_this_browser(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    this = register("amy", sso.clock, token=BROWSER_TOKEN, trust_days=TRUST_DAYS)
    sso.clock.advance(3600)
    other = register("amy", sso.clock, user_agent=FIREFOX_ON_WINDOWS)
    browser = signed_in(sso, "amy", device_token=BROWSER_TOKEN)

    page = sso.get(browser, "/me/devices")

    assert page.status_code == 200
    listed = rows(page)
    assert set(listed) == {this.device_id, other.device_id}
    trusted_until = readable_utc(float(this.first_seen_at) + TRUST_DAYS * 86400)
    assert "Chrome on Linux (This device)" in listed[this.device_id]
    assert f"Trusted until {trusted_until}" in listed[this.device_id]
    assert "127.0.0.9" in listed[this.device_id]
    assert readable_utc(float(this.first_seen_at)) in listed[this.device_id]
    assert "Firefox on Windows" in listed[other.device_id]
    assert "This device" not in listed[other.device_id]
    assert "Not trusted" in listed[other.device_id]
    # The newest sign-in first.
    assert list(listed) == [other.device_id, this.device_id]


def test_a_user_without_devices_is_told_how_one_is_registered(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    page = sso.get(signed_in(sso, "amy"), "/me/devices")
    assert page.status_code == 200
    assert (
        "No devices are registered for your account. A device is registered when you sign in to an app "
        "whose policy registers devices."
    ) in page.text
    assert "<table" not in page.text


def test_my_apps_links_to_the_devices_page(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    assert 'href="/me/devices"' in sso.get(signed_in(sso, "amy"), "/me").text


def test_a_signed_out_visitor_is_sent_to_sign_in_and_back(sso: Sso) -> None:
    response = sso.get(sso.browser(), "/me/devices")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=%2Fme%2Fdevices"


def test_the_user_renames_a_device(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    device = register("amy", sso.clock)
    browser = signed_in(sso, "amy")

    renamed = submit(
        sso,
        browser,
        f"/me/devices/{device.device_id}/rename",
        {"name": "  Work   laptop "},
        page="/me/devices",
    )

    assert renamed.status_code == 303
    assert renamed.headers["Location"] == "/me/devices?notice=renamed"
    assert Device.get("amy", device.key_hash).name == "Work laptop"
    listing = sso.get(browser, renamed.headers["Location"])
    assert "The device was renamed." in listing.text
    assert rows(listing)[device.device_id].startswith("Work laptop")
    (event,) = [e for e in device_events() if e.type == "device.renamed"]
    assert event.actor == "amy" and event.subject == "amy"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the device a name."),
        ("   ", "Give the device a name."),
        ("x" * 100, "A device name is at most 64 printable characters."),
    ],
)
def test_a_blank_or_too_long_name_is_refused_and_changes_nothing(sso: Sso, name: str, message: str) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    device = register("amy", sso.clock)
    browser = signed_in(sso, "amy")
    before = device_state()

    refused = submit(
        sso, browser, f"/me/devices/{device.device_id}/rename", {"name": name}, page="/me/devices"
    )

    assert refused.status_code == 400
    assert message in text_of(refused) and 'role="alert"' in refused.text
    # The list is shown again with the message.
    assert device.device_id in rows(refused)
    assert device_state() == before
    assert Device.get("amy", device.key_hash).name == "Chrome on Linux"


def test_removing_a_device_frees_a_place_under_the_limit(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    kept = register("amy", sso.clock)
    removed = register("amy", sso.clock, user_agent=FIREFOX_ON_WINDOWS)
    assert User.get("amy").device_count == 2
    browser = signed_in(sso, "amy")

    response = submit(sso, browser, f"/me/devices/{removed.device_id}/remove", page="/me/devices")

    assert response.status_code == 303
    assert response.headers["Location"] == "/me/devices?notice=removed"
    assert User.get("amy").device_count == 1
    assert [d.device_id for d in Device.query("amy")] == [kept.device_id]
    listing = sso.get(browser, response.headers["Location"])
    assert "The device was removed." in listing.text
    assert set(rows(listing)) == {kept.device_id}


def test_stop_trusting_a_device_clears_its_trust(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    device = register("amy", sso.clock, trust_days=TRUST_DAYS)
    assert devices.is_trusted(device, User.get("amy"), sso.clock.now())
    browser = signed_in(sso, "amy")
    assert "Trusted until" in rows(sso.get(browser, "/me/devices"))[device.device_id]

    response = submit(sso, browser, f"/me/devices/{device.device_id}/untrust", page="/me/devices")

    assert response.status_code == 303
    assert response.headers["Location"] == "/me/devices?notice=untrusted"
    stored = Device.get("amy", device.key_hash)
    assert stored.trusted_until is None and not devices.is_trusted(stored, User.get("amy"), sso.clock.now())
    listing = sso.get(browser, response.headers["Location"])
    assert "Not trusted" in rows(listing)[device.device_id]
    assert "Stop trusting" not in listing.text


def test_a_user_cannot_touch_another_users_device(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    bobs = register("bob", sso.clock, trust_days=TRUST_DAYS)
    register("amy", sso.clock)
    browser = signed_in(sso, "amy")
    assert bobs.device_id not in rows(sso.get(browser, "/me/devices"))
    before = device_state()

    for action, data in (("rename", {"name": "Mine now"}), ("untrust", {}), ("remove", {})):
        response = submit(sso, browser, f"/me/devices/{bobs.device_id}/{action}", data, page="/me/devices")
        assert response.status_code == 404, action
        assert "There is no device" in text_of(response)

    assert device_state() == before
    assert User.get("bob").device_count == 1
    assert Device.get("bob", bobs.key_hash).trusted_until is not None
    assert [e.type for e in device_events()] == ["device.registered", "device.registered"]


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    device = register("amy", sso.clock, trust_days=TRUST_DAYS)
    browser = signed_in(sso, "amy")
    before = device_state()
    for action, data in (("rename", {"name": "Evil"}), ("untrust", {}), ("remove", {})):
        path = f"/me/devices/{device.device_id}/{action}"
        missing = sso.post(browser, path, data)
        forged = sso.post(browser, path, {**data, "csrf_token": "not-the-session-token"})
        assert missing.status_code == forged.status_code == 403, action
        assert "did not come from this site" in missing.text
    assert device_state() == before


def test_the_devices_page_labels_its_inputs_and_posts_carry_the_csrf_token(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    register("amy", sso.clock, trust_days=TRUST_DAYS)
    register("amy", sso.clock, user_agent=FIREFOX_ON_WINDOWS)
    page = sso.get(signed_in(sso, "amy"), "/me/devices")
    _assert_labelled_and_protected(page)


def _assert_labelled_and_protected(page: requests.Response) -> None:
    assert page.status_code == 200
    document = lxml.html.fromstring(page.text)
    token = csrf_token(page.text)
    labelled = {label.get("for") for label in document.iter("label")}
    controls = document.xpath("//input[not(@type='hidden')] | //select | //textarea")
    assert controls
    for control in controls:
        assert control.get("id") in labelled, f"{lxml.html.tostring(control)!r} has no label"
    for form in document.xpath("//form"):
        assert form.get("method") == "post"
        assert form.xpath("input[@name='csrf_token']/@value") == [token]


# ---------------------------------------------------------------- the admin's view


def test_the_admin_sees_and_manages_any_users_devices(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    renamed = register("bob", sso.clock, trust_days=TRUST_DAYS)
    removed = register("bob", sso.clock, user_agent=FIREFOX_ON_WINDOWS)
    admin = root_signed_in(sso)
    user_page = sso.get(admin, "/admin/users/bob")
    assert 'href="/admin/devices/bob"' in user_page.text and "(2 registered)" in user_page.text

    page = sso.get(admin, "/admin/devices/bob")
    assert page.status_code == 200
    assert set(rows(page)) == {renamed.device_id, removed.device_id}
    assert "<dt>Registered devices</dt><dd>2</dd>" in page.text
    _assert_labelled_and_protected(page)

    base = "/admin/devices/bob"
    done = submit(sso, admin, f"{base}/{renamed.device_id}/rename", {"name": "Bob's laptop"}, page=base)
    assert done.status_code == 303 and done.headers["Location"] == f"{base}?notice=device-renamed"
    assert Device.get("bob", renamed.key_hash).name == "Bob's laptop"

    done = submit(sso, admin, f"{base}/{renamed.device_id}/untrust", page=base)
    assert done.status_code == 303 and done.headers["Location"] == f"{base}?notice=device-untrusted"
    assert Device.get("bob", renamed.key_hash).trusted_until is None

    done = submit(sso, admin, f"{base}/{removed.device_id}/remove", page=base)
    assert done.status_code == 303 and done.headers["Location"] == f"{base}?notice=device-removed"
    assert [d.device_id for d in Device.query("bob")] == [renamed.device_id]
    assert User.get("bob").device_count == 1

    listing = sso.get(admin, done.headers["Location"])
    assert "no longer counts against the user&#39;s device limit" in listing.text
    assert "<dt>Registered devices</dt><dd>1</dd>" in listing.text
    changes = [e for e in device_events() if e.type != "device.registered"]
    assert sorted(e.type for e in changes) == ["device.removed", "device.renamed", "device.untrusted"]
    assert all(e.actor == "root" and e.subject == "bob" for e in changes)


def test_the_admin_cannot_reach_a_device_through_another_user(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    bobs = register("bob", sso.clock)
    admin = root_signed_in(sso)
    before = device_state()
    response = submit(sso, admin, f"/admin/devices/amy/{bobs.device_id}/remove", page="/admin/devices/amy")
    assert response.status_code == 404
    assert device_state() == before


def test_the_admin_unlocks_a_locked_user_from_the_devices_page(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    User.get("bob").update(actions=[User.locked.set(True), User.fail_password.set(100)])
    admin = root_signed_in(sso)
    assert "<dt>Locked</dt><dd>Yes" in sso.get(admin, "/admin/devices/bob").text
    assert sso.sign_in(sso.browser(), "bob").status_code != 303

    response = submit(sso, admin, "/admin/devices/bob/unlock", page="/admin/devices/bob")

    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/devices/bob?notice=user-unlocked"
    bob = User.get("bob")
    assert not bob.locked and bob.total_failures() == 0
    assert "<dt>Locked</dt><dd>No" in sso.get(admin, response.headers["Location"]).text
    (event,) = [e for e in AuditEvent.scan() if e.type == "user.unlocked"]
    assert event.actor == "root" and event.subject == "bob"
    assert sso.sign_in(sso.browser(), "bob").status_code == 303


def test_an_unknown_user_is_a_clear_404(sso: Sso) -> None:
    admin = root_signed_in(sso)
    page = sso.get(admin, "/admin/devices/nobody")
    assert page.status_code == 404 and "There is no user &#39;nobody&#39;." in page.text


def test_the_admin_pages_are_for_administrators_only(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD))
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    User.get("bob").update(actions=[User.locked.set(True)])
    bobs = register("bob", sso.clock, trust_days=TRUST_DAYS)
    amy = signed_in(sso, "amy")
    token = csrf_token(sso.get(amy, "/me/devices").text)
    before = device_state()

    page = sso.get(amy, "/admin/devices/bob")
    assert page.status_code == 403 and "This page is for administrators." in page.text
    for action in ("rename", "remove", "untrust"):
        response = sso.post(
            amy, f"/admin/devices/bob/{bobs.device_id}/{action}", {"csrf_token": token, "name": "x"}
        )
        assert response.status_code == 403, action
    assert sso.post(amy, "/admin/devices/bob/unlock", {"csrf_token": token}).status_code == 403

    assert device_state() == before
    assert User.get("bob").locked
    assert (
        sso.get(sso.browser(), "/admin/devices/bob").headers["Location"]
        == "/login?next=%2Fadmin%2Fdevices%2Fbob"
    )
