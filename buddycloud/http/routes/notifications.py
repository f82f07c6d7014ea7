"""`/api/notifications/posts`: long-polling for new posts (row 27 of reference 9.2).

The answer is `{"last": <ms>, "items": [entry + source, ...]}`, oldest first, or by
content negotiation an Atom feed of those entries whose `next` link carries `last`. Without
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
from buddycloud.http.requests import (
    ATOM,
    JSON,
    as_milliseconds,
    context,
    milliseconds,
    negotiate,
    signed_in,
)
from buddycloud.http.schemas import atom_response, notification_entry_json, notifications_feed


async def notifications_posts_get(request: Request) -> Response:
    """`GET /api/notifications/posts[?since=<ms>]`: new posts, waiting for one if need be."""
    media_type = negotiate(request, (JSON, ATOM))
    user = await signed_in(request)
    http = context(request)
    service = str(http.engine.config.service_jid)
    raw_since = request.query_params.get("since")
    if raw_since is None:
        return _answer(http.engine.clock.now(), [], media_type, service)
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
            posts = [(item, notification_entry_json(item)) for item in stored]
            return _answer(since, posts, media_type, service)
        arrived = await waiter.wait(http.long_poll_seconds)
        posts = [
            (event.item, event.entry)
            for event in arrived
            if event.item is not None and event.entry is not None
        ]
        return _answer(since, posts, media_type, service)
    finally:
        http.hub.disconnect(user.jid, waiter)


def _is_post(item: Item) -> bool:
    return not item.deleted and item.entry is not None


def _answer(
    since: datetime,
    posts: list[tuple[Item, dict[str, object]]],
    media_type: str,
    service: str,
) -> Response:
    last = max([since, *(item.updated for item, _ in posts)])
    last_ms = as_milliseconds(last)
    if media_type == ATOM:
        items = [item for item, _ in posts]
        return atom_response(notifications_feed(items, service=service, last=last, last_ms=last_ms))
    return JSONResponse({"last": last_ms, "items": [entry for _, entry in posts]})
