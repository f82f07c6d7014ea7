"""Buddycloud extensions in namespace http://buddycloud.org/v1 (reference rows 18-22, 31)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.stanzas import (
    parse_recent_items,
    parse_replies,
    parse_subscriptions_with_configuration,
    parse_thread,
    parse_threads,
    parse_user_items,
    render_grouped_items,
    render_items,
    render_subscriptions_with_configuration,
    render_threads,
)


async def handle_recent_items(request: IqRequest) -> Element:
    """ProtoXEP 6.1.1: new posts of the followed channels, grouped by node (example 8)."""
    query = parse_recent_items(request.payload)
    page = await request.engine.recent_items(
        request.requester,
        since=query.since,
        max_per_node=query.max_per_node,
        parent_only=query.parent_only,
        page=query.page,
    )
    return render_grouped_items(
        page, service=request.service, room=request.room, from_end=query.page.backwards
    )


async def handle_user_items(request: IqRequest) -> Element:
    query = parse_user_items(request.payload)
    page = await request.engine.user_items(
        request.requester, since=query.since, parent_only=query.parent_only, page=query.page
    )
    return render_grouped_items(
        page, service=request.service, room=request.room, from_end=query.page.backwards
    )


async def handle_replies(request: IqRequest) -> Element:
    query = parse_replies(request.payload)
    page = await request.engine.get_replies(
        request.requester, query.node, query.item_id, query.page
    )
    return render_items(
        query.node, page, service=request.service, room=request.room, from_end=query.page.backwards
    )


async def handle_thread(request: IqRequest) -> Element:
    query = parse_thread(request.payload)
    page = await request.engine.get_thread(request.requester, query.node, query.item_id, query.page)
    return render_items(
        query.node, page, service=request.service, room=request.room, from_end=query.page.backwards
    )


async def handle_threads(request: IqRequest) -> Element:
    query = parse_threads(request.payload)
    page = await request.engine.get_threads(request.requester, query.node, query.page)
    return render_threads(
        page, service=request.service, room=request.room, from_end=query.page.backwards
    )


async def handle_subscriptions_with_configuration(request: IqRequest) -> Element:
    """ProtoXEP 7.1: subscriptions and configurations in one round trip."""
    query = parse_subscriptions_with_configuration(request.payload)
    page = await request.engine.subscriptions_with_configuration(
        request.requester, query.filters, query.page
    )
    return render_subscriptions_with_configuration(
        page, query.allowed_fields, room=request.room, from_end=query.page.backwards
    )
