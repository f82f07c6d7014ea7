"""`/api/<channel>/content/<node>`: a node's posts (rows 6, 7 and 9-13 of reference 9.2).

Pages and single posts are JSON or Atom by content negotiation (`*/*` and no `Accept` get
JSON); threads and replies are JSON only. A post may be sent as JSON or as Atom XML, and is
echoed in the type asked for by `Accept`, else in the type it came in.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.errors import ItemNotFound
from buddycloud.domain.model import DEFAULT_PAGE, Item, NodeId, Page, PageRequest
from buddycloud.http.pages import CachedPage
from buddycloud.http.requests import (
    ATOM,
    JSON,
    context,
    negotiate,
    node_id,
    paging,
    posted_item,
    requester,
    signed_in,
)
from buddycloud.http.schemas import (
    atom_entry,
    atom_feed,
    atom_response,
    entries_json,
    entry_json,
    item_path,
    page_headers,
    thread_json,
)

ENTRY_TYPES = (JSON, ATOM)


def _node(request: Request) -> NodeId:
    return node_id(request.path_params["channel"], request.path_params["node"])


def _service(request: Request) -> str:
    return str(context(request).engine.config.service_jid)


async def content_get(request: Request) -> Response:
    """`GET /api/<channel>/content/<node>`: a page of posts, newest activity first.

    A first page is the same for every reader the engine lets read the node, so it is
    rendered once and kept until the node changes (`buddycloud.http.pages`); the sign-in
    and the permission check still run for every request."""
    media_type = negotiate(request, ENTRY_TYPES)
    user = await requester(request)
    node = _node(request)
    page_request = paging(request.query_params)
    http = context(request)
    engine = http.engine
    key = http.pages.key(node, page_request, media_type) if engine.reads_locally(node) else None
    if key is None:
        page = await engine.get_items(user.jid, node, page_request)
        return _page_response(request, node, page, page_request, media_type)
    await engine.require_readable(user.jid, node)
    cached = http.pages.get(key)
    if cached is not None:
        return Response(cached.body, headers=cached.headers, media_type=cached.media_type)
    ticket = http.pages.ticket(node)
    try:
        page = await engine.get_items(user.jid, node, page_request)
    except BaseException:
        http.pages.release(ticket)
        raise
    response = _page_response(request, node, page, page_request, media_type)
    # An empty Atom feed's <updated> is the time of the answer: not kept.
    if media_type == JSON or any(not item.deleted for item in page.items):
        kept = CachedPage(bytes(response.body), page_headers(page), response.media_type or JSON)
        http.pages.put(key, ticket, kept)
    else:
        http.pages.release(ticket)
    return response


def _page_response(
    request: Request, node: NodeId, page: Page[Item], page_request: PageRequest, media_type: str
) -> Response:
    headers = page_headers(page)
    if media_type == ATOM:
        feed = atom_feed(node, page, service=_service(request), size=page_request.max)
        return atom_response(feed, headers=headers)
    return JSONResponse(entries_json(page.items), headers=headers)


async def _posted(request: Request, item: Item, media_type: str) -> Response:
    answer_type = negotiate(request, ENTRY_TYPES, preferred=media_type)
    headers = {"Location": item_path(item.node, item.id)}
    if answer_type == ATOM:
        return atom_response(atom_entry(item, service=_service(request)), 201, headers)
    return JSONResponse(entry_json(item), 201, headers=headers)


async def content_post(request: Request) -> Response:
    """`POST /api/<channel>/content/<node>`: a new post; 201 with its `Location`."""
    negotiate(request, ENTRY_TYPES)
    user = await signed_in(request)
    node = _node(request)
    posted = await posted_item(request)
    item = await context(request).engine.publish(user.jid, node, posted.payload)
    return await _posted(request, item, posted.media_type)


async def content_put(request: Request) -> Response:
    """`PUT /api/<channel>/content/<node>`: the post replaces the node's newest one."""
    negotiate(request, ENTRY_TYPES)
    user = await signed_in(request)
    node = _node(request)
    posted = await posted_item(request)
    item = await context(request).engine.replace_latest(user.jid, node, posted.payload)
    return await _posted(request, item, posted.media_type)


async def item_get(request: Request) -> Response:
    """`GET /api/<channel>/content/<node>/<item>`: one post; 404 when it was retracted."""
    media_type = negotiate(request, ENTRY_TYPES)
    user = await requester(request)
    node = _node(request)
    item_id = request.path_params["item"]
    item = await context(request).engine.get_item(user.jid, node, item_id)
    if item.deleted:
        raise ItemNotFound(str(node), item.id)
    if media_type == ATOM:
        return atom_response(atom_entry(item, service=_service(request)))
    return JSONResponse(entry_json(item))


async def item_delete(request: Request) -> Response:
    """`DELETE /api/<channel>/content/<node>/<item>`: retract a post; 204."""
    user = await signed_in(request)
    node = _node(request)
    await context(request).engine.retract(user.jid, node, request.path_params["item"])
    return Response(status_code=204)


async def replyto_get(request: Request) -> Response:
    """`GET /api/<channel>/content/<node>/<item>/replyto` (any case): a post's replies."""
    negotiate(request, (JSON,))
    user = await requester(request)
    node = _node(request)
    page = await context(request).engine.get_replies(
        user.jid, node, request.path_params["item"], paging(request.query_params)
    )
    return JSONResponse(entries_json(page.items), headers=page_headers(page))


async def threads_get(request: Request) -> Response:
    """`GET /api/<channel>/content/<node>/threads`: posts with their replies, by activity."""
    negotiate(request, (JSON,))
    user = await requester(request)
    node = _node(request)
    page = await context(request).engine.get_threads(
        user.jid, node, paging(request.query_params, default_max=DEFAULT_PAGE)
    )
    threads: list[Any] = [thread_json(thread) for thread in page.items]
    return JSONResponse(threads, headers=page_headers(page))
