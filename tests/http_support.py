"""HTTP test support: a real server: `buddycloud.app` built from a configuration, with uvicorn
listening on a free loopback port, and httpx clients speaking to it over the socket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from buddycloud.app import App, build
from buddycloud.client import Client
from buddycloud.config import load_config
from buddycloud.http.live import LiveHub

DOMAIN = "capulet.lit"
PASSWORD = "balcony-at-midnight"


@dataclass
class Server:
    app: App
    url: str

    def client(self, user: str | None = None, password: str = PASSWORD) -> httpx.AsyncClient:
        """A client signed in as `user` (HTTP Basic), or anonymous."""
        headers = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    def sdk(self, user: str | None = None, password: str = PASSWORD) -> Client:
        """A `buddycloud.client.Client` signed in as `user` (HTTP Basic), or anonymous."""
        if user is None:
            return Client(self.url)
        return Client(self.url, username=user, password=password)

    @property
    def hub(self) -> LiveHub:
        """The live events hub of the running HTTP edge."""
        hub: LiveHub = self.app.http.app.state.http.hub  # type: ignore[attr-defined]
        return hub

    async def add_user(self, name: str, password: str = PASSWORD) -> None:
        async with self.client() as anonymous:
            answer = await anonymous.post(
                "/api/account",
                json={"username": name, "password": password, "email": f"{name}@example.org"},
            )
            assert answer.status_code == 200, answer.text


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, **environ: str) -> AsyncIterator[Server]:
    """A server on SQLite under `tmp_path`, on a free loopback port unless `environ` (more
    `BUDDYCLOUD_*` variables, which win over these) says otherwise."""
    config = load_config(
        None,
        {
            "BUDDYCLOUD_SERVER_DOMAIN": DOMAIN,
            "BUDDYCLOUD_STORAGE_URL": f"sqlite:///{tmp_path}/buddycloud.db",
            "BUDDYCLOUD_HTTP_LISTEN": "127.0.0.1:0",
            **environ,
        },
    )
    app = await build(config)
    try:
        await app.start()
        host = app.http.host
        yield Server(app, f"http://{f'[{host}]' if ':' in host else host}:{app.http.port}")
    finally:
        await app.close()


def basic(user: str, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Live:
    """A websocket client of `/api/ws` that reads JSON messages one at a time."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message from the server."""
        message = await asyncio.wait_for(self.connection.recv(), timeout)
        assert isinstance(message, str), "the server sends text frames"
        parsed = json.loads(message)
        assert isinstance(parsed, dict) and isinstance(parsed.get("type"), str), parsed
        return parsed

    async def next_of(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of type `kind`, skipping others."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            message = await self.next(max(left, 0.001))
            if message["type"] == kind:
                return message

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def request(
        self, method: str, path: str, *, timeout: float = 10.0, **fields: Any
    ) -> dict[str, Any]:
        """Send a request and return its response, failing on any other message between."""
        request_id = f"r{next(_ids)}"
        await self.send(
            {"type": "request", "id": request_id, "method": method, "path": path, **fields}
        )
        answer = await self.next_of("response", timeout)
        assert answer["id"] == request_id, answer
        return answer

    async def nothing_pending(self) -> None:
        """Whether the server has sent nothing more: a ping's pong comes next.

        The server answers messages in order, after every event queued before it, so an
        event sent before this call would arrive before the pong.
        """
        await self.send({"type": "ping", "id": "probe"})
        message = await self.next()
        assert message == {"type": "pong", "id": "probe"}, f"unexpected {message}"

    async def close(self) -> None:
        await self.connection.close()


_ids = itertools.count(1)


@contextlib.asynccontextmanager
async def live(
    server: Server,
    user: str | None,
    *,
    password: str = PASSWORD,
    query: str = "",
    welcome: bool = True,
    **options: Any,
) -> AsyncIterator[Live]:
    """A websocket signed in as `user` (Basic), its welcome read unless `welcome=False`."""
    headers = {"Authorization": basic(user, password)} if user is not None else {}
    url = server.url.replace("http://", "ws://") + "/api/ws" + (f"?{query}" if query else "")
    async with connect(url, additional_headers=headers, **options) as connection:
        client = Live(connection)
        if welcome:
            greeting = await client.next()
            assert greeting["type"] == "welcome", greeting
        yield client


class SilentSocket:
    """A websocket client that completes the handshake, then answers nothing (no pong, no
    close) and reads only when `frames` is called."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: Server, authorization: str) -> SilentSocket:
        host, port = "127.0.0.1", server.app.http.port
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(b"sixteen byte key").decode()
        writer.write(
            (
                f"GET /api/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: {authorization}\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def frames(self, timeout: float = 10.0) -> list[tuple[int, bytes]]:
        """Every frame the server sent until it closed the connection: (opcode, payload)."""
        data = await asyncio.wait_for(self.reader.read(), timeout)
        found = []
        while data:
            opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(data[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(data[2:10], "big"), 10
            found.append((opcode, data[offset : offset + length]))
            data = data[offset + length :]
        return found

    def close(self) -> None:
        self.writer.close()


# `make_server(BUDDYCLOUD_HTTP_X="...")`: `serve` with more configuration (tests/http/conftest.py).
MakeServer = Callable[..., AbstractAsyncContextManager[Server]]
