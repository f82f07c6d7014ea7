"""A live socket's sending on its own, over a stand-in transport that fills up and pauses
as a real one does: frames written at once while there is room, then queued in order and
sent on when the transport resumes, and a client too slow for the bounded queue closed
without holding up anyone else. (Through a real uvicorn: tests/http/test_websocket.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from buddycloud.domain.events import ItemPublished
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NS_ATOM, Entry, Item, Node, NodeId
from buddycloud.http.auth import Requester
from buddycloud.http.live import LiveHub, frame_text
from buddycloud.http.websocket import (
    CLOSE_TOO_SLOW,
    FRAMES_EXTENSION,
    LiveSocket,
    SocketSettings,
)

JULIET = Jid.parse("juliet@capulet.lit")
ROMEO = Jid.parse("romeo@capulet.lit")
WHEN = datetime(2024, 1, 1, tzinfo=UTC)
POSTS = NodeId(JULIET, "posts")


class Transport:
    """A `FrameWriter` whose buffer holds `room` bytes before it pauses."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.paused = False
        self.open = True
        self.sent: list[dict[str, Any]] = []
        self.resumed: Callable[[], None] | None = None

    def frames_open(self) -> bool:
        return self.open

    def frames_paused(self) -> bool:
        return self.paused

    def write_frame(self, frame: bytes) -> None:
        assert self.open and not self.paused, "written to a transport that cannot take it"
        self.sent.append(json.loads(frame_text(frame)))
        self.room -= len(frame)
        self.paused = self.room <= 0

    def on_resume(self, callback: Callable[[], None] | None) -> None:
        self.resumed = callback

    def drain(self, room: int) -> None:
        """The client read: room again, and the transport says so."""
        self.room, self.paused = room, False
        assert self.resumed is not None
        self.resumed()

    def contents(self) -> list[str]:
        return [m["entry"]["content"] for m in self.sent if m["type"] == "post"]


class StandInSocket:
    """The Starlette websocket a `LiveSocket` is given: its scope offers the transport."""

    def __init__(self, transport: Transport) -> None:
        self.scope = {"type": "websocket", "extensions": {FRAMES_EXTENSION: {"writer": transport}}}
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": code})


@asynccontextmanager
async def connected(
    hub: LiveHub, jid: Jid, transport: Transport, queue: int = 256, cursor: str | None = None
) -> AsyncIterator[StandInSocket]:
    ws = StandInSocket(transport)
    socket = LiveSocket(
        ws,  # type: ignore[arg-type]
        Requester(jid, anonymous=False),
        hub,
        app=None,  # type: ignore[arg-type]
        settings=SocketSettings(send_queue=queue),
    )
    serving = asyncio.get_running_loop().create_task(socket.run(cursor))
    while not transport.sent:  # the welcome
        await asyncio.sleep(0)
    try:
        yield ws
    finally:
        ws.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(serving, 5)


def publish(hub: LiveHub, text: str, *audience: Jid) -> None:
    entry = Entry(f"id-{text}", "", text, "text", JULIET, WHEN, WHEN)
    item = Item(POSTS, f"id-{text}", JULIET, WHEN, WHEN, entry)
    hub.publish(ItemPublished(Node(POSTS, NS_ATOM, None, WHEN), item, audience))


async def test_frames_go_out_at_once_then_wait_in_order_while_the_transport_is_full() -> None:
    hub = LiveHub()
    transport = Transport(room=1000)
    async with connected(hub, ROMEO, transport):
        letter = "x" * 400
        for number in range(6):
            publish(hub, f"{number} {letter}", ROMEO)
        written_at_once = transport.contents()
        transport.drain(room=1000)
        after_one_read = transport.contents()
        transport.drain(room=100_000)
        publish(hub, "live", ROMEO)

    everything = [f"{n} {letter}" for n in range(6)]
    # A prefix while there was room, a longer one after each read, all of it in order.
    assert 0 < len(written_at_once) < len(after_one_read) < 6
    assert written_at_once == everything[: len(written_at_once)]
    assert after_one_read == everything[: len(after_one_read)]
    assert transport.contents() == [*everything, "live"]


async def test_a_replay_paused_in_the_middle_goes_on_in_order_before_what_came_after() -> None:
    hub = LiveHub(first_cursor=0)
    publish(hub, "seen", ROMEO)
    for number in range(10):
        publish(hub, f"missed {number} " + "x" * 300, ROMEO)
    transport = Transport(room=600)
    async with connected(hub, ROMEO, transport, cursor="1"):
        publish(hub, "live", ROMEO)
        while transport.paused:
            transport.drain(room=600)

    assert [c.split(" x")[0] for c in transport.contents()] == [
        *(f"missed {n}" for n in range(10)),
        "live",
    ]
    kinds = [message["type"] for message in transport.sent]
    assert kinds == ["welcome", *["post"] * 10, "resumed", "post"]


async def test_a_client_too_slow_for_the_queue_is_closed_and_the_others_are_served() -> None:
    hub = LiveHub()
    stalled, reading = Transport(room=1000), Transport(room=10**9)
    async with (
        connected(hub, ROMEO, stalled, queue=4) as romeo,
        connected(hub, JULIET, reading) as juliet,
    ):
        for number in range(10):
            publish(hub, f"{number} " + "x" * 400, ROMEO, JULIET)
        for _ in range(100):
            if romeo.closed is not None:
                break
            await asyncio.sleep(0)

    assert romeo.closed == (CLOSE_TOO_SLOW, "too slow: messages were not read")
    assert juliet.closed is None
    assert len(reading.contents()) == 10
    # What the transport had taken before it paused; nothing after.
    assert 0 < len(stalled.contents()) < 10
    assert hub.connected == 0


async def test_a_connection_gone_under_the_socket_takes_nothing_more() -> None:
    hub = LiveHub()
    transport = Transport(room=10**9)
    async with connected(hub, ROMEO, transport):
        publish(hub, "one", ROMEO)
        transport.open = False  # the client closed; the receive loop has not heard yet
        publish(hub, "two", ROMEO)
        publish(hub, "three", ROMEO)

    assert transport.contents() == ["one"]
