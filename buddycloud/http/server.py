"""Serving the HTTP edge with uvicorn inside the server's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The composition root owns SIGINT and SIGTERM and stops this server itself.
        yield


class HttpServer:
    """uvicorn serving one ASGI app on host:port until `stop`."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
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
        )
        self._server = _EmbeddedServer(config)
        # uvicorn's access line holds the query string, where a browser's websocket puts
        # its token; buddycloud.http.observe writes the access lines instead. Whatever
        # handlers a logging setup gives this logger, it stays silent.
        logging.getLogger("uvicorn.access").disabled = True
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, then serve in the background; connections are accepted from return on.

        The socket is bound here rather than by uvicorn, so that an address that cannot be
        listened on raises at once instead of ending the process.

        Raises:
            OSError: the address cannot be listened on (in use, not local, no permission).
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
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


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
