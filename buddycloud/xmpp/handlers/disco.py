"""XEP-0030 service discovery, answered by the component itself (reference rows 2-6)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.stanzas import (
    TopNodesRequest,
    parse_disco_info,
    parse_disco_items,
    render_disco_channels,
    render_disco_info,
    render_disco_node_items,
)


async def handle_disco_info(request: IqRequest) -> Element:
    """Identities pubsub/channels and pubsub/inbox, or a node's meta-data (ProtoXEP 2.2, 4.1)."""
    query = parse_disco_info(request.payload)
    if query.node is None:
        return render_disco_info(None)
    view = await request.engine.get_node_view(request.requester, query.node)
    return render_disco_info(view)


async def handle_disco_items(request: IqRequest) -> Element:
    """The channels of this service (RSM), the item ids of one node, or the top channels."""
    query = parse_disco_items(request.payload)
    if isinstance(query, TopNodesRequest):
        top = await request.engine.top_channels(request.requester, by=query.by, limit=query.limit)
        return render_disco_channels(
            request.edge.service_jid, top, node=query.node, room=request.room
        )
    backwards = query.page.backwards
    if query.node is None:
        channels = await request.engine.list_channels(request.requester, query.page)
        return render_disco_channels(
            request.edge.service_jid, channels, room=request.room, from_end=backwards
        )
    items = await request.engine.get_items(request.requester, query.node, query.page)
    return render_disco_node_items(
        request.edge.service_jid, query.node, items, room=request.room, from_end=backwards
    )
