"""Live events for HTTP clients: the engine's events, rendered once, fanned out in memory.

`LiveHub` is an engine listener (`Engine.add_listener`). Each event is rendered to its JSON
message once, whatever the number of recipients, given the next *cursor* (an integer that
only grows), encoded once as the websocket frame every connection is sent, kept in a bounded
ring of recent events, and handed to the sinks (websockets, long-polls) of the users in the
event's audience, which the engine computed. Fan-out is dictionary lookups: no storage
access, no rendering and no encoding per recipient. The set of an audience is built once
for as long as the engine hands over the same audience (storage keeps a channel's audience
on SQLite until its memberships change), so that a post to a channel of 10,000 followers
does not hash 10,000 addresses.

Cursors start from the clock in microseconds when the hub is made, so they keep growing
across restarts of the server, and a cursor from before a restart is recognised as older
than anything kept. They stay below 2**53, so JavaScript clients hold them exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from buddycloud.domain.events import Event, ItemPublished
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import Entry, Item
from buddycloud.http.schemas import event_json

DEFAULT_REPLAY_EVENTS = 10_000
# The ring also stops growing when the audiences of the events it keeps add up to this
# many recipients, so that events for very large channels cannot hold unbounded memory.
MAX_REPLAY_RECIPIENTS = 500_000
# Audiences whose sets are kept, newest last (one per channel that posts often).
AUDIENCE_SETS = 64


@dataclass(frozen=True, slots=True, eq=False)
class LiveEvent:
    """One event as HTTP clients get it.

    Attributes:
        cursor: its place in the sequence of events.
        kind: the message's `type` (docs/websocket.md).
        audience: who may see it.
        frame: the websocket message, JSON with `cursor`, as the text frame sent to every
            connection (`text_frame`).
        entry: for a new or updated Atom entry, its JSON with `source` (the long-poll's
            items); None for every other event.
        updated: the entry's `updated` time, when there is an entry.
        item: the item of that entry, for the long-poll's Atom answer.
    """

    cursor: int
    kind: str
    audience: frozenset[Jid]
    frame: bytes
    entry: dict[str, Any] | None = None
    updated: datetime | None = None
    item: Item | None = None

    @property
    def text(self) -> str:
        """The websocket message, JSON."""
        return frame_text(self.frame)


def text_frame(text: str) -> bytes:
    """`text` as one unmasked, final websocket text frame (RFC 6455 5.2), as a server
    sends it."""
    data = text.encode()
    size = len(data)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + data


def frame_text(frame: bytes) -> str:
    """The text of a frame made by `text_frame`."""
    size = frame[1]
    start = 2 if size < 126 else 4 if size == 126 else 10
    return frame[start:].decode()


class Sink(Protocol):
    """Where a user's live events go: a websocket, a waiting long-poll."""

    def deliver(self, event: LiveEvent) -> None:
        """Take one event; must not block or raise, and must not connect or disconnect
        sinks while being called."""


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class LiveHub:
    """The HTTP edge's engine listener. Construct once per server; see the module doc."""

    def __init__(
        self,
        replay_events: int = DEFAULT_REPLAY_EVENTS,
        *,
        max_replay_recipients: int = MAX_REPLAY_RECIPIENTS,
        first_cursor: int | None = None,
    ) -> None:
        start = first_cursor if first_cursor is not None else time.time_ns() // 1000
        self._cursor = start
        # Every event with a cursor above `_floor` is still in the ring.
        self._floor = start
        self._ring: deque[LiveEvent] = deque()
        self._ring_recipients = 0
        self._replay_events = replay_events
        self._max_recipients = max_replay_recipients
        self._sinks: dict[Jid, list[Sink]] = {}
        # id(audience) -> (the audience, its set): the tuple is held so that its id
        # cannot name another object while it is here.
        self._sets: dict[int, tuple[tuple[Jid, ...], frozenset[Jid]]] = {}
        self.connected = 0
        self.events = 0
        self.deliveries = 0

    @property
    def cursor(self) -> int:
        """The cursor of the newest event (or the starting point, before the first)."""
        return self._cursor

    async def __call__(self, event: Event) -> None:
        self.publish(event)

    def publish(self, event: Event) -> LiveEvent | None:
        """Render `event`, keep it for replay and deliver it to its audience's sinks."""
        message = event_json(event)
        if message is None:
            return None
        self._cursor += 1
        cursor = self._cursor
        entry: dict[str, Any] | None = None
        updated: datetime | None = None
        item: Item | None = None
        if (
            isinstance(event, ItemPublished)
            and isinstance(event.item.payload, Entry)
            and not event.item.deleted
        ):
            entry = message["entry"]
            updated = event.item.updated
            item = event.item
        kind = message.pop("type")
        frame = text_frame(dumps({"type": kind, "cursor": cursor, **message}))
        live = LiveEvent(cursor, kind, self._set_of(event.audience), frame, entry, updated, item)
        self.events += 1
        self._keep(live)
        self._fan_out(live)
        return live

    def _set_of(self, audience: tuple[Jid, ...]) -> frozenset[Jid]:
        """The set of `audience`, built once for the same tuple."""
        kept = self._sets.get(id(audience))
        if kept is not None and kept[0] is audience:
            return kept[1]
        members = frozenset(audience)
        # Only a tuple cannot change behind the kept set; small ones cost less to build
        # than to keep.
        if type(audience) is tuple and len(audience) >= 64:
            sets = self._sets
            sets.pop(id(audience), None)
            if len(sets) >= AUDIENCE_SETS:
                del sets[next(iter(sets))]
            sets[id(audience)] = (audience, members)
        return members

    def _keep(self, live: LiveEvent) -> None:
        if self._replay_events == 0:
            self._floor = live.cursor
            return
        self._ring.append(live)
        self._ring_recipients += len(live.audience)
        while self._ring and (
            len(self._ring) > self._replay_events or self._ring_recipients > self._max_recipients
        ):
            gone = self._ring.popleft()
            self._ring_recipients -= len(gone.audience)
            self._floor = gone.cursor

    def _fan_out(self, live: LiveEvent) -> None:
        sinks = self._sinks
        audience = live.audience
        delivered = 0
        recipients: Iterable[list[Sink]]
        if len(audience) <= len(sinks):
            recipients = [found for jid in audience if (found := sinks.get(jid)) is not None]
        else:
            recipients = [found for jid, found in sinks.items() if jid in audience]
        for found in recipients:
            for sink in found:
                sink.deliver(live)
                delivered += 1
        self.deliveries += delivered

    # --- sinks ------------------------------------------------------------------------------

    def connect(self, jid: Jid, sink: Sink) -> None:
        """Deliver `jid`'s events to `sink` from now on."""
        self._sinks.setdefault(jid, []).append(sink)
        self.connected += 1

    def disconnect(self, jid: Jid, sink: Sink) -> None:
        """Stop delivering to `sink`; a sink not connected is ignored."""
        found = self._sinks.get(jid)
        if found is None or sink not in found:
            return
        found.remove(sink)
        self.connected -= 1
        if not found:
            del self._sinks[jid]

    def missed(self, jid: Jid, after: int, until: int | None = None) -> list[LiveEvent] | None:
        """`jid`'s events with a cursor above `after` (and up to `until`), oldest first.

        None when some of them are no longer kept, or `after` is no cursor of this hub (from
        before a restart, or from the future): the caller must reload its state instead.
        """
        if after < self._floor or after > self._cursor:
            return None
        found: list[LiveEvent] = []
        for live in reversed(self._ring):
            if live.cursor <= after:
                break
            if (until is None or live.cursor <= until) and jid in live.audience:
                found.append(live)
        found.reverse()
        return found


class PostWaiter:
    """A long-poll waiting for new posts of one user: a sink that keeps entries only."""

    __slots__ = ("_arrived", "events")

    def __init__(self) -> None:
        self.events: list[LiveEvent] = []
        self._arrived = asyncio.Event()

    def deliver(self, event: LiveEvent) -> None:
        if event.entry is not None:
            self.events.append(event)
            self._arrived.set()

    async def wait(self, seconds: float) -> list[LiveEvent]:
        """The posts delivered so far, waiting up to `seconds` for the first."""
        if not self.events:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), seconds)
        return self.events
