"""`idp device list|remove|untrust` against an embedded AWS: what an admin sees of a user's
devices (never the cookie or its hash), removing one frees a place under the device limit,
and unknown users or devices exit 2 with one sentence and change nothing."""

from __future__ import annotations

import json

import pytest

from idp_core import accounts
from idp_core.adaptive import devices
from idp_core.models import Device, User
from idp_core.scope import Browser
from idp_local.state import LocalState
from tests.helpers.cli import idp, listing, ok
from tests.helpers.scope import scope_at

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"
DEVICE_KEYS = {"id", "name", "browser", "os", "first_seen", "last_seen", "last_ip", "trusted_until"}


def _register(username: str, *, max_devices: int = 5, trust_days: int = 0) -> Device:
    user = accounts.get_user(username)
    registration = devices.register(
        user,
        scope_at(browser=Browser("127.0.0.9", USER_AGENT)),
        max_devices=max_devices,
        trust_days=trust_days,
    )
    return registration.device


def _device_count(username: str) -> int:
    return int(User.get(username).device_count or 0)


def _stored(username: str) -> list[dict[str, object]]:
    return sorted(
        (dict(d.attribute_values) for d in Device.query(username)), key=lambda d: str(d["device_id"])
    )


@pytest.fixture
def alice(bound: LocalState) -> list[Device]:
    """Alice (stored as ``alice``) with two registered devices."""
    accounts.create_user(accounts.NewUser("Alice", email="alice@example.com"))
    return [_register("alice"), _register("alice")]


def test_device_list_shows_each_device_and_never_its_cookie_hash(
    capsys: pytest.CaptureFixture[str], alice: list[Device]
) -> None:
    # The username is canonicalised like every `idp user` command's.
    items = listing(capsys, "device", "list", "ALICE")

    assert sorted(i["id"] for i in items) == sorted(d.device_id for d in alice)
    for item in items:
        assert set(item) == DEVICE_KEYS
        assert (item["browser"], item["os"], item["name"]) == ("Chrome", "Linux", "Chrome on Linux")
        assert item["last_ip"] == "127.0.0.9" and item["trusted_until"] is None
        assert item["first_seen"].endswith("Z") and item["last_seen"].endswith("Z")
    text = ok(capsys, "device", "list", "alice")
    header, *rows = text.splitlines()
    assert header.split() == [
        "ID",
        "NAME",
        "BROWSER",
        "OS",
        "FIRST",
        "SEEN",
        "LAST",
        "SEEN",
        "LAST",
        "IP",
        "TRUSTED",
        "UNTIL",
    ]
    assert sorted(row.split()[0] for row in rows) == sorted(d.device_id for d in alice)
    for output in (json.dumps(items), text):
        for device in alice:
            assert device.key_hash not in output


def test_device_list_of_a_user_without_devices_is_empty(
    capsys: pytest.CaptureFixture[str],
    bound: LocalState,
) -> None:
    accounts.create_user(accounts.NewUser("bob"))

    assert listing(capsys, "device", "list", "bob") == []
    assert ok(capsys, "device", "list", "bob").splitlines()[-1] == "(none)"


def test_device_remove_forgets_the_device_and_frees_a_place(
    capsys: pytest.CaptureFixture[str],
    bound: LocalState,
) -> None:
    accounts.create_user(accounts.NewUser("carol"))
    first, second = _register("carol", max_devices=2), _register("carol", max_devices=2)
    # Full: the registration's condition lets a device in only while the count is under the limit.
    assert _device_count("carol") == 2

    said = ok(capsys, "device", "remove", "Carol", first.device_id)

    assert first.device_id in said and "Removed" in said
    assert _device_count("carol") == 1
    assert [i["id"] for i in listing(capsys, "device", "list", "carol")] == [second.device_id]
    # The freed place takes a new device under the same limit.
    _register("carol", max_devices=2)
    assert _device_count("carol") == 2
    events = [e for e in listing(capsys, "audit") if e["type"] == "device.removed"]
    assert [(e["subject"], e["details"]["device"], str(e["actor"])[:4]) for e in events] == [
        ("carol", first.device_id, "cli:")
    ]


def test_device_untrust_ends_the_trust_and_the_listing_shows_it(
    capsys: pytest.CaptureFixture[str],
    bound: LocalState,
) -> None:
    accounts.create_user(accounts.NewUser("dave"))
    trusted = _register("dave", trust_days=30)
    assert listing(capsys, "device", "list", "dave")[0]["trusted_until"] is not None

    said = ok(capsys, "device", "untrust", "DAVE", trusted.device_id)

    assert "no longer trusted" in said
    assert listing(capsys, "device", "list", "dave")[0]["trusted_until"] is None
    stored = Device.get("dave", trusted.key_hash)
    assert stored.trusted_until is None and stored.trust_epoch is None
    assert not devices.is_trusted(stored, User.get("dave"), stored.last_seen_at)
    assert _device_count("dave") == 1, "untrusting keeps the device registered"


def test_a_trust_ended_by_a_factor_change_is_not_listed_as_trusted(
    capsys: pytest.CaptureFixture[str],
    bound: LocalState,
) -> None:
    accounts.create_user(accounts.NewUser("erin"))
    _register("erin", trust_days=30)

    devices.end_trust("erin")

    (item,) = listing(capsys, "device", "list", "erin")
    assert item["trusted_until"] is None


@pytest.mark.parametrize(
    "args",
    [
        ("list", "nobody"),
        ("remove", "nobody", "DEVICE"),
        ("untrust", "nobody", "DEVICE"),
        ("remove", "alice", "0123456789ab"),
        ("untrust", "alice", "0123456789ab"),
        ("remove", "alice", "x" * 200),
        ("remove", "alice"),
    ],
)
def test_unknown_users_and_devices_exit_2_and_change_nothing(
    capsys: pytest.CaptureFixture[str], alice: list[Device], args: tuple[str, ...]
) -> None:
    before = _stored("alice")
    # An id of another user's device does not reach it either.
    arguments = [a if a != "DEVICE" else alice[0].device_id for a in args]

    code, out, err = idp(capsys, "device", *arguments)

    assert code == 2 and out == "" and err.startswith("idp: ") and err.count("\n") == 1, (code, err)
    assert "Traceback" not in err
    assert _stored("alice") == before
    assert _device_count("alice") == 2
    assert not [e for e in listing(capsys, "audit") if e["type"] in {"device.removed", "device.untrusted"}]
