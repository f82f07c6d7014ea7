"""JSON renderings of the engine's values (reference 9.1 "Entry JSON")."""

from __future__ import annotations

from typing import Any

from buddycloud.domain.model import Item, Page
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


def page_headers(page: Page[Any]) -> dict[str, str]:
    """XEP-0059 `first`, `last` and `count` of a page whose body is a plain JSON array."""
    headers = {"X-Count": str(page.count)}
    if page.first is not None:
        headers["X-First"] = page.first
    if page.last is not None:
        headers["X-Last"] = page.last
    return headers
