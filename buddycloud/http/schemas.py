"""JSON renderings of the engine's values (reference 9.1 "Entry JSON")."""

from __future__ import annotations

from typing import Any

from buddycloud.domain.events import (
    AuthorizationRequested,
    ConfigurationChanged,
    Event,
    ItemPublished,
    ItemRetracted,
    NodeDeleted,
    RoleChanged,
    SubscriptionChanged,
)
from buddycloud.domain.model import ChannelConfig, Item, NodeId, Page, RawPayload
from buddycloud.domain.times import format_datetime


def entry_json(item: Item) -> dict[str, Any]:
    """`{id, author, published, updated, content, media, replyTo?}` of an item."""
    entry = item.entry
    rendered: dict[str, Any] = {
        "id": item.id,
        "author": str(item.author),
        "published": format_datetime(item.published),
        "updated": format_datetime(item.updated),
        "content": entry.content if entry is not None else None,
        "media": None,
    }
    if item.in_reply_to is not None:
        rendered["replyTo"] = item.in_reply_to
    return rendered


def source_of(node: NodeId) -> str:
    """`<channel>/<node>`: where an entry comes from, in notifications (reference 9.1)."""
    return f"{node.channel}/{node.name}"


def notification_entry_json(item: Item) -> dict[str, Any]:
    """An item as a notification carries it: its entry JSON with `source`; a payload the
    server does not interpret (an application node's) as `payload`, its XML."""
    rendered = entry_json(item)
    rendered["source"] = source_of(item.node)
    if isinstance(item.payload, RawPayload):
        rendered["payload"] = item.payload.xml
    return rendered


def metadata_json(config: ChannelConfig) -> dict[str, Any]:
    """A channel's metadata as `GET /api/<channel>/metadata/<node>` answers it (row 14)."""
    return {
        "title": config.title,
        "description": config.description,
        "access_model": config.access_model.value,
        "creation_date": format_datetime(config.created),
        "channel_type": config.channel_type.value,
        "default_affiliation": config.default_role.value,
    }


def event_json(event: Event) -> dict[str, Any] | None:
    """A domain event as a live message (docs/websocket.md), without its `cursor`; None
    for an event that tells HTTP clients nothing (a retraction published without notify).
    """
    match event:
        case ItemPublished(node=node, item=item, is_update=update):
            return {
                "type": "post",
                "channel": str(node.id.channel),
                "node": node.id.name,
                "update": update,
                "entry": notification_entry_json(item),
            }
        case ItemRetracted(node=node, tombstone=tombstone, notify=notify):
            if not notify:
                return None
            return {
                "type": "retract",
                "channel": str(node.id.channel),
                "node": node.id.name,
                "id": tombstone.id,
            }
        case SubscriptionChanged(channel=channel, membership=membership):
            rendered: dict[str, Any] = {
                "type": "subscription",
                "channel": str(channel.jid),
                "jid": str(membership.jid),
                "subscription": membership.subscription.value,
            }
            if membership.invited_by is not None:
                rendered["invitedBy"] = str(membership.invited_by)
            return rendered
        case RoleChanged(channel=channel, membership=membership):
            return {
                "type": "affiliation",
                "channel": str(channel.jid),
                "jid": str(membership.jid),
                "affiliation": membership.role.value,
            }
        case ConfigurationChanged(channel=channel, nodes=nodes):
            return {
                "type": "configuration",
                "channel": str(channel.jid),
                "nodes": [node.name for node in nodes],
                "metadata": metadata_json(channel.config),
            }
        case NodeDeleted(node=node):
            return {"type": "node-deleted", "channel": str(node.channel), "node": node.name}
        case AuthorizationRequested(channel=channel, node=node, subscriber=subscriber):
            return {
                "type": "follow-request",
                "channel": str(channel.jid),
                "node": node.name,
                "jid": str(subscriber),
            }
    return None


def page_headers(page: Page[Any]) -> dict[str, str]:
    """XEP-0059 `first`, `last` and `count` of a page whose body is a plain JSON array."""
    headers = {"X-Count": str(page.count)}
    if page.first is not None:
        headers["X-First"] = page.first
    if page.last is not None:
        headers["X-Last"] = page.last
    return headers
