"""`/api/search`: posts or channels by words (row 28 of reference 9.2), over the engine's
own full-text search."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.model import DEFAULT_PAGE
from buddycloud.http.errors import ApiError
from buddycloud.http.requests import JSON, context, negotiate, requester, search_paging
from buddycloud.http.schemas import channel_search_json, content_search_json

MAX_QUERY = 1024


async def search_get(request: Request) -> Response:
    """`GET /api/search?type=content|metadata&q=...&max=&index=`: `{items, rsm: {index,
    count}}`; `content` finds posts the caller may read, `metadata` channels by title and
    description. `index` is the number of results skipped."""
    negotiate(request, (JSON,))
    user = await requester(request)
    query = request.query_params
    kind = query.get("type")
    words = query.get("q")
    if kind not in ("content", "metadata"):
        raise ApiError(400, "bad-request", "type must be content or metadata")
    if words is None or not words.strip():
        raise ApiError(400, "bad-request", "q, the words to search for, is required")
    if len(words) > MAX_QUERY:
        raise ApiError(400, "bad-request", f"q is longer than {MAX_QUERY} characters")
    page, index = search_paging(query, default_max=DEFAULT_PAGE)
    engine = context(request).engine
    items: list[Any]
    if kind == "content":
        found = await engine.search(
            user.jid, words=words.split(), author=None, page=page, offset=index
        )
        items = [content_search_json(item) for item in found.items]
        count = found.count
    else:
        channels = await engine.search_channels(
            user.jid, words=words.split(), page=page, offset=index
        )
        items = [channel_search_json(channel) for channel in channels.items]
        count = channels.count
    return JSONResponse({"items": items, "rsm": {"index": index, "count": count}})
