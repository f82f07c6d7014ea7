"""`LiveEvents`: the live websocket `/api/ws` (docs/websocket.md) as an async iterator of
typed events that survives dropped connections.

The client keeps the highest cursor it has seen. When the connection drops (a network
failure, the server restarting, `4408` too slow, a missed heartbeat) it reconnects with
`?cursor=<that cursor>`; the server replays what the user missed, oldest first, so that
nothing is missed. Events at or below the cursor are skipped, so nothing comes twice. When
the server no longer keeps what was missed, the iterator yields `Resync`: reload, then
events continue after its cursor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from buddycloud.client.errors import LiveClosed, UnexpectedAnswer
from buddycloud.client.models import Event, Resync, read_event

log = logging.getLogger(__name__)

# Close codes after which reconnecting would fail the same way (docs/websocket.md).
FINAL_CLOSE_CODES = frozenset({4401, 4429})


class LiveEvents:
    """Live events of the signed-in user; make one with `Client.events()`.

    Attributes:
        cursor: the highest cursor received (or the `welcome`'s); resume from it later
            with `Client.events(cursor=...)`.
        jid: the signed-in user, once connected.
        connections: how many times a connection was opened (1 + reconnects).
    """

    def __init__(
        self,
        url: str,
        authorization: Callable[[], Awaitable[str | None]],
        *,
        cursor: int | None = None,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
    ) -> None:
        self.url = url
        self.cursor = cursor
        self.jid: str | None = None
        self.connections = 0
        self._authorization = authorization
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._connection: ClientConnection | None = None
        self._closed = False

    async def __aenter__(self) -> LiveEvents:
        await self.connect()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> LiveEvents:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._connection is None:
                await self.connect()
            connection = self._connection
            assert connection is not None
            try:
                frame = await connection.recv()
            except ConnectionClosed as closed:
                self._connection = None
                if self._closed:
                    raise StopAsyncIteration from None
                code = closed.rcvd.code if closed.rcvd is not None else None
                if code in FINAL_CLOSE_CODES:
                    self._closed = True
                    reason = closed.rcvd.reason if closed.rcvd is not None else ""
                    raise LiveClosed(code or 0, None, reason) from None
                log.info("live connection lost (%s); reconnecting", code)
                continue
            event = self._read(frame)
            if event is not None:
                return event

    async def next(self, timeout: float | None = None) -> Event:
        """The next event, waiting at most `timeout` seconds (TimeoutError after)."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def connect(self) -> None:
        """Open the connection if it is not open, retrying with growing delays until it is
        (or until it fails in a way retrying cannot mend)."""
        delay = self._reconnect_delay
        while self._connection is None:
            try:
                self._connection = await self._open()
            except LiveClosed:
                self._closed = True
                raise
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as failure:
                log.info("live connection failed (%s); retrying in %.1f s", failure, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self._max_reconnect_delay)

    async def _open(self) -> ClientConnection:
        url = self.url if self.cursor is None else f"{self.url}?cursor={self.cursor}"
        header = await self._authorization()
        headers = {"Authorization": header} if header is not None else {}
        connection = await connect(url, additional_headers=headers, open_timeout=10)
        try:
            welcome = _parse(await asyncio.wait_for(connection.recv(), 10))
        except ConnectionClosed:
            await connection.close()
            raise
        if welcome.get("type") == "error":
            # Sign-in failed: the server closes (4401) after this message.
            await connection.close()
            code = connection.close_code or 4401
            error = welcome.get("error")
            raise LiveClosed(
                code, error if isinstance(error, str) else None, str(welcome.get("message"))
            )
        if welcome.get("type") != "welcome":
            await connection.close()
            raise UnexpectedAnswer(f"the live connection began with {welcome.get('type')!r}")
        jid, cursor = welcome.get("jid"), welcome.get("cursor")
        self.jid = jid if isinstance(jid, str) else None
        if self.cursor is None and isinstance(cursor, int):
            # A first connection: events start here. A reconnection keeps its own cursor,
            # and the server replays what came after it.
            self.cursor = cursor
        self.connections += 1
        return connection

    def _read(self, frame: str | bytes) -> Event | None:
        message = _parse(frame)
        kind = message.get("type")
        if kind == "resync":
            resync = Resync(int(message.get("cursor") or 0), str(message.get("reason", "")))
            self.cursor = resync.cursor
            return resync
        if "cursor" not in message or kind in ("welcome", "resumed"):
            # resumed, pong, error, response: nothing to hand on.
            if kind == "error":
                log.warning("the live connection reported %s", message)
            return None
        event = read_event(message)
        if self.cursor is not None and event.cursor <= self.cursor:
            return None  # delivered already, before a reconnect
        self.cursor = event.cursor
        return event

    async def drop(self) -> None:
        """Close the current connection as a network failure would end it: the next read
        reconnects and resumes."""
        if self._connection is not None:
            await self._connection.close()

    async def aclose(self) -> None:
        """Close for good."""
        self._closed = True
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


def _parse(frame: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(frame)
    except ValueError:
        raise UnexpectedAnswer("the live connection sent a frame that is not JSON") from None
    if not isinstance(message, dict):
        raise UnexpectedAnswer("the live connection sent a message that is not an object")
    return message
