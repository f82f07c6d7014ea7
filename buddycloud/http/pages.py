"""Rendered first pages of nodes' posts, kept until the node changes.

`GET /api/<channel>/content/<node>` without a cursor answers the same body to every reader
the engine lets read the node: the page depends on the node's items and the size asked
for, never on who asks. `PageCache` keeps that body (JSON or Atom) and its paging headers,
so that a read costs the sign-in and the engine's permission check, which still run for
every request, but no page query and no rendering.

It is an engine listener, as the live hub is (`Engine.add_listener`). The engine calls its
listeners after a change has committed and before the change is acknowledged, so every
page of a node that a post, a retraction, a configuration change or a deletion touches is
dropped before the writer hears that the write is done: a read that starts after the
acknowledgement cannot find the old page.

A read that misses renders the page and offers it back. It may have read storage before
a write committed and offer its page after the write's event dropped the node's pages;
each read therefore takes a `Ticket` before it reads, every event about the node spoils
the tickets taken before it, and a page offered with a spoiled ticket is not kept.

Only nodes served from this server's own storage are cached (their changes come through
the engine's events); at most `max_bytes` of bodies are kept, the least recently read go
first. That every change comes through this engine's events holds when this process owns
the storage, as it owns SQLite; a PostgreSQL database may be shared by several processes,
whose writes this one never hears of, so the composition root keeps nothing there
(`max_bytes` 0), as the storage keeps no node contexts there.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from buddycloud.domain.events import (
    ConfigurationChanged,
    Event,
    ItemPublished,
    ItemRetracted,
    NodeDeleted,
)
from buddycloud.domain.model import NodeId, PageRequest

DEFAULT_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PageKey:
    """A cached answer: the node, the page size, and the media type it is rendered in."""

    node: NodeId
    size: int
    media_type: str


@dataclass(frozen=True, slots=True)
class CachedPage:
    body: bytes
    headers: dict[str, str]
    media_type: str


class Ticket:
    """Taken by a read before it reads storage; spoiled by any later change of the node."""

    __slots__ = ("node", "spoiled")

    def __init__(self, node: NodeId) -> None:
        self.node = node
        self.spoiled = False


class PageCache:
    """See the module docstring. `max_bytes` 0 keeps nothing."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pages: OrderedDict[PageKey, CachedPage] = OrderedDict()
        self._by_node: dict[NodeId, set[PageKey]] = {}
        self._reading: dict[NodeId, set[Ticket]] = {}
        self._bytes = 0

    def key(self, node: NodeId, page: PageRequest, media_type: str) -> PageKey | None:
        """The key of a first page; None for a page after or before a cursor, and for
        every page when nothing is kept (`max_bytes` 0)."""
        if self.max_bytes <= 0 or page.after is not None or page.before is not None:
            return None
        if page.last_page:
            return None
        return PageKey(node, page.max, media_type)

    def get(self, key: PageKey) -> CachedPage | None:
        found = self._pages.get(key)
        if found is not None:
            self._pages.move_to_end(key)
        return found

    def ticket(self, node: NodeId) -> Ticket:
        """Take before reading the node's items from storage; hand to `put` or `release`."""
        ticket = Ticket(node)
        self._reading.setdefault(node, set()).add(ticket)
        return ticket

    def release(self, ticket: Ticket) -> None:
        """The read is over (also when it failed)."""
        readers = self._reading.get(ticket.node)
        if readers is not None:
            readers.discard(ticket)
            if not readers:
                del self._reading[ticket.node]

    def put(self, key: PageKey, ticket: Ticket, page: CachedPage) -> None:
        """Keep `page` for `key`, unless the node changed since `ticket` was taken."""
        self.release(ticket)
        if ticket.spoiled or len(page.body) > self.max_bytes:
            return
        self._drop(key)
        self._pages[key] = page
        self._by_node.setdefault(key.node, set()).add(key)
        self._bytes += len(page.body)
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._pages))
            self._drop(oldest)

    def forget(self, node: NodeId) -> None:
        """Drop the node's pages and spoil the reads of it under way."""
        for key in self._by_node.pop(node, ()):
            page = self._pages.pop(key)
            self._bytes -= len(page.body)
        for ticket in self._reading.pop(node, ()):
            ticket.spoiled = True

    def _drop(self, key: PageKey) -> None:
        page = self._pages.pop(key, None)
        if page is None:
            return
        self._bytes -= len(page.body)
        keys = self._by_node[key.node]
        keys.discard(key)
        if not keys:
            del self._by_node[key.node]

    @property
    def size(self) -> int:
        """Bytes of bodies kept."""
        return self._bytes

    async def __call__(self, event: Event) -> None:
        """The engine listener: forget the pages of the nodes an event changed."""
        match event:
            case ItemPublished(node=node) | ItemRetracted(node=node):
                self.forget(node.id)
            case NodeDeleted(node=node_id):
                self.forget(node_id)
            case ConfigurationChanged(nodes=nodes):
                for node_id in nodes:
                    self.forget(node_id)
