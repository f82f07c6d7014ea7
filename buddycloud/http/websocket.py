"""The live websocket at `/api/ws`: the JSON protocol of docs/websocket.md.

One `LiveSocket` per connection. It is a sink of the `LiveHub` (live events of everything
its user may see), answers `request` messages by running them through the same Starlette
application as REST requests (in-process, with the socket's sign-in), and keeps a bounded
queue of what it has still to send: a client that does not read closes with `CLOSE_TOO_SLOW`
instead of slowing anyone else down. A client that reconnects sends the last cursor it saw
and gets what it missed from the hub's ring of recent events, or `resync` when that is no
longer kept.

Everything a socket sends is a websocket frame encoded before it reaches the socket; a live
event's frame is encoded once by the hub for all its recipients. Served by
`buddycloud.http.server` (the scope extension `FRAMES_EXTENSION`), a frame is written to the
connection's transport at once, in the call that delivers it, unless the transport is
paused (its buffer full); then it waits in the socket's queue and goes when the transport
asks for more. No coroutine, task or ASGI message per delivery. Served by another ASGI
server, a task per socket sends the queue through the ASGI `send`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlencode

from starlette.types import ASGIApp, Message, Scope
from starlette.websockets import WebSocket

from buddycloud.domain.jid import Jid
from buddycloud.http.auth import Requester
from buddycloud.http.live import LiveEvent, LiveHub, dumps, frame_text, text_frame

log = logging.getLogger(__name__)

# Close codes (docs/websocket.md). 1000-2999 are the protocol's own; 4000-4999 are ours,
# numbered after the HTTP status of the same meaning.
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4408
CLOSE_TOO_MANY_ERRORS = 4429
CLOSE_SERVER_ERROR = 1011
# RFC 6455 "Try Again Later": the credentials could not be checked now.
CLOSE_TRY_LATER = 1013

MAX_IN_FLIGHT = 32  # requests of one socket being answered at once
MAX_ID = 256  # characters of a request id
MAX_PATH = 4096
# Bad messages a client may send in a burst, and how many per second it earns back; past
# that the connection closes with CLOSE_TOO_MANY_ERRORS.
ERROR_BURST = 20
ERROR_REFILL_PER_SECOND = 1.0
METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
REQUEST_HEADERS = frozenset({"accept", "content-type"})
RESPONSE_HEADERS = ("location", "content-type", "x-first", "x-last", "x-count", "retry-after")
# The scope extension under which the server offers `{"writer": FrameWriter}`.
FRAMES_EXTENSION = "buddycloud.websocket.frames"


class FrameWriter(Protocol):
    """Writes encoded frames to one accepted websocket connection
    (`buddycloud.http.server.LiveWebSocketProtocol`)."""

    def frames_open(self) -> bool:
        """Whether frames may still be written: no close sent or received, the connection
        is up."""

    def frames_paused(self) -> bool:
        """Whether the transport holds as much as it should: write again after the
        `on_resume` callback."""

    def write_frame(self, frame: bytes) -> None:
        """Write one complete frame now, behind whatever is buffered."""

    def on_resume(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` whenever a paused transport has room again (None: no more)."""


@dataclass(frozen=True, slots=True)
class SocketSettings:
    """How every websocket of a server behaves.

    Attributes:
        send_queue: messages waiting to be sent before the socket is closed as too slow.
        max_frame: the largest message accepted, in characters.
        ping_seconds: the heartbeat interval and timeout (uvicorn pings, `HttpServer`),
            announced in `welcome`.
    """

    send_queue: int = 256
    max_frame: int = 1024 * 1024 + 64 * 1024
    ping_seconds: float = 20.0


class SocketError(Exception):
    """A client message that cannot be served; answered with an `error` message."""

    def __init__(self, name: str, message: str, request_id: str | int | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class SocketRequest:
    """A `request` message: one REST operation to run with the socket's sign-in."""

    id: str | int
    method: str
    path: str
    raw_path: bytes
    query_string: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Resume:
    cursor: int


@dataclass(frozen=True, slots=True)
class Ping:
    id: str | int | None


ClientMessage = SocketRequest | Resume | Ping


def error_message(name: str, message: str, request_id: str | int | None = None) -> str:
    rendered: dict[str, Any] = {"type": "error", "error": name, "message": message}
    if request_id is not None:
        rendered["id"] = request_id
    return dumps(rendered)


# --- parsing ----------------------------------------------------------------------------------


def parse_message(text: str) -> ClientMessage:
    """A client's text frame as a typed message.

    Raises:
        SocketError: the frame is not JSON, not an object, of an unknown type, or a field
            is missing or wrong (named in the message).
    """
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise SocketError("malformed-json", f"the message is not JSON: {exc}"[:200]) from None
    if not isinstance(raw, dict):
        raise SocketError("bad-message", "a message is a JSON object with a type")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise SocketError("bad-message", "a message needs a string 'type'")
    if kind == "request":
        return parse_request(raw)
    if kind == "resume":
        return Resume(parse_cursor(raw.get("cursor")))
    if kind == "ping":
        return Ping(_optional_id(raw))
    raise SocketError(
        "unknown-type", f"unknown message type {kind[:40]!r}; send request, resume or ping"
    )


def parse_cursor(value: object) -> int:
    """A cursor sent back by a client: a non-negative integer (or its decimal string)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise SocketError("bad-cursor", "cursor must be the integer of an event you received")


def _optional_id(raw: dict[str, Any]) -> str | int | None:
    value = raw.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SocketError("bad-message", "id must be a string or an integer")
    if isinstance(value, str) and len(value) > MAX_ID:
        raise SocketError("bad-message", f"id is longer than {MAX_ID} characters")
    return value


def parse_request(raw: dict[str, Any]) -> SocketRequest:
    request_id = _optional_id(raw)
    if request_id is None:
        raise SocketError("bad-message", "a request needs an id, echoed in its response")

    def fail(message: str) -> SocketError:
        return SocketError("bad-request", message, request_id)

    method = raw.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise fail(f"method must be one of {', '.join(sorted(METHODS))}")
    path = raw.get("path")
    if not isinstance(path, str) or not (path == "/api" or path.startswith("/api/")):
        raise fail("path must be a path of the REST API, starting with /api/")
    if len(path) > MAX_PATH:
        raise fail(f"path is longer than {MAX_PATH} characters")
    path, _, query_string = path.partition("?")
    query = raw.get("query")
    if query is not None:
        query_string = "&".join(filter(None, [query_string, _query_string(query, fail)]))
    headers: list[tuple[bytes, bytes]] = []
    given = raw.get("headers")
    content_type: str | None = None
    if given is not None:
        if not isinstance(given, dict):
            raise fail("headers must be an object")
        for name, value in given.items():
            if name.lower() not in REQUEST_HEADERS or not isinstance(value, str):
                raise fail(
                    "headers may set Accept and Content-Type (strings) only; every request "
                    "is made as the socket's signed-in user"
                )
            if name.lower() == "content-type":
                content_type = value
            else:
                headers.append((b"accept", value.encode("latin-1", "replace")))
    body = raw.get("body")
    payload = b""
    if body is not None:
        if content_type is not None and isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body, ensure_ascii=False).encode()
            content_type = content_type or "application/json"
    if content_type is not None:
        headers.append((b"content-type", content_type.encode("latin-1", "replace")))
    return SocketRequest(
        id=request_id,
        method=method.upper(),
        path=unquote(path),
        raw_path=quote(path, safe="/%@:+,;=!$&'()*~").encode("ascii"),
        query_string=query_string.encode("utf-8"),
        headers=tuple(headers),
        body=payload,
    )


def _query_string(query: object, fail: Callable[[str], SocketError]) -> str:
    if not isinstance(query, dict):
        raise fail("query must be an object of strings")
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        for one in values:
            if not isinstance(one, str):
                raise fail(f"query value {name[:40]!r} must be a string")
            pairs.append((name, one))
    return urlencode(pairs)


# --- requests through the application ------------------------------------------------------


async def dispatch(
    app: ASGIApp, socket_scope: Scope, requester: Requester, request: SocketRequest
) -> dict[str, Any]:
    """Run `request` through the application as an HTTP request made by `requester`; the
    `response` message with its status, chosen headers and body."""
    host = next((value for name, value in socket_scope["headers"] if name == b"host"), b"")
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "https" if socket_scope.get("scheme") == "wss" else "http",
        "path": request.path,
        "raw_path": request.raw_path,
        "query_string": request.query_string,
        "root_path": socket_scope.get("root_path", ""),
        "headers": [(b"host", host), *request.headers],
        "client": socket_scope.get("client"),
        "server": socket_scope.get("server"),
        # Who is asking: `requests.requester` takes it from here instead of a header.
        "state": {"requester": requester},
    }
    body_sent = False
    never = asyncio.Event()

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await never.wait()  # the socket's client stays connected while it waits
        return {"type": "http.disconnect"}

    status = 0
    headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    except Exception:
        # The application has answered 500 through its error funnel (and logged why)
        # before re-raising; only a failure before any answer needs one here.
        if not status:
            log.exception("a websocket request failed")
            status = 500
            chunks = [b'{"error":"internal-server-error","message":"the server failed to answer"}']
            headers = {"content-type": "application/json"}
    return {
        "type": "response",
        "id": request.id,
        "status": status,
        "headers": {name: headers[name] for name in RESPONSE_HEADERS if name in headers},
        "body": _body(headers.get("content-type", ""), b"".join(chunks)),
    }


def _body(content_type: str, raw: bytes) -> Any:
    if not raw:
        return None
    if "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


# --- one connection ----------------------------------------------------------------------------


class LiveSocket:
    """One signed-in websocket: its send queue, its requests, its place in the hub."""

    __slots__ = (
        "_budget",
        "_budget_time",
        "_frames",
        "_queue",
        "_requests",
        "_writer",
        "app",
        "closing",
        "covered_from",
        "hub",
        "jid",
        "requester",
        "settings",
        "ws",
    )

    def __init__(
        self,
        ws: WebSocket,
        requester: Requester,
        hub: LiveHub,
        app: ASGIApp,
        settings: SocketSettings,
    ) -> None:
        self.ws = ws
        self.requester = requester
        self.jid: Jid = requester.jid
        self.hub = hub
        self.app = app
        self.settings = settings
        self.closing = False
        # Every event of this user with a cursor above this reaches the socket (live or
        # replayed); a resume lowers it.
        self.covered_from = 0
        # Frames (or batches of a resume's frames) that wait for a paused transport.
        self._queue: deque[bytes | list[bytes]] = deque()
        offered = ws.scope.get("extensions", {}).get(FRAMES_EXTENSION)
        self._frames: FrameWriter | None = offered["writer"] if offered else None
        # Without a frame writer: the task that sends the queue through the ASGI `send`.
        self._writer: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] | None = None
        self._budget = float(ERROR_BURST)
        self._budget_time = 0.0

    # --- sending ----------------------------------------------------------------------------

    def deliver(self, event: LiveEvent) -> None:
        self._enqueue(event.frame)

    def send(self, text: str) -> None:
        self._enqueue(text_frame(text))

    def _enqueue(self, item: bytes | list[bytes]) -> None:
        if self.closing:
            return
        queue = self._queue
        frames = self._frames
        if frames is not None and not queue:
            if not frames.frames_open():
                self._gone()
                return
            if not frames.frames_paused():
                rest = self._write(frames, item)
                if rest is not None:
                    queue.append(rest)
                return
        if len(queue) >= self.settings.send_queue:
            log.info(
                "closing the websocket of %s: %d messages wait to be sent",
                self.jid,
                len(queue),
            )
            self.close(CLOSE_TOO_SLOW, "too slow: messages were not read")
            return
        queue.append(item)
        if frames is None and self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    @staticmethod
    def _write(frames: FrameWriter, item: bytes | list[bytes]) -> list[bytes] | None:
        """Write `item` to an open, unpaused transport; the frames of a batch left when the
        transport paused on the way."""
        if isinstance(item, bytes):
            frames.write_frame(item)
            return None
        for index, frame in enumerate(item):
            if index and frames.frames_paused():
                return item[index:]
            frames.write_frame(frame)
        return None

    def _flush(self) -> None:
        """The transport has room again: write what waits until it is full again."""
        queue = self._queue
        frames = self._frames
        assert frames is not None
        while queue and not self.closing:
            if not frames.frames_open():
                self._gone()
                return
            if frames.frames_paused():
                return
            rest = self._write(frames, queue.popleft())
            if rest is not None:
                queue.appendleft(rest)

    def _gone(self) -> None:
        """The connection closed under us; the receive loop ends the socket."""
        self.closing = True
        self._queue.clear()

    async def _drain(self) -> None:
        try:
            queue = self._queue
            send = self.ws.send_text
            while queue:
                item = queue.popleft()
                for frame in [item] if isinstance(item, bytes) else item:
                    await send(frame_text(frame))
        except Exception:
            # The connection went; the receive loop ends it.
            self._gone()
        finally:
            self._writer = None

    def close(self, code: int, reason: str) -> None:
        """Stop delivering, then close with `code` (without waiting for the queue)."""
        if self.closing:
            return
        self.closing = True
        self._queue.clear()
        asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        self.hub.disconnect(self.jid, self)
        if self._writer is not None:
            self._writer.cancel()
        try:
            await self.ws.close(code, reason)
        except Exception:
            log.debug("closing a websocket that had gone already", exc_info=True)

    # --- receiving ----------------------------------------------------------------------------

    async def run(self, resume_from: str | None) -> None:
        """Serve the connection until it closes; `resume_from` is the `cursor` parameter of
        the URL, if any."""
        if self._frames is not None:
            self._frames.on_resume(self._flush)
        self.hub.connect(self.jid, self)
        self.covered_from = self.hub.cursor
        self.send(
            dumps(
                {
                    "type": "welcome",
                    "jid": str(self.jid),
                    "cursor": self.covered_from,
                    "heartbeat": {
                        "interval": self.settings.ping_seconds,
                        "timeout": self.settings.ping_seconds,
                    },
                    "limits": {
                        "queue": self.settings.send_queue,
                        "frame": self.settings.max_frame,
                        "requests": MAX_IN_FLIGHT,
                    },
                }
            )
        )
        if resume_from is not None:
            try:
                self.resume(parse_cursor(resume_from))
            except SocketError as exc:
                self.send(error_message(exc.name, exc.message))
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                self.handle(message)
        finally:
            self.closing = True
            if self._frames is not None:
                self._frames.on_resume(None)
            self.hub.disconnect(self.jid, self)
            for task in list(self._requests or ()):
                task.cancel()
            if self._writer is not None:
                self._writer.cancel()

    def handle(self, message: Message) -> None:
        """One frame from the client."""
        try:
            text = message.get("text")
            if text is None:
                raise SocketError("binary-frame", "send JSON messages as text frames")
            if len(text) > self.settings.max_frame:
                raise SocketError(
                    "frame-too-large",
                    f"a message has at most {self.settings.max_frame} characters",
                )
            parsed = parse_message(text)
            match parsed:
                case SocketRequest():
                    self.start_request(parsed)
                case Resume(cursor=cursor):
                    self.resume(cursor)
                case Ping(id=ping_id):
                    pong: dict[str, Any] = {"type": "pong"}
                    if ping_id is not None:
                        pong["id"] = ping_id
                    self.send(dumps(pong))
        except SocketError as exc:
            self.send(error_message(exc.name, exc.message, exc.request_id))
            self._spend_error()

    def _spend_error(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._budget_time:
            self._budget = min(
                float(ERROR_BURST),
                self._budget + (now - self._budget_time) * ERROR_REFILL_PER_SECOND,
            )
        self._budget_time = now
        self._budget -= 1
        if self._budget < 0:
            self.close(CLOSE_TOO_MANY_ERRORS, "too many bad messages")

    def start_request(self, request: SocketRequest) -> None:
        if self._requests is None:
            self._requests = set()
        if len(self._requests) >= MAX_IN_FLIGHT:
            raise SocketError(
                "too-many-requests",
                f"at most {MAX_IN_FLIGHT} requests are answered at once; wait for a response",
                request.id,
            )
        task = asyncio.get_running_loop().create_task(self._answer(request))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _answer(self, request: SocketRequest) -> None:
        response = await dispatch(self.app, self.ws.scope, self.requester, request)
        self.send(dumps(response))

    def resume(self, cursor: int) -> None:
        """Send what the client missed after `cursor`, or `resync` when that is gone."""
        covered = self.covered_from
        if cursor > self.hub.cursor:
            self._resync("the cursor is not one of this server's")
            return
        if cursor >= covered:
            self.send(dumps({"type": "resumed", "cursor": cursor, "replayed": 0}))
            return
        missed = self.hub.missed(self.jid, cursor, until=covered)
        if missed is None:
            self._resync("events after the cursor are no longer kept")
            return
        self.covered_from = cursor
        if missed:
            self._enqueue([event.frame for event in missed])
        self.send(dumps({"type": "resumed", "cursor": cursor, "replayed": len(missed)}))

    def _resync(self, reason: str) -> None:
        self.send(dumps({"type": "resync", "cursor": self.covered_from, "reason": reason}))
