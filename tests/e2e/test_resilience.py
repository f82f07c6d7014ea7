"""Failures of the real parts: the XMPP server restarts, the channel server is killed.

These tests stop and start the session's Prosody and server; each leaves both running.
"""

from __future__ import annotations

import asyncio

from e2e.conftest import Connect, XmppServer
from e2e.harness import (
    TOPICS_DOMAIN,
    Client,
    ServerProcess,
    create,
    entry,
    item_ids,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
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
