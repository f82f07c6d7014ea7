"""`/api/notifications/posts`: long-polling for new posts (row 27 of reference 9.2).

The answer is `{"last": <ms>, "items": [entry + source, ...]}`, oldest first. Without
`since` it comes at once, with no items and `last` = now. With `since` (milliseconds since
1970, as `last` gave it) it comes at once when a post of a followed channel is newer than
`since`, else when the next one arrives, else after `[http] long_poll_seconds` with no
items. Built on the engine's recent items and the live hub; no XMPP involved.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.model import MAX_PAGE, Item, PageRequest
from buddycloud.http.live import PostWaiter
from buddycloud.http.requests import as_milliseconds, context, milliseconds, signed_in
from buddycloud.http.schemas import notification_entry_json


async def notifications_posts_get(request: Request) -> Response:
    """`GET /api/notifications/posts[?since=<ms>]`: new posts, waiting for one if need be."""
    user = await signed_in(request)
    http = context(request)
    raw_since = request.query_params.get("since")
    if raw_since is None:
        return JSONResponse({"last": as_milliseconds(http.engine.clock.now()), "items": []})
    since = milliseconds(raw_since, "since")
    waiter = PostWaiter()
    # Listen before reading, so that a post committed while the read runs is not missed.
    http.hub.connect(user.jid, waiter)
    try:
        # The oldest page of what is newer than `since`: the client asks again from `last`.
        page = await http.engine.user_items(
            user.jid,
            since=since,
            parent_only=False,
            page=PageRequest(max=MAX_PAGE, last_page=True),
        )
        stored = [item for item in reversed(page.items) if _is_post(item)]
        if stored:
            return _answer(
                since, [(item.updated, notification_entry_json(item)) for item in stored]
            )
        arrived = await waiter.wait(http.long_poll_seconds)
        return _answer(
            since,
            [
                (event.updated, event.entry)
                for event in arrived
                if event.updated is not None and event.entry is not None
            ],
        )
    finally:
        http.hub.disconnect(user.jid, waiter)


def _is_post(item: Item) -> bool:
    return not item.deleted and item.entry is not None


def _answer(since: datetime, posts: list[tuple[datetime, dict[str, object]]]) -> Response:
    last = max([since, *(when for when, _ in posts)])
    return JSONResponse({"last": as_milliseconds(last), "items": [entry for _, entry in posts]})
