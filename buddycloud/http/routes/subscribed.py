"""`/api/subscribed`: what the signed-in user follows (rows 16-17 of reference 9.2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.model import MAX_PAGE, NodeId
from buddycloud.http.errors import ApiError
from buddycloud.http.requests import JSON, context, json_object, negotiate, paging, signed_in
from buddycloud.http.schemas import membership_value, page_headers


async def subscribed_get(request: Request) -> Response:
    """`GET /api/subscribed`: `{"<channel>/<node>": "<role, or pending/invited>"}`, a key
    for every node of each channel the user follows, has asked to follow, or holds a role
    in (following a channel follows all its nodes, ProtoXEP 5.4)."""
    negotiate(request, (JSON,))
    user = await signed_in(request)
    page = await context(request).engine.user_affiliations(
        user.jid, paging(request.query_params, default_max=MAX_PAGE)
    )
    body = {
        f"{shown.node.id.channel}/{shown.node.id.name}": membership_value(shown.membership)
        for shown in page.items
    }
    return JSONResponse(body, headers=page_headers(page))


async def subscribed_post(request: Request) -> Response:
    """`POST /api/subscribed` `{"<channel>/<node>": "<affiliation>"}`: follow the channel,
    or with `none` stop following it. 200 with the same key and what the user now is there
    (`pending` while a closed channel's owner decides, `none` after unfollowing)."""
    negotiate(request, (JSON,))
    user = await signed_in(request)
    body = await json_object(request)
    if len(body) != 1:
        raise ApiError(
            400, "bad-request", 'send one channel at a time: {"<channel>/<node>": "<affiliation>"}'
        )
    [(key, value)] = body.items()
    if not isinstance(value, str):
        raise ApiError(400, "bad-request", f"the value of {key[:100]!r} must be a string")
    node = NodeId.parse(f"/user/{key}")
    engine = context(request).engine
    if value == "none":
        await engine.unsubscribe(user.jid, node, user.jid)
        return JSONResponse({key: "none"})
    membership = await engine.subscribe(user.jid, node, user.jid)
    return JSONResponse({key: membership_value(membership)})
