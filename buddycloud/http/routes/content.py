"""`/api/<channel>/content/<node>`: a node's posts (rows 6-13 of reference 9.2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.http.requests import context, node_id, paging, requester
from buddycloud.http.schemas import entry_json, page_headers


async def content_get(request: Request) -> Response:
    """`GET /api/<channel>/content/<node>`: a page of items, newest first, as JSON."""
    user = await requester(request)
    node = node_id(request.path_params["channel"], request.path_params["node"])
    page = await context(request).engine.get_items(user.jid, node, paging(request.query_params))
    return JSONResponse(
        [entry_json(item) for item in page.items if not item.deleted],
        headers=page_headers(page),
    )
