"""`/api/<channel>` and `/api/<channel>/<node>`: creating and deleting topic channels and
application nodes (rows 22-25 of reference 9.2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.model import ChannelType, NodeId
from buddycloud.http.requests import (
    JSON,
    channel_jid,
    context,
    negotiate,
    node_id,
    optional_json_object,
    signed_in,
)
from buddycloud.http.routes.metadata import config_update
from buddycloud.http.schemas import metadata_json


def _posts(request: Request) -> NodeId:
    return NodeId(channel_jid(request.path_params["channel"]), "posts")


async def channel_post(request: Request) -> Response:
    """`POST /api/<channel>`: a new topic channel owned by the signed-in user; an optional
    JSON body sets its metadata as `POST .../metadata/posts` would. 200 with the metadata."""
    negotiate(request, (JSON,))
    user = await signed_in(request)
    node = _posts(request)
    update = config_update(await optional_json_object(request), channel_type=ChannelType.TOPIC)
    engine = context(request).engine
    await engine.create_node(user.jid, node, update)
    view = await engine.get_node_view(user.jid, node)
    return JSONResponse(metadata_json(view.channel.config))


async def channel_delete(request: Request) -> Response:
    """`DELETE /api/<channel>`: the channel, all its nodes and posts go (owner only)."""
    user = await signed_in(request)
    await context(request).engine.delete_node(user.jid, _posts(request))
    return Response(status_code=200)


async def node_post(request: Request) -> Response:
    """`POST /api/<channel>/<node>`: a new node of the channel (an application node)."""
    negotiate(request, (JSON,))
    user = await signed_in(request)
    node = node_id(request.path_params["channel"], request.path_params["node"])
    engine = context(request).engine
    await engine.create_node(user.jid, node)
    view = await engine.get_node_view(user.jid, node)
    return JSONResponse(metadata_json(view.channel.config))


async def node_delete(request: Request) -> Response:
    """`DELETE /api/<channel>/<node>`: the node and its items go; `posts` takes the whole
    channel with it (its metadata lives there)."""
    user = await signed_in(request)
    node = node_id(request.path_params["channel"], request.path_params["node"])
    await context(request).engine.delete_node(user.jid, node)
    return Response(status_code=200)
