"""Serving the HTTP edge with uvicorn inside the server's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from buddycloud.http.websocket import FRAMES_EXTENSION

log = logging.getLogger(__name__)

DEFAULT_PING_SECONDS = 20.0
DEFAULT_MAX_FRAME = 4 * 1024 * 1024
# How long a closing websocket has to answer the close before it is dropped.
CLOSE_SECONDS = 10.0


class LiveWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol (websockets' sans-I/O core, no task per connection),
    able to close a connection whose client has stopped reading.

    Its handshake is never logged (it holds credentials).

    It offers the application the scope extension `FRAMES_EXTENSION`: itself, as a
    `buddycloud.http.websocket.FrameWriter`, so that a frame encoded once is written to
    each connection's transport as it is, without a coroutine, an ASGI message or an
    encoding per connection.

    uvicorn sends nothing, not even a close frame, while the connection's write buffer is
    full, and closes the transport politely, waiting for the buffer to drain: a client that
    never reads would hold its connection and buffer for ever. Here a close is written at
    once, behind whatever is still buffered, and a connection that has not completed the
    closing handshake `CLOSE_SECONDS` later is dropped (TCP reset).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_SECONDS
        # websockets logs each handshake's path (a browser's `?token=`) and headers
        # (`Authorization`) at DEBUG on uvicorn's error logger: never, whatever its level.
        self.conn.debug = False
        self._on_resume: Callable[[], None] | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            # The application's task is made but has not run: its scope can still change.
            self.scope["extensions"][FRAMES_EXTENSION] = {"writer": self}

    # --- FrameWriter --------------------------------------------------------------------------

    def frames_open(self) -> bool:
        return (
            self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and not self.transport.is_closing()
        )

    def frames_paused(self) -> bool:
        return not self.writable.is_set()

    def write_frame(self, frame: bytes) -> None:
        self.transport.write(frame)

    def on_resume(self, callback: Callable[[], None] | None) -> None:
        self._on_resume = callback

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._on_resume is not None:
            self._on_resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_resume = None
        super().connection_lost(exc)

    async def send(self, message: Any) -> None:
        if (
            message["type"] == "websocket.close"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.writable.is_set()
            and not self.transport.is_closing()
        ):
            code = message.get("code", 1000)
            reason = message.get("reason") or ""
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)
            return
        await super().send(message)
        if message["type"] == "websocket.close" and self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        # The client answers no ping: it will not read the close either.
        self.loop.call_later(self.close_timeout, self.transport.abort)


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The composition root owns SIGINT and SIGTERM and stops this server itself.
        yield


class HttpServer:
    """uvicorn serving one ASGI app on host:port until `stop`."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        ping_seconds: float = DEFAULT_PING_SECONDS,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        """Args:
        ping_seconds: websocket heartbeat: a ping every this many seconds; a connection
            whose pong has not come after as many again is closed (1011).
        max_frame: the largest websocket message read at all, in bytes; a larger one
            closes the connection (1009). The application refuses smaller ones above its
            own limit with an error message.
        """
        self.app = app
        self.host = host
        self.port = port
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=5,
            ws=LiveWebSocketProtocol,
            ws_max_size=max_frame,
            ws_ping_interval=ping_seconds,
            ws_ping_timeout=ping_seconds,
            # Compression would cost each connection tens of KiB of zlib state.
            ws_per_message_deflate=False,
        )
        self._server = _EmbeddedServer(config)
        # uvicorn's access line holds the query string, where a browser's websocket puts
        # its token; buddycloud.http.observe writes the access lines instead. Whatever
        # handlers a logging setup gives this logger, it stays silent.
        logging.getLogger("uvicorn.access").disabled = True
        # uvicorn's own line for each websocket ("WebSocket /api/ws?token=..." [accepted])
        # would hold the token: it is written without the query string.
        error_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, _WithoutQueryStrings) for f in error_log.filters):
            error_log.addFilter(_WithoutQueryStrings())
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, then serve in the background; connections are accepted from return on.

        The socket is bound here rather than by uvicorn, so that an address that cannot be
        listened on raises at once instead of ending the process.

        Raises:
            OSError: the address cannot be listened on (in use, not local, no permission).
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # Named as TCP, not left to the default protocol 0: asyncio turns Nagle's algorithm
        # off (TCP_NODELAY) only on connections whose socket says IPPROTO_TCP, and accepted
        # connections inherit it from this one. With Nagle on, an answer written as head
        # then body waits for the client's delayed acknowledgement: ~40 ms per request.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        log.info("HTTP API listening on http://%s/api", _address(self.host, self.port))

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None


class _WithoutQueryStrings(logging.Filter):
    """Cuts the query string off the path in uvicorn's websocket lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(record.msg, str)
            and '"WebSocket %s"' in record.msg
            and isinstance(args, tuple)
            and len(args) >= 2
        ):
            record.args = (args[0], str(args[1]).split("?", 1)[0], *args[2:])
        return True


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
