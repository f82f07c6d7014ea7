"""XEP-0060 owner operations (reference rows 11-13, 25, 28)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.stanzas import (
    parse_affiliations_set,
    parse_configure_get,
    parse_configure_set,
    parse_delete,
    parse_subscriptions_set,
    render_configure,
)


async def handle_configure_get(request: IqRequest) -> Element:
    query = parse_configure_get(request.payload)
    view = await request.engine.get_node_view(request.requester, query.node)
    return render_configure(view)


async def handle_configure_set(request: IqRequest) -> None:
    change = parse_configure_set(request.payload)
    await request.engine.configure(request.requester, change.node, change.update)


async def handle_delete(request: IqRequest) -> None:
    await request.engine.delete_node(request.requester, parse_delete(request.payload).node)


async def handle_subscriptions_set(request: IqRequest) -> None:
    """Approve, deny, kick or invite; every change is checked before any is applied."""
    change = parse_subscriptions_set(request.payload)
    await request.engine.set_subscriptions(request.requester, change.node, change.changes)


async def handle_affiliations_set(request: IqRequest) -> None:
    change = parse_affiliations_set(request.payload)
    await request.engine.set_roles(request.requester, change.node, change.changes)
