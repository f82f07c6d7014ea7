"""The `xmpp` sign-in method when the XMPP server cannot answer: 503 within the timeout,
never a hang (the method itself is tested through real XMPP servers in
tests/e2e/test_http_sign_in.py)."""

from __future__ import annotations

import asyncio
import socket
import time

from http_support import MakeServer


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_xmpp_server_is_503_at_once(make_server: MakeServer) -> None:
    async with make_server(
        BUDDYCLOUD_XMPP_COMPONENT_JID="channels.capulet.lit",
        BUDDYCLOUD_XMPP_SECRET="secret",
        BUDDYCLOUD_XMPP_PORT=str(_dead_port()),
        BUDDYCLOUD_XMPP_C2S_PORT=str(_dead_port()),
        BUDDYCLOUD_AUTH_METHODS="xmpp",
        BUDDYCLOUD_AUTH_REMOTE_TIMEOUT="2",
    ) as server:
        async with server.client("juliet", "julietpass") as juliet:
            start = time.monotonic()
            answer = await juliet.get("/api")
            took = time.monotonic() - start
    assert answer.status_code == 503
    assert answer.json()["error"] == "sign-in-unavailable"
    assert took < 4


async def test_a_silent_xmpp_server_is_503_within_the_timeout(make_server: MakeServer) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept the connection, and never say a word

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with make_server(
            BUDDYCLOUD_XMPP_COMPONENT_JID="channels.capulet.lit",
            BUDDYCLOUD_XMPP_SECRET="secret",
            BUDDYCLOUD_XMPP_PORT=str(_dead_port()),
            BUDDYCLOUD_XMPP_C2S_PORT=str(port),
            BUDDYCLOUD_AUTH_METHODS="xmpp",
            BUDDYCLOUD_AUTH_REMOTE_TIMEOUT="1",
        ) as server:
            async with server.client("juliet", "julietpass") as juliet:
                start = time.monotonic()
                answer = await juliet.get("/api")
                took = time.monotonic() - start
    finally:
        for writer in accepted:
            writer.close()
        listener.close()
        await listener.wait_closed()
    assert answer.status_code == 503
    assert 0.9 < took < 3
    assert accepted, "the sign-in connected to the XMPP server's client port"
