"""The users list, a page at a time, with a search by username prefix (the console's Users
page and ``idp user list``).

A page costs the same however many users there are: one Query of the users table's
``by_name`` index (keys only, every user under one partition value, sorted by username;
``begins_with`` on the username for a search) for at most ``limit + 1`` keys, then one
BatchGetItem for the page's users. No request reads the whole table.

The position is handed to the client as an opaque cursor: base64url of a small JSON object
naming the search it belongs to and the last username shown. It is checked before use (a
cursor of another search, or one that was altered into something that is no position of
this search, is a 400 with a sentence). It needs no signature: it carries no secret and
grants nothing, since every position it could name is one the same admin may page to.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from dataclasses import dataclass

from pynamodb.exceptions import UpdateError

from idp_core.errors import BadRequest
from idp_core.models import USER_LISTING, User, condition_failed
from idp_core.names import MAX_USERNAME_CHARS, canonical_username

DEFAULT_PAGE_SIZE = 50
# One BatchGetItem reads at most 100 items.
MAX_PAGE_SIZE = 100
CURSOR_VERSION = 1
MAX_CURSOR_CHARS = 1024
_BAD_CURSOR = "The link to the next page is damaged or was altered; start the list again."
_OTHER_SEARCH = "That link to the next page belongs to another search; start the search again."


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    # The cursor of the next page; None on the last page.
    next_cursor: str | None


def search_prefix(raw: str | None) -> str:
    """The canonical form of what the admin typed, as usernames are stored (NFKC, casefold)."""
    text = unicodedata.normalize("NFKC", (raw or "").strip())
    if len(text) > MAX_USERNAME_CHARS:
        raise BadRequest(f"Search for at most {MAX_USERNAME_CHARS} characters of a username.")
    if text and not text.isprintable():
        raise BadRequest("Search for the start of a username.")
    return unicodedata.normalize("NFKC", text.casefold())


def encode_cursor(prefix: str, after: str) -> str:
    raw = json.dumps({"v": CURSOR_VERSION, "q": prefix, "after": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> str:
    """The last username of the previous page of the search ``prefix``, or BadRequest."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_CHARS:
        raise BadRequest(_BAD_CURSOR)
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(_BAD_CURSOR) from exc
    if not isinstance(data, dict) or set(data) != {"v", "q", "after"} or data["v"] != CURSOR_VERSION:
        raise BadRequest(_BAD_CURSOR)
    if data["q"] != prefix:
        raise BadRequest(_OTHER_SEARCH)
    after = data["after"]
    if not isinstance(after, str) or not after.startswith(prefix):
        raise BadRequest(_BAD_CURSOR)
    try:
        if canonical_username(after) != after:
            raise BadRequest(_BAD_CURSOR)
    except BadRequest as exc:
        raise BadRequest(_BAD_CURSOR) from exc
    return after


def page_size(raw: int | str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    text = str(raw).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise BadRequest(f"A page holds 1 to {MAX_PAGE_SIZE} users.")
    return int(text)


def users_page(
    search: str | None = None, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
) -> UserPage:
    """One page of users, sorted by username, whose usernames start with ``search``."""
    prefix = search_prefix(search)
    limit = page_size(limit)
    start = None
    if cursor:
        after = decode_cursor(cursor, prefix)
        start = {"listing": {"S": USER_LISTING}, "username": {"S": after}}
    keys = User.by_name.query(
        USER_LISTING,
        User.username.startswith(prefix) if prefix else None,
        limit=limit + 1,
        page_size=limit + 1,
        last_evaluated_key=start,
    )
    usernames = [key.username for key in keys]
    shown = usernames[:limit]
    users = sorted(User.batch_get(shown), key=lambda user: user.username) if shown else []
    more = len(usernames) > limit
    return UserPage(users=users, next_cursor=encode_cursor(prefix, shown[-1]) if more else None)


def count_users() -> int:
    """How many users there are, counted on the keys-only by_name index (a COUNT Query reads
    about 40 bytes a user there, where a scan of the table would read every whole item)."""
    return int(User.by_name.count(USER_LISTING))


def list_unlisted_users() -> int:
    """Put the users that an earlier version wrote (without ``listing``) into the by_name index;
    returns how many. One scan of the table, run once by an operator after upgrading
    (``idp user reindex``); a user deleted meanwhile is skipped, and running it again is
    harmless."""
    listed = 0
    for user in User.scan(User.listing.does_not_exist(), attributes_to_get=["username"]):
        try:
            User(user.username).update(
                actions=[User.listing.set(USER_LISTING)], condition=User.username.exists()
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            continue
        listed += 1
    return listed
