"""Live events through the client: typed events, sign-in failures, and reconnecting
through a connection that drops, with every event arriving exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from http_support import DOMAIN, PASSWORD, Server

from buddycloud.client import (
    AccessModel,
    Client,
    ConfigurationEvent,
    Event,
    FollowRequestEvent,
    LiveClosed,
    LiveEvents,
    PostEvent,
    Resync,
    RetractEvent,
    Subscription,
    SubscriptionEvent,
)

JULIET = f"juliet@{DOMAIN}"
ROMEO = f"romeo@{DOMAIN}"


async def next_of(events: LiveEvents, kind: type[Event], timeout: float = 10.0) -> Event:
    """The next event of `kind`, skipping others."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        event = await events.next(max(deadline - asyncio.get_running_loop().time(), 0.001))
        if isinstance(event, kind):
            return event


async def test_posts_retractions_and_settings_arrive_as_typed_events(
    juliet: Client, romeo: Client
) -> None:
    await romeo.follow(JULIET)
    async with romeo.events() as events:
        assert events.jid == ROMEO and events.cursor is not None
        post = await juliet.publish(JULIET, "It is the east")
        arrived = await next_of(events, PostEvent)
        assert isinstance(arrived, PostEvent)
        assert (arrived.channel, arrived.node, arrived.update) == (JULIET, "posts", False)
        assert (arrived.post.id, arrived.post.content) == (post.id, "It is the east")
        assert arrived.post.source == f"{JULIET}/posts"
        assert events.cursor == arrived.cursor

        await juliet.retract(JULIET, post.id)
        retracted = await next_of(events, RetractEvent)
        assert isinstance(retracted, RetractEvent) and retracted.id == post.id

        await juliet.configure(JULIET, title="Juliet")
        configured = await next_of(events, ConfigurationEvent)
        assert isinstance(configured, ConfigurationEvent)
        assert configured.metadata.title == "Juliet"


async def test_an_owner_hears_of_follow_requests_and_approves_them(
    juliet: Client, romeo: Client
) -> None:
    await juliet.configure(JULIET, access_model=AccessModel.AUTHORIZE)
    async with juliet.events() as events:
        await romeo.follow(JULIET)
        asked = await next_of(events, FollowRequestEvent)
        assert isinstance(asked, FollowRequestEvent)
        assert (asked.channel, asked.node, asked.jid) == (JULIET, "posts", ROMEO)
        await juliet.approve(asked.channel, asked.jid)
        while True:
            changed = await next_of(events, SubscriptionEvent)
            assert isinstance(changed, SubscriptionEvent) and changed.jid == ROMEO
            if changed.subscription == Subscription.SUBSCRIBED:
                break


async def test_wrong_credentials_end_the_events_without_reconnecting(server: Server) -> None:
    async with Client(server.url, username="romeo", password="not-his") as wrong:
        events = wrong.events(reconnect_delay=0.01)
        with pytest.raises(LiveClosed) as refused:
            await events.connect()
        assert (refused.value.code, refused.value.error) == (4401, "not-authorized")
        with pytest.raises(StopAsyncIteration):
            await events.__anext__()


async def test_a_cursor_the_server_no_longer_keeps_gives_resync_then_live_events(
    juliet: Client, romeo: Client
) -> None:
    await romeo.follow(JULIET)
    async with romeo.events(cursor=1) as events:
        resync = await events.next(10)
        assert isinstance(resync, Resync) and resync.cursor > 1
        post = await juliet.publish(JULIET, "after the resync")
        arrived = await next_of(events, PostEvent)
        assert isinstance(arrived, PostEvent) and arrived.post.id == post.id


class Cable:
    """A TCP forwarder between the client and the server that a test can cut: every
    open connection is dropped at once, and while it is unplugged new ones are refused."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.plugged = True
        self.accepted = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.plugged:
            writer.transport.abort()
            return
        self.accepted += 1
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer),
            self._pipe(upstream_reader, writer),
            return_exceptions=True,
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()
            self._writers.discard(writer)

    def cut(self) -> None:
        """Drop every connection without a close frame, as a failing network does."""
        self.plugged = False
        for writer in list(self._writers):
            writer.transport.abort()

    def plug(self) -> None:
        self.plugged = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def cable(server: Server) -> AsyncIterator[Cable]:
    forwarder = Cable(server.app.http.port)
    await forwarder.start()
    try:
        yield forwarder
    finally:
        await forwarder.close()


async def test_a_dropped_connection_resumes_with_every_event_exactly_once(
    server: Server, juliet: Client
) -> None:
    """The connection is cut while Juliet posts, stays down for a while she goes on
    posting, and comes back: Romeo gets each of her posts once, in order."""
    total, cut_after, down_for = 40, 10, 10
    async with cable(server) as line:
        url = f"http://127.0.0.1:{line.port}"
        async with Client(url, username="romeo", password=PASSWORD) as romeo:
            await romeo.follow(JULIET)
            received: list[str] = []
            published: list[str] = []
            seen_enough = asyncio.Event()
            posted_while_down = asyncio.Event()

            async def post_all() -> None:
                for n in range(total):
                    if n == cut_after:
                        await seen_enough.wait()  # Romeo has the first ones: cut now
                        line.cut()
                    if n == cut_after + down_for:
                        posted_while_down.set()
                        line.plug()
                    published.append((await juliet.publish(JULIET, f"post {n}")).id)

            async with romeo.events(reconnect_delay=0.02, max_reconnect_delay=0.2) as events:
                posting = asyncio.create_task(post_all())
                try:
                    while len(received) < total:
                        event = await events.next(20)
                        if isinstance(event, PostEvent):
                            received.append(event.post.id)
                            if len(received) == cut_after:
                                seen_enough.set()
                    await posting
                    # Nothing comes twice: the next event is a new post, not an old one.
                    extra = await juliet.publish(JULIET, "one more")
                    after = await next_of(events, PostEvent)
                finally:
                    posting.cancel()
                assert isinstance(after, PostEvent) and after.post.id == extra.id
                assert posted_while_down.is_set()
                assert events.connections >= 2
    assert received == published
    assert line.accepted >= 2
