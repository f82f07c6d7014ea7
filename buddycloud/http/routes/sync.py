"""`/api/sync`: what is new in every channel the user follows (row 26 of reference 9.2).

`since` (ISO-8601) and `max` (items per node) are required, as for XMPP recent items.
The answer maps each node id to its new entries, newest first:
`{"/user/juliet@capulet.lit/posts": [entry, ...]}`; with `summary=true` to counters
instead: `{"<node>": {"mentionsCount", "totalCount", "lastPost"?, "lastMention"?}}`, where
the counts leave out the user's own posts and a mention is a post naming the user's JID.
The engine's recent items are read page after page until the last, at most
`MAX_PAGES` pages of `MAX_PAGE` items.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.entries import mentions
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import MAX_PAGE, Item, PageRequest
from buddycloud.domain.times import format_datetime
from buddycloud.http.requests import context, signed_in
from buddycloud.http.schemas import entry_json

MAX_PAGES = 20


async def sync_get(request: Request) -> Response:
    """`GET /api/sync?since=<ISO>&max=<per node>[&summary=true]`."""
    user = await signed_in(request)
    engine = context(request).engine
    query = request.query_params
    summary = query.get("summary", "false").lower() == "true"
    nodes: dict[str, list[Item]] = {}
    after: str | None = None
    for _ in range(MAX_PAGES):
        page = await engine.recent_items(
            user.jid,
            since=query.get("since"),
            max_per_node=query.get("max"),
            parent_only=False,
            page=PageRequest(max=MAX_PAGE, after=after),
        )
        for item in page.items:
            if not item.deleted:
                nodes.setdefault(str(item.node), []).append(item)
        if not page.items or page.last is None or page.last == after:
            break
        after = page.last
    if summary:
        return JSONResponse({node: _summary(items, user.jid) for node, items in nodes.items()})
    return JSONResponse(
        {node: [entry_json(item) for item in items] for node, items in nodes.items()}
    )


def _summary(items: list[Item], user: Jid) -> dict[str, Any]:
    others = [item for item in items if item.author != user]
    mentioned = [
        item for item in others if item.entry is not None and mentions(item.entry.content, user)
    ]
    rendered: dict[str, Any] = {"mentionsCount": len(mentioned), "totalCount": len(others)}
    if items:
        rendered["lastPost"] = format_datetime(max(item.updated for item in items))
    if mentioned:
        rendered["lastMention"] = format_datetime(max(item.updated for item in mentioned))
    return rendered
