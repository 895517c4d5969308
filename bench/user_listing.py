"""The admin's users list with 50,000 users: what one page costs DynamoDB (requests and items
read), for the first page, a page deep in the list and a search, against moto in this process.
A count, so it does not depend on the machine: a page must cost the same as with a handful of
users (one Query of the by_name index and one BatchGetItem), never a read of the whole table."""

from __future__ import annotations

import time

from bench.common import verdict
from idp_core import user_listing
from idp_core.models import User
from tests.helpers.dynamodb_reads import counting_dynamodb_reads, put_items_directly
from tests.support.aws import fresh_tables, moto_server

USERS = 50_000
PAGE = 50
# One Query that reads a page's keys and one more, and one BatchGetItem of the page's users.
TARGET_REQUESTS = 2
TARGET_ITEMS = 2 * PAGE + 1


def run() -> dict:
    with moto_server():
        tables = fresh_tables()
        started = time.perf_counter()
        put_items_directly(
            tables.users,
            (
                User(f"user{i:05d}", display_username=f"user{i:05d}", created_at=1, updated_at=1).serialize()
                for i in range(USERS)
            ),
        )
        filled = time.perf_counter() - started
        deep = user_listing.encode_cursor("", f"user{USERS // 2:05d}")
        pages = {"first page": ("", None), "page 501": ("", deep), "search 'user4'": ("user4", None)}
        figures: dict[str, object] = {"users": USERS, "fill seconds": round(filled, 1)}
        rows = []
        for name, (search, cursor) in pages.items():
            with counting_dynamodb_reads() as reads:
                page = user_listing.users_page(search, limit=PAGE, cursor=cursor)
            assert len(page.users) == PAGE
            requests, items = sum(reads.requests.values()), sum(reads.items_read.values())
            figures[name] = {"requests": requests, "items read": items}
            rows.append(
                (
                    f"users list, {USERS:,} users: {name}",
                    f"{requests} requests, {items} items read",
                    f"<= {TARGET_REQUESTS} requests, <= {TARGET_ITEMS} items",
                    verdict(requests <= TARGET_REQUESTS and items <= TARGET_ITEMS),
                )
            )
    return {"figures": figures, "rows": rows}
