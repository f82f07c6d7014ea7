"""JSON and Atom renderings of the engine's values (reference 9.1 "Entry JSON", 9.2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.responses import Response

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
from buddycloud.domain.model import (
    Channel,
    ChannelConfig,
    Item,
    Membership,
    NodeId,
    Page,
    RawPayload,
    Thread,
)
from buddycloud.domain.times import format_datetime
from buddycloud.wire.atom import XML_DECLARATION, FeedPage, feed_text, item_entry_text, media_of
from buddycloud.wire.namespaces import NS_ATOM
from buddycloud.wire.xml import escape_text, quote_attribute

ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"


def entry_json(item: Item) -> dict[str, Any]:
    """`{id, author, published, updated, content, media, replyTo?}` of an item.

    `media` is the list of `{id, channel}` the entry names, or null. An item of another
    payload (geolocation, keys) has `content` null and its XML in `payload`.
    """
    entry = item.entry
    media = media_of(entry) if entry is not None else None
    rendered: dict[str, Any] = {
        "id": item.id,
        "author": str(item.author),
        "published": format_datetime(item.published),
        "updated": format_datetime(item.updated),
        "content": entry.content if entry is not None else None,
        "media": None if media is None else [{"id": m.id, "channel": m.channel} for m in media],
    }
    if item.in_reply_to is not None:
        rendered["replyTo"] = item.in_reply_to
    if isinstance(item.payload, RawPayload):
        rendered["payload"] = item.payload.xml
    return rendered


def entries_json(items: list[Item]) -> list[dict[str, Any]]:
    """Live items as entries; retracted posts (tombstones) are left out."""
    return [entry_json(item) for item in items if not item.deleted]


def thread_json(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.id,
        "updated": format_datetime(thread.updated),
        "items": entries_json(list(thread.items)),
    }


def source_of(node: NodeId) -> str:
    """`<channel>/<node>`: where an entry comes from, in notifications (reference 9.1)."""
    return f"{node.channel}/{node.name}"


def notification_entry_json(item: Item) -> dict[str, Any]:
    """An item as a notification carries it: its entry JSON with `source`; a payload the
    server does not interpret (an application node's) as `payload`, its XML."""
    rendered = entry_json(item)
    rendered["source"] = source_of(item.node)
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


def membership_value(membership: Membership) -> str:
    """Reference row 16: the role, unless the follow is not (yet) accepted (`pending`,
    `invited`), which then stands instead."""
    if membership.subscription.value in ("pending", "invited"):
        return membership.subscription.value
    return membership.role.value


def channel_search_json(channel: Channel) -> dict[str, Any]:
    """Reference row 28, a metadata search result."""
    config = channel.config
    return {
        "jid": str(channel.jid),
        "title": config.title,
        "description": config.description,
        "creationDate": format_datetime(config.created),
        "channelType": config.channel_type.value,
        "defaultAffiliation": config.default_role.value,
    }


def content_search_json(item: Item) -> dict[str, Any]:
    """Reference row 28, a content search result: the post, the node it is in
    (`parent_fullid`) and that node's channel (`parent_simpleid`)."""
    entry = item.entry
    return {
        "id": item.id,
        "author": str(item.author),
        "content": entry.content if entry is not None else None,
        "published": format_datetime(item.published),
        "updated": format_datetime(item.updated),
        "parent_fullid": str(item.node),
        "parent_simpleid": str(item.node.channel),
        "in_reply_to": item.in_reply_to,
    }


# Printable ASCII but `%` stays as it is in a header; anything else is percent-encoded.
_HEADER_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")


def header_text(value: str) -> str:
    """`value` as a header value: percent-encoded (UTF-8) where it holds characters outside
    printable ASCII, or `%`; unchanged otherwise, as most cursors are."""
    return quote(value, safe=_HEADER_SAFE)


def page_headers(page: Page[Any]) -> dict[str, str]:
    """XEP-0059 `first`, `last` and `count` of a page whose body is a plain JSON array."""
    headers = {"X-Count": str(page.count)}
    if page.first is not None:
        headers["X-First"] = header_text(page.first)
    if page.last is not None:
        headers["X-Last"] = header_text(page.last)
    return headers


def channel_path(node: NodeId) -> str:
    return f"/api/{quote(str(node.channel), safe='@')}"


def content_path(node: NodeId) -> str:
    return f"{channel_path(node)}/content/{quote(node.name, safe='')}"


def item_path(node: NodeId, item_id: str) -> str:
    """Where an item is read: the `Location` of a new post (reference row 9)."""
    return f"{content_path(node)}/{quote(item_id, safe='')}"


def atom_response(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(text, status, headers=headers, media_type=ATOM_MEDIA_TYPE)


def atom_entry(item: Item, *, service: str) -> str:
    return XML_DECLARATION + item_entry_text(item, service=service)


def atom_feed(node: NodeId, page: Page[Item], *, service: str, size: int) -> str:
    """A page of a node as an Atom feed whose links name the pages beside it."""
    base = content_path(node)

    def link(**query: str) -> str:
        return f"{base}?{urlencode({'max': str(size), **query})}"

    live = [item for item in page.items if not item.deleted]
    position = FeedPage(
        page.first,
        page.last,
        page.count,
        next_href=link(after=page.last) if page.last is not None else None,
        previous_href=link(before=page.first) if page.first is not None else None,
    )
    return feed_text(
        live,
        service=service,
        node=node,
        page=position,
        self_href=base,
        updated=datetime.now(UTC),
    )


NOTIFICATIONS_PATH = "/api/notifications/posts"


def notifications_feed(
    items: list[Item], *, service: str, last: datetime, last_ms: int | float
) -> str:
    """The long-poll's answer as Atom (reference row 27): its posts oldest first, each
    entry's id naming its node; titled after the first post's node as the original API
    did. `last` (milliseconds) is in the `next` link: where the next poll starts."""
    if items:
        first = items[0].node
        title = f"{first.channel} {first.name}"
        feed_id = f"xmpp:{service}?pubsub;action=retrieve;node={first}"
    else:
        title = "new posts"
        feed_id = f"xmpp:{service}?pubsub;action=retrieve"
    parts = [
        XML_DECLARATION,
        f'<feed xmlns="{NS_ATOM}">',
        f"<title>{escape_text(title)}</title>",
        f"<id>{escape_text(feed_id)}</id>",
        f"<updated>{format_datetime(last)}</updated>",
        f'<link rel="self" href={quote_attribute(NOTIFICATIONS_PATH)}/>',
        f'<link rel="next" href={quote_attribute(f"{NOTIFICATIONS_PATH}?since={last_ms}")}/>',
        *(item_entry_text(item, service=service) for item in items),
        "</feed>",
    ]
    return "".join(parts)
