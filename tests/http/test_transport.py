"""The HTTP edge's connections themselves: answers go out as soon as they are written."""

from __future__ import annotations

import socket
import time

from http_support import Server

from buddycloud.http.server import HttpServer

POSTS = "/api/juliet@capulet.lit/content/posts"
# Linux acknowledges late by at least 40 ms; with Nagle's algorithm on, an answer written as
# head then body waits that long for it on every request of a keep-alive connection.
DELAYED_ACK_SECONDS = 0.04


def _server_sockets(http: HttpServer) -> list[socket.socket]:
    connections = http._server.server_state.connections
    return [connection.transport.get_extra_info("socket") for connection in connections]


async def test_answers_are_not_held_back_for_the_clients_acknowledgement(server: Server) -> None:
    await server.add_user("juliet")
    rounds = 20
    async with server.client() as anonymous:
        assert (await anonymous.get(POSTS)).status_code == 200
        sockets = _server_sockets(server.app.http)
        started = time.monotonic()
        for _ in range(rounds):
            answer = await anonymous.get(POSTS)  # one keep-alive connection
            assert answer.status_code == 200
        elapsed = time.monotonic() - started

    assert sockets
    assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)
    assert elapsed < rounds * DELAYED_ACK_SECONDS
