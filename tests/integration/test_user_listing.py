"""The users list a page at a time, with a search by username prefix (issue 15 point 3): the
console's Users page and `idp user list`. A page is one Query of the by_name index and one
BatchGetItem however many users there are; the cursor to the next page is checked, and a
cursor of another search or an altered one is refused with a sentence."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterator

import pytest
import requests

from idp_core import accounts, user_listing
from idp_core.config import Tables
from idp_core.errors import BadRequest
from idp_core.models import User
from idp_local.state import LocalState
from tests.helpers.cli import idp
from tests.helpers.dynamodb_reads import counting_dynamodb_reads, put_items_directly
from tests.helpers.sso import Sso

pytestmark = pytest.mark.sso_setup("password_only")

NAMES = ["alan", "albert", "alice", "alina", "bob", "carol", "dave"]
MANY_USERS = 5_000


def usernames(page: user_listing.UserPage) -> list[str]:
    return [user.username for user in page.users]


def forged(prefix: str, after: str, **extra: object) -> str:
    raw = json.dumps({"v": 1, "q": prefix, "after": after, **extra})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.fixture
def people(tables: Tables) -> list[str]:
    for name in NAMES:
        accounts.create_user(accounts.NewUser(name.capitalize()))
    return NAMES


def test_pages_follow_one_another_in_username_order(people: list[str]) -> None:
    first = user_listing.users_page(limit=3)
    assert usernames(first) == ["alan", "albert", "alice"]
    second = user_listing.users_page(limit=3, cursor=first.next_cursor)
    assert usernames(second) == ["alina", "bob", "carol"]
    last = user_listing.users_page(limit=3, cursor=second.next_cursor)
    assert usernames(last) == ["dave"] and last.next_cursor is None


def test_a_search_finds_usernames_by_their_start_whatever_the_case(people: list[str]) -> None:
    first = user_listing.users_page("AL", limit=2)
    assert usernames(first) == ["alan", "albert"]
    second = user_listing.users_page("al", limit=2, cursor=first.next_cursor)
    # Exactly the last matches: no cursor, so no empty page after them.
    assert usernames(second) == ["alice", "alina"] and second.next_cursor is None
    assert usernames(user_listing.users_page("ali")) == ["alice", "alina"]
    assert user_listing.users_page("zed").users == []


def test_a_page_costs_two_requests_and_reads_only_its_users_however_many_there_are(tables: Tables) -> None:
    """5,000 users: every page, searched or not, is one Query that reads the page's keys (and
    one more, to know whether a next page exists) and one BatchGetItem of the page's users."""
    put_items_directly(
        tables.users,
        (
            User(f"user{i:05d}", display_username=f"user{i:05d}", created_at=1, updated_at=1).serialize()
            for i in range(MANY_USERS)
        ),
    )
    cursor = None
    for search, expected_first in (("", "user00000"), ("", "user00050"), ("user04", "user04000")):
        with counting_dynamodb_reads() as reads:
            page = user_listing.users_page(search, limit=50, cursor=cursor if search == "" else None)
        assert usernames(page)[0] == expected_first and len(page.users) == 50
        assert reads.requests == {"Query": 1, "BatchGetItem": 1}
        assert reads.items_read == {"Query": 51, "BatchGetItem": 50}
        cursor = page.next_cursor
    with counting_dynamodb_reads() as reads:
        page = user_listing.users_page("user0499", limit=50)
    assert len(page.users) == 10 and page.next_cursor is None
    assert reads.requests == {"Query": 1, "BatchGetItem": 1}
    assert reads.items_read == {"Query": 10, "BatchGetItem": 10}
    # The console's overview counts the users with COUNT Queries of the keys-only index (moto
    # pages them by its own size estimate): index keys only, no user item is read.
    with counting_dynamodb_reads() as reads:
        assert user_listing.count_users() == MANY_USERS
    assert set(reads.requests) == {"Query"} and reads.items_read == {"Query": MANY_USERS}


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("not base64 at all!", "damaged or was altered"),
        (base64.urlsafe_b64encode(b"[1, 2]").decode(), "damaged or was altered"),
        (forged("", "alice", admin=True), "damaged or was altered"),
        (forged("", "Alice"), "damaged or was altered"),
        (forged("", "bad name!"), "damaged or was altered"),
        (forged("al", "bob"), "belongs to another search"),
        ("A" * 2000, "damaged or was altered"),
    ],
)
def test_attack_a_forged_cursor_is_refused(people: list[str], cursor: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        user_listing.users_page(cursor=cursor)


def test_attack_a_cursor_of_another_search_is_refused(people: list[str]) -> None:
    other = user_listing.users_page("al", limit=1).next_cursor
    assert other is not None
    with pytest.raises(BadRequest, match="belongs to another search"):
        user_listing.users_page("b", cursor=other)
    # A cursor that claims the other search but names a position outside it is altered.
    with pytest.raises(BadRequest, match="damaged or was altered"):
        user_listing.users_page("al", cursor=forged("al", "bob"))


def test_page_sizes_outside_1_to_100_are_refused(people: list[str]) -> None:
    for limit in (0, 101):
        with pytest.raises(BadRequest, match="A page holds 1 to 100 users"):
            user_listing.users_page(limit=limit)


# ---------------------------------------------------------------- the console


def rows(page: str) -> list[str]:
    return [
        html.unescape(row.split('">', 1)[1].split("<", 1)[0])
        for row in page.split('<th scope="row"><a href=')[1:]
    ]


def next_link(page: str) -> str | None:
    if 'rel="next"' not in page:
        return None
    return html.unescape(page.split('rel="next" href="', 1)[1].split('"', 1)[0])


@pytest.fixture
def console_people(sso: Sso, admin: requests.Session) -> Iterator[list[str]]:
    for name in NAMES:
        accounts.create_user(accounts.NewUser(name))
    yield NAMES


def test_the_console_searches_and_pages_through_users(
    sso: Sso, admin: requests.Session, console_people: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sso.handler.admin_routes, "USERS_PER_PAGE", 2)
    first = sso.get(admin, "/admin/users?q=AL")
    assert first.status_code == 200
    assert rows(first.text) == ["alan", "albert"]
    assert 'Users whose username starts with "AL"' in html.unescape(first.text)
    link = next_link(first.text)
    assert link is not None and link.startswith("/admin/users?q=AL&cursor=")
    second = sso.get(admin, link)
    assert rows(second.text) == ["alice", "alina"] and next_link(second.text) is None
    everyone = sso.get(admin, "/admin/users")
    assert rows(everyone.text) == ["alan", "albert"] and "root" not in rows(everyone.text)
    assert 'No username starts with "zed".' in html.unescape(sso.get(admin, "/admin/users?q=zed").text)


def test_attack_the_console_refuses_a_forged_or_foreign_cursor_with_a_sentence(
    sso: Sso, admin: requests.Session, console_people: list[str]
) -> None:
    foreign = sso.get(admin, f"/admin/users?q=b&cursor={forged('al', 'alice')}")
    assert foreign.status_code == 400
    assert "belongs to another search" in html.unescape(foreign.text)
    altered = sso.get(admin, f"/admin/users?cursor={forged('', 'x' * 200)}")
    assert altered.status_code == 400 and "damaged or was altered" in html.unescape(altered.text)
    assert "Traceback" not in altered.text


def test_attack_a_non_admin_cannot_list_or_search_users(sso: Sso, admin: requests.Session) -> None:
    accounts.create_user(accounts.NewUser("bob", password="correct horse battery staple"))
    bob = sso.browser()
    assert sso.sign_in(bob, "bob").status_code == 303
    assert sso.get(bob, "/admin/users?q=r").status_code == 403
    assert sso.get(bob, f"/admin/users?cursor={forged('', 'alice')}").status_code == 403


# ---------------------------------------------------------------- the CLI


def test_cli_lists_a_page_and_says_how_to_get_the_next(
    capsys: pytest.CaptureFixture[str], bound: LocalState
) -> None:
    for name in NAMES:
        accounts.create_user(accounts.NewUser(name))
    code, out, err = idp(capsys, "user", "list", "--search", "al", "--limit", "3", "--json")
    assert code == 0
    assert [user["username"] for user in json.loads(out)] == ["alan", "albert", "alice"]
    assert err.startswith("More users: idp user list --search al --next ")
    cursor = err.split("--next ", 1)[1].strip()
    code, out, err = idp(capsys, "user", "list", "--search", "al", "--limit", "3", "--next", cursor, "--json")
    assert (code, err) == (0, "")
    assert [user["username"] for user in json.loads(out)] == ["alina"]

    code, out, err = idp(capsys, "user", "list", "--search", "b", "--next", cursor)
    assert (code, out) == (2, "")
    assert err == "idp: That link to the next page belongs to another search; start the search again.\n"


def test_reindex_lists_the_users_an_earlier_version_wrote(
    capsys: pytest.CaptureFixture[str], bound: LocalState
) -> None:
    accounts.create_user(accounts.NewUser("alice"))
    # Written as an earlier version did: without the listing attribute.
    old = User("bob", display_username="bob", created_at=1, updated_at=1)
    old.listing = None
    old.save()
    assert usernames(user_listing.users_page()) == ["alice"]
    code, out, _ = idp(capsys, "user", "reindex")
    assert (code, out) == (0, "Added 1 user(s) to the users list; every user is in it now.\n")
    assert usernames(user_listing.users_page()) == ["alice", "bob"]
    assert idp(capsys, "user", "reindex")[1].startswith("Added 0 user(s)")
