"""`/api/<channel>/subscribers/<node>`: a channel's followers, their roles, and follow
requests to approve (rows 18-21 of reference 9.2)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import MAX_PAGE, NodeId, Role, SubscriptionState
from buddycloud.http.errors import ApiError
from buddycloud.http.requests import (
    JSON,
    context,
    json_list,
    json_object,
    negotiate,
    node_id,
    paging,
    requester,
    signed_in,
)
from buddycloud.http.schemas import page_headers

MAX_CHANGES = 100


def _node(request: Request) -> NodeId:
    return node_id(request.path_params["channel"], request.path_params["node"])


def _too_many(count: int) -> None:
    if count > MAX_CHANGES:
        raise ApiError(400, "bad-request", f"at most {MAX_CHANGES} changes in one request")


async def subscribers_get(request: Request) -> Response:
    """`GET .../subscribers/<node>`: `{jid: role}` of the channel's followers (banned users
    only for the owner and moderators)."""
    negotiate(request, (JSON,))
    user = await requester(request)
    page = await context(request).engine.node_affiliations(
        user.jid, _node(request), paging(request.query_params, default_max=MAX_PAGE)
    )
    body = {str(membership.jid): membership.role.value for membership in page.items}
    return JSONResponse(body, headers=page_headers(page))


async def subscribers_post(request: Request) -> Response:
    """`POST .../subscribers/<node>` `{jid: role}`: change roles (`outcast` bans); every
    change is checked before any is made. 200 with the new roles."""
    negotiate(request, (JSON,))
    user = await signed_in(request)
    body = await json_object(request)
    _too_many(len(body))
    changes = []
    for jid, role in body.items():
        if not isinstance(role, str):
            raise ApiError(400, "bad-request", f"the role of {jid[:100]!r} must be a string")
        changes.append((Jid.parse(jid), Role.parse(role)))
    if not changes:
        raise ApiError(400, "bad-request", 'name at least one follower: {"<jid>": "<role>"}')
    done = await context(request).engine.set_roles(user.jid, _node(request), changes)
    return JSONResponse({str(m.jid): m.role.value for m in done})


async def approve_get(request: Request) -> Response:
    """`GET .../subscribers/<node>/approve`: `[{jid, subscription}]`, pending requests and
    invitations included for the owner and moderators."""
    negotiate(request, (JSON,))
    user = await signed_in(request)
    page = await context(request).engine.node_subscriptions(
        user.jid, _node(request), paging(request.query_params, default_max=MAX_PAGE)
    )
    body = [{"jid": str(m.jid), "subscription": m.subscription.value} for m in page.items]
    return JSONResponse(body, headers=page_headers(page))


def _subscription_change(raw: Any) -> tuple[Jid, SubscriptionState]:
    if isinstance(raw, dict):
        jid, state = raw.get("jid"), raw.get("subscription")
        if isinstance(jid, str) and isinstance(state, str):
            return Jid.parse(jid), SubscriptionState.parse(state)
    raise ApiError(
        400,
        "bad-request",
        'each change is {"jid": "<jid>", "subscription": "subscribed" or "none"}',
    )


async def approve_post(request: Request) -> Response:
    """`POST .../subscribers/<node>/approve` `[{jid, subscription}]`: approve (`subscribed`)
    or refuse (`none`) follow requests, all checked before any is made."""
    negotiate(request, (JSON,))
    user = await signed_in(request)
    body = await json_list(request)
    _too_many(len(body))
    changes = [_subscription_change(raw) for raw in body]
    if not changes:
        raise ApiError(400, "bad-request", "name at least one follow request")
    done = await context(request).engine.set_subscriptions(user.jid, _node(request), changes)
    return JSONResponse([{"jid": str(m.jid), "subscription": m.subscription.value} for m in done])
