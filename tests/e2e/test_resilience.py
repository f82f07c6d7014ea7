"""Failures of the real parts: the XMPP server restarts, the channel server is killed,
the component's connection to the XMPP server breaks.

These tests stop and start the session's Prosody and server; each leaves both running.
"""

from __future__ import annotations

import asyncio

from e2e.conftest import Connect, XmppServer
from e2e.harness import (
    TOPICS_DOMAIN,
    Client,
    ServerProcess,
    another_server,
    create,
    entry,
    has_item,
    item_ids,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
    subscribe,
    topic,
)


async def test_the_component_reconnects_after_the_xmpp_server_restarts(
    connect: Connect, xmpp_server: XmppServer, server: ServerProcess, unique: str
) -> None:
    juliet = await connect("juliet")
    node = posts(juliet.bare)
    reply = await juliet.ok("set", publish(node, entry(f"before the restart {unique}")))
    before = local_id(published_id(reply))

    await asyncio.to_thread(xmpp_server.restart)
    # The probe gets an answer from the component only once it has reconnected by itself.
    await server.wait_ready(timeout=30)

    juliet_again = await connect("juliet", resource="after")
    reply = await juliet_again.ok("set", publish(node, entry(f"after the restart {unique}")))
    after = local_id(published_id(reply))
    fetched = await juliet_again.ok("get", items_request(node, max_items=20))
    assert {before, after} <= set(item_ids(fetched))


async def test_every_acknowledged_publish_survives_kill_9(
    connect: Connect, server: ServerProcess, unique: str
) -> None:
    """SIGKILL the server while one client has many publishes in flight.

    Whatever the server acknowledged must be there after a restart: a result is only sent
    once the item is durably stored.
    """
    juliet: Client = await connect("juliet")
    node = posts(f"durable-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node, {"pubsub#max_items": "0"}))

    total, in_flight, kill_after = 600, 64, 150
    acknowledged: list[str] = []
    refused = 0
    enough = asyncio.Event()
    window = asyncio.Semaphore(in_flight)

    async def one(n: int) -> None:
        nonlocal refused
        async with window:
            reply = await juliet.iq("set", publish(node, entry(f"burst {n} {unique}")), timeout=5.0)
        if reply.ok:
            acknowledged.append(local_id(published_id(reply)))
            if len(acknowledged) >= kill_after:
                enough.set()
        else:
            refused += 1  # the server is gone: Prosody answers for it

    async def guarded(n: int) -> None:
        try:
            await one(n)
        except AssertionError:
            pass  # no reply at all: in flight when the server died; not acknowledged

    burst = [asyncio.ensure_future(guarded(n)) for n in range(total)]
    try:
        await asyncio.wait_for(enough.wait(), 60)
        server.kill()
        killed_with = len(acknowledged)
        await asyncio.gather(*burst)
    finally:
        for task in burst:
            task.cancel()
        if not server.running:
            await asyncio.to_thread(server.start)

    assert killed_with >= kill_after
    assert refused > 0 or len(acknowledged) < total, "the kill happened after the burst ended"

    juliet_again = await connect("juliet", resource="after-kill")
    missing = []
    for item_id in acknowledged:
        reply = await juliet_again.iq("get", items_request(node, item_id=item_id))
        if not reply.ok:
            missing.append((item_id, reply.condition))
    assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged items lost"


class ComponentProxy:
    """Relays the component's connections to the XMPP server's component port, and can
    break one: `cut_after(marker)` ends the component's connection right after relaying
    the data that holds `marker`. The component then reads that request and the end of
    its stream; what it still writes on the broken connection is relayed until it closes
    it, and it reconnects through the proxy."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.upstream_port = port
        self.port = 0
        self.connections = 0
        self.cut = asyncio.Event()
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut_after(self, marker: str) -> None:
        self._marker = marker.encode()

    async def _serve(
        self, from_component: asyncio.StreamReader, to_component: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        from_server, to_server = await asyncio.open_connection(self.host, self.upstream_port)
        self._writers += [to_component, to_server]

        async def down() -> None:  # XMPP server -> component
            seen = b""
            while data := await from_server.read(65536):
                to_component.write(data)
                marker = self._marker
                seen = (seen + data)[-4096:]
                if marker is not None and marker in seen:
                    self._marker = None
                    await to_component.drain()
                    to_component.write_eof()  # nothing more reaches it on this connection
                    self.cut.set()
                    return

        async def up() -> None:  # component -> XMPP server
            while data := await from_component.read(65536):
                to_server.write(data)
                await to_server.drain()
            to_server.close()

        try:
            await asyncio.gather(down(), up())
        except ConnectionError:
            pass
        finally:
            to_component.close()
            to_server.close()


async def test_events_during_a_reconnection_are_delivered_once_the_component_is_back(
    server: ServerProcess, xmpp_server: XmppServer, connect: Connect, unique: str
) -> None:
    """The stream breaks while the component handles a burst of publishes: the answers
    and notifications it writes meanwhile wait, and leave once it has reconnected."""
    proxy = ComponentProxy(xmpp_server.interface, xmpp_server.component_port)
    await proxy.start()
    try:
        async with another_server(server, {"BUDDYCLOUD_XMPP_PORT": str(proxy.port)}) as other:
            juliet = await connect("juliet", resource="outage")
            romeo = await connect("romeo", resource="outage")
            node = topic(f"outage-{unique}")
            await juliet.ok("set", create(node))
            await romeo.ok("set", subscribe(node, romeo.bare))

            contents = [f"burst {unique} {n}" for n in range(9)] + [f"burst {unique} cut"]
            proxy.cut_after(contents[-1])
            replies = await asyncio.gather(
                *(juliet.iq("set", publish(node, entry(content))) for content in contents)
            )
            assert proxy.cut.is_set() and proxy.connections >= 2
            assert all(reply.ok for reply in replies), replies
            for reply in replies:
                await romeo.wait_for(has_item(node, local_id(published_id(reply))))
            # Some of them were written while the stream was down, and waited.
            await other.wait_for_log("kept while the XMPP stream was down")
    finally:
        await proxy.stop()
