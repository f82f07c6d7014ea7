"""Watching every request: its id, its log lines, its metrics.

`ObserveRequests` is the outermost middleware of the HTTP edge. For each request it:
- picks a request id: the caller's `X-Request-Id` when it is a short plain token (a load
  balancer's), else a new random one; it is sent back as `X-Request-Id`;
- makes every log line written while the request is handled name it (see
  `buddycloud.util.logs`): `[request <id> <METHOD> <route template> user=<jid>]`;
- counts and times it in `Metrics` by route template and status class;
- writes one access line on `buddycloud.http.access`: at DEBUG (INFO with
  `[http] access_log = true`); a refused sign-in at INFO, naming the user it claimed to
  be; a 5xx at WARNING;
- turns an exception no handler took into the funnel's 500, logged with the request named.

Nothing here logs a header's value, a query string or a body: an `Authorization` header
and a `?token=` carry secrets. The user named is the signed-in one (`request.state.
requester`), or for a refused Basic sign-in the user name it gave.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from buddycloud.http.errors import render_error
from buddycloud.http.metrics import UNMATCHED, Metrics
from buddycloud.util import logs

access_log = logging.getLogger("buddycloud.http.access")
log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_CALLER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_CLAIMED_USER = 64


class RequestLog:
    """The request a log line is about; `str()` of it is the line's context."""

    __slots__ = ("id", "scope")

    def __init__(self, request_id: str, scope: Scope) -> None:
        self.id = request_id
        self.scope = scope

    @property
    def route(self) -> str:
        """The matched route's template; the raw path while none has matched yet."""
        route = self.scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        return str(self.scope.get("path", ""))[:200]

    @property
    def user(self) -> str:
        """The signed-in user, `anonymous`, or `-` before the credentials were read."""
        state = self.scope.get("state")
        requester = state.get("requester") if isinstance(state, dict) else None
        if requester is None:
            return "-"
        return "anonymous" if requester.anonymous else str(requester.jid)

    def __str__(self) -> str:
        method = self.scope.get("method", "WEBSOCKET")
        return f"request {self.id} {method} {self.route} user={self.user}"


class ObserveRequests:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log_info: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.access_level = logging.INFO if access_log_info else logging.DEBUG

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        about = RequestLog(request_id, scope)
        token = logs.current.set(about)
        try:
            if scope["type"] == "http":
                await self._http(about, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            logs.current.reset(token)

    async def _http(self, about: RequestLog, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = about.id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:
                log.error("failed after its answer had started", exc_info=exc)
                raise
            state = scope.get("state")
            requester = state.get("requester") if isinstance(state, dict) else None
            response = render_error(exc, anonymous=requester is None or requester.anonymous)
            await response(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = about.route if scope.get("route") is not None else UNMATCHED
            self.metrics.observe_request(scope["method"], route, status, seconds)
            self._access(about, scope, status, seconds)

    def _access(self, about: RequestLog, scope: Scope, status: int, seconds: float) -> None:
        method, path = scope["method"], scope.get("path", "")
        if status >= 500:
            level = logging.WARNING
        elif status == 401 and about.user == "-" and _has_credentials(scope):
            claimed = _claimed_user(scope)
            access_log.info(
                "sign-in refused: %s %s answered 401 (claimed user %s)", method, path, claimed
            )
            return
        else:
            level = self.access_level
        if access_log.isEnabledFor(level):
            access_log.log(
                level, "%s %s answered %d in %.1f ms", method, path, status, seconds * 1000
            )


def _request_id(scope: Scope) -> str:
    given = _header(scope, b"x-request-id")
    if given is not None:
        text = given.decode("latin-1")
        if _CALLER_ID.match(text):
            return text
    return secrets.token_hex(8)


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            found: bytes = value
            return found
    return None


def _has_credentials(scope: Scope) -> bool:
    return _header(scope, b"authorization") is not None


def _claimed_user(scope: Scope) -> str:
    """The user name of a Basic header (never its password); `-` for any other scheme."""
    header = _header(scope, b"authorization") or b""
    scheme, _, value = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return "-"
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "-"
    user, colon, _ = decoded.partition(":")
    if not colon:
        return "-"
    return repr(user[:MAX_CLAIMED_USER])
