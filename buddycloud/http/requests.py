"""Parsing what arrives with a request: the requester, JSON bodies, paging, node names.

Route functions call these instead of reading the request themselves, so every input is
checked one way and every mistake gets the same clear error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import HTTPConnection, Request

from buddycloud.domain.errors import InvalidNodeId, InvalidPaging
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import MAX_PAGE, NodeId, PageRequest
from buddycloud.http.auth import Authenticator, Requester
from buddycloud.http.errors import ApiError
from buddycloud.http.live import LiveHub
from buddycloud.http.metrics import Metrics
from buddycloud.http.websocket import SocketSettings
from buddycloud.services.engine import Engine

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_LONG_POLL_SECONDS = 30.0
MAX_CURSOR = 1024
# How long /health waits for the storage's answer before it reports it unavailable.
HEALTH_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class HttpContext:
    """What every route needs: the engine, how requesters are recognised, and the server's
    operational parts.

    Attributes:
        metrics: the server's Prometheus collectors (`/metrics`).
        metrics_token: `[http] metrics_token`; None serves `/metrics` to loopback only.
        xmpp_connected: whether the XMPP component is connected now; None without XMPP.
        access_log: write the access line of every request at INFO instead of DEBUG.
        health_timeout: seconds `/health` waits for the storage.
        hub: live events for the websocket and the long-poll; `create_app` makes it an
            engine listener.
        sockets: how websockets behave (send queue, frame limit, heartbeat).
        long_poll_seconds: how long `GET /api/notifications/posts` waits for a post.
    """

    engine: Engine
    authenticator: Authenticator
    max_body_bytes: int = DEFAULT_MAX_BODY
    metrics: Metrics = field(default_factory=Metrics)
    metrics_token: str | None = field(default=None, repr=False)
    xmpp_connected: Callable[[], bool] | None = None
    access_log: bool = False
    health_timeout: float = HEALTH_TIMEOUT
    hub: LiveHub = field(default_factory=LiveHub)
    sockets: SocketSettings = field(default_factory=SocketSettings)
    long_poll_seconds: float = DEFAULT_LONG_POLL_SECONDS


def context(connection: HTTPConnection) -> HttpContext:
    """The context of the app serving a request or a websocket."""
    found: HttpContext = connection.app.state.http
    return found


async def requester(request: Request) -> Requester:
    """The signed-in user or the anonymous guest; remembered for the error funnel."""
    known: Requester | None = getattr(request.state, "requester", None)
    if known is not None:
        return known
    found = await context(request).authenticator.authenticate(request.headers.get("authorization"))
    request.state.requester = found
    return found


async def signed_in(request: Request) -> Requester:
    """Like `requester`, but an anonymous caller gets 401."""
    found = await requester(request)
    if found.anonymous:
        raise ApiError(401, "not-authenticated", "sign in to do this")
    return found


async def body_bytes(request: Request) -> bytes:
    """The request body, refused past the configured size without reading it all."""
    limit = context(request).max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body-too-large", f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body-too-large", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> Any:
    """The body parsed as JSON (a JSON content type, or a body starting with `{`/`[`)."""
    raw = await body_bytes(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    looks_json = raw.lstrip()[:1] in (b"{", b"[")
    if content_type and not content_type.endswith("json") and not looks_json:
        raise ApiError(415, "unsupported-media-type", "send the body as application/json")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed-json", f"the body is not JSON: {exc}"[:200]) from None


async def json_object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "bad-request", "the body must be a JSON object")
    return body


def string_field(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, "bad-request", f"{name!r} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, "bad-request", f"{name!r} must be a string")
    return value


def channel_jid(raw: str) -> Jid:
    """A channel named in a path: a bare JID."""
    jid = Jid.parse(raw)
    if not jid.local or jid.resource:
        raise InvalidNodeId(raw[:64], "a channel is named by a bare JID, user@domain")
    return jid


def node_id(channel: str, node: str) -> NodeId:
    return NodeId.parse(f"/user/{channel_jid(channel)}/{node}")


def paging(query: Mapping[str, str]) -> PageRequest:
    """XEP-0059 paging from `max`, `after` and `before` (an empty `before` is the last page)."""
    raw_max = query.get("max")
    size = None
    if raw_max is not None:
        if not raw_max.isascii() or not raw_max.isdigit() or len(raw_max) > 6:
            raise InvalidPaging(f"max must be a number from 0 to {MAX_PAGE}")
        size = int(raw_max)
    after = query.get("after")
    before = query.get("before")
    for name, value in (("after", after), ("before", before)):
        if value is not None and len(value) > MAX_CURSOR:
            raise InvalidPaging(f"{name} is longer than {MAX_CURSOR} characters")
    if after is not None and before is not None:
        raise InvalidPaging("give after or before, not both")
    kwargs: dict[str, Any] = {}
    if size is not None:
        kwargs["max"] = size
    if before == "":
        return PageRequest(last_page=True, **kwargs)
    return PageRequest(after=after or None, before=before or None, **kwargs)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The latest time a datetime holds, in milliseconds since 1970.
_MAX_MILLISECONDS = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_MILLISECONDS = re.compile(r"^\d{1,15}(\.\d{1,3})?$")


def milliseconds(raw: str, name: str) -> datetime:
    """A time given as milliseconds since 1970 (UTC), with up to three decimals
    (microseconds), as `last` of `GET /api/notifications/posts` gives it.

    Raises:
        ApiError: 400 naming `name` when it is not such a number.
    """
    text = raw.strip()
    if not _MILLISECONDS.match(text) or Decimal(text) > _MAX_MILLISECONDS:
        raise ApiError(
            400,
            "bad-request",
            f"{name} must be a time in milliseconds since 1970, e.g. 1700000000000",
        )
    micros = int(Decimal(text) * 1000)
    return _EPOCH + timedelta(microseconds=micros)


def as_milliseconds(value: datetime) -> int | float:
    """`value` in milliseconds since 1970: an integer, or with three decimals when it is not
    a whole millisecond. `milliseconds` reads it back exactly, also after a trip through a
    double (JavaScript) for times before 2109, where doubles still hold microseconds."""
    micros = (value - _EPOCH) // timedelta(microseconds=1)
    whole, rest = divmod(micros, 1000)
    return whole if rest == 0 else float(f"{whole}.{rest:03d}")
