"""Live updates for HTTP clients of posts made over XMPP: a post published by an XMPP client
reaches the websocket and the long-poll of a user signed in over HTTP (docs/websocket.md)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
from e2e.harness import Client, ServerProcess, entry, posts, publish, subscribe
from websockets.asyncio.client import ClientConnection, connect

PASSWORD = "balcony-at-midnight"


async def next_of(socket: ClientConnection, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = max(deadline - asyncio.get_running_loop().time(), 0.001)
        message = json.loads(await asyncio.wait_for(socket.recv(), left))
        if message["type"] == kind:
            return message


async def test_a_post_made_over_xmpp_reaches_the_websocket_and_the_long_poll(
    server: ServerProcess, romeo: Client, unique: str
) -> None:
    url = await server.http_url()
    nurse = f"nurse{unique}"
    channel = f"{nurse}@capulet.lit"
    basic = base64.b64encode(f"{nurse}:{PASSWORD}".encode()).decode()
    async with httpx.AsyncClient(base_url=url, auth=(nurse, PASSWORD), timeout=30) as http:
        made = await http.post(
            "/api/account",
            json={"username": nurse, "password": PASSWORD, "email": f"{nurse}@example.org"},
        )
        assert made.status_code == 200, made.text
        since = (await http.get("/api/notifications/posts")).json()["last"]
        async with connect(
            url.replace("http://", "ws://") + "/api/ws",
            additional_headers={"Authorization": f"Basic {basic}"},
        ) as socket:
            assert (await next_of(socket, "welcome"))["jid"] == channel
            held = asyncio.create_task(
                http.get("/api/notifications/posts", params={"since": since})
            )
            # Romeo, an XMPP user, follows the nurse's channel and writes on it.
            await romeo.ok("set", subscribe(posts(channel), romeo.bare))
            followed = await next_of(socket, "subscription")
            assert (followed["jid"], followed["subscription"]) == (romeo.bare, "subscribed")
            await romeo.ok("set", publish(posts(channel), entry(f"Good morrow, {unique}")))

            event = await next_of(socket, "post")
            answer = await asyncio.wait_for(held, 10)

    assert event["channel"] == channel
    assert event["entry"]["content"] == f"Good morrow, {unique}"
    assert event["entry"]["author"] == romeo.bare
    assert answer.status_code == 200
    [item] = answer.json()["items"]
    assert item["id"] == event["entry"]["id"]
    assert item["source"] == f"{channel}/posts"
