"""XEP-0060 user operations (reference rows 10, 14-17, 23-24, 26-27, 29-30)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from buddycloud.xmpp.errors import PresenceRequired
from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.stanzas import (
    FirehoseRequest,
    parse_affiliations,
    parse_create,
    parse_items,
    parse_publish,
    parse_retract,
    parse_subscribe,
    parse_subscriptions,
    parse_unsubscribe,
    render_grouped_items,
    render_items,
    render_items_by_id,
    render_node_affiliations,
    render_node_subscriptions,
    render_publish,
    render_subscription,
    render_user_affiliations,
    render_user_subscriptions,
)


async def handle_create(request: IqRequest) -> None:
    create = parse_create(request.payload)
    await request.engine.create_node(request.requester, create.node, create.update)


async def handle_publish(request: IqRequest) -> Element:
    publish = parse_publish(request.payload, max_payload_bytes=request.edge.max_payload_bytes)
    item = await request.engine.publish(
        request.requester, publish.node, publish.payload, publish.item_id
    )
    return render_publish(publish.node, item.id)


async def handle_retract(request: IqRequest) -> None:
    retract = parse_retract(request.payload)
    await request.engine.retract(
        request.requester, retract.node, retract.item_id, notify=retract.notify
    )


async def handle_items(request: IqRequest) -> Element:
    query = parse_items(request.payload)
    if isinstance(query, FirehoseRequest):
        public = await request.engine.firehose(
            request.requester, query.page, parent_only=query.parent_only
        )
        return render_grouped_items(
            public, service=request.service, room=request.room, from_end=query.page.backwards
        )
    if query.item_ids:
        items = [
            await request.engine.get_item(request.requester, query.node, item_id)
            for item_id in query.item_ids
        ]
        return render_items_by_id(query.node, items, service=request.service, room=request.room)
    page = await request.engine.get_items(
        request.requester, query.node, query.page, parent_only=query.parent_only
    )
    return render_items(
        query.node, page, service=request.service, room=request.room, from_end=query.page.backwards
    )


async def handle_subscribe(request: IqRequest) -> Element:
    subscribe = parse_subscribe(request.payload)
    if subscribe.temporary and not request.edge.online.is_online(request.requester.bare):
        # It ends when the user's last resource goes offline, which only directed
        # presence tells (reference row 29: "only while sending presence").
        raise PresenceRequired(
            "a temporary subscription lasts while you are online: "
            "send presence to the channel service first"
        )
    membership = await request.engine.subscribe(
        request.requester, subscribe.node, subscribe.subscriber, temporary=subscribe.temporary
    )
    return render_subscription(membership, subscribe.node)


async def handle_unsubscribe(request: IqRequest) -> None:
    unsubscribe = parse_unsubscribe(request.payload)
    subscriber = unsubscribe.subscriber or request.requester.bare
    await request.engine.unsubscribe(request.requester, unsubscribe.node, subscriber)


async def handle_subscriptions(request: IqRequest) -> Element:
    """The requester's subscriptions, or a node's subscribers (both namespaces)."""
    query = parse_subscriptions(request.payload)
    if query.node is None:
        mine = await request.engine.user_subscriptions(
            request.requester, query.page, ephemeral=query.ephemeral
        )
        return render_user_subscriptions(mine, room=request.room, from_end=query.page.backwards)
    page = await request.engine.node_subscriptions(request.requester, query.node, query.page)
    return render_node_subscriptions(
        query.namespace, query.node, page, room=request.room, from_end=query.page.backwards
    )


async def handle_affiliations(request: IqRequest) -> Element:
    """The requester's affiliations, or a node's affiliations (both namespaces)."""
    query = parse_affiliations(request.payload)
    if query.node is None:
        mine = await request.engine.user_affiliations(
            request.requester, query.page, ephemeral=query.ephemeral
        )
        return render_user_affiliations(mine, room=request.room, from_end=query.page.backwards)
    page = await request.engine.node_affiliations(request.requester, query.node, query.page)
    return render_node_affiliations(
        query.namespace, query.node, page, room=request.room, from_end=query.page.backwards
    )
