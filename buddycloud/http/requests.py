"""Parsing what arrives with a request: the requester, JSON and Atom bodies, content
negotiation, paging, channel and node names.

Route functions call these instead of reading the request themselves, so every input is
checked one way and every mistake gets the same clear error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element

from starlette.requests import HTTPConnection, Request

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.errors import InvalidNodeId, InvalidPaging
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import MAX_PAGE, NodeId, PageRequest, RawPayload
from buddycloud.http.auth import Authenticator, Requester
from buddycloud.http.errors import ApiError
from buddycloud.http.live import LiveHub
from buddycloud.http.metrics import Metrics
from buddycloud.http.pages import PageCache
from buddycloud.http.websocket import SocketSettings
from buddycloud.services.engine import Engine
from buddycloud.wire.atom import ENTRY, MAX_EXTENSIONS, Media, media_extension, parse_entry
from buddycloud.wire.namespaces import split_tag
from buddycloud.wire.xml import UnsafeXml, parse_xml, serialize

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_LONG_POLL_SECONDS = 30.0
MAX_CURSOR = 1024
# How long /health waits for the storage's answer before it reports it unavailable.
HEALTH_TIMEOUT = 2.0
MAX_XML_DEPTH = 32
MAX_INDEX = 1_000_000
MAX_MEDIA_FIELD = 256

JSON = "application/json"
ATOM = "application/atom+xml"
_XML_TYPES = frozenset({ATOM, "application/xml", "text/xml"})


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
        pages: rendered first pages of nodes' posts; `create_app` makes it an engine
            listener.
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
    pages: PageCache = field(default_factory=PageCache)


def context(connection: HTTPConnection) -> HttpContext:
    """The context of the app serving a request or a websocket."""
    found: HttpContext = connection.app.state.http
    return found


async def requester(request: Request) -> Requester:
    """The signed-in user or the anonymous guest; remembered for the error funnel."""
    known: Requester | None = getattr(request.state, "requester", None)
    if known is not None:
        return known
    found = await context(request).authenticator.authenticate(
        request.headers.get("authorization"), client=client_address(request)
    )
    request.state.requester = found
    return found


def client_address(connection: HTTPConnection) -> str | None:
    """The address the request came from (the proxy's, behind a proxy)."""
    return connection.client.host if connection.client is not None else None


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


def content_type(request: Request) -> str:
    """The request's media type, lowercased, without parameters ('' when not given)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise ApiError(400, "malformed-json", "the body is empty: send a JSON document")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "malformed-json", f"the body is not JSON: {exc}"[:200]) from None
    # `\ud800` alone is valid JSON but no Unicode text: nothing could store or send it.
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise ApiError(
                    400,
                    "malformed-json",
                    "the body holds a lone UTF-16 surrogate (\\uD800-\\uDFFF)",
                )
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return body


async def json_body(request: Request) -> Any:
    """The body parsed as JSON (a JSON content type, or a body starting with `{`/`[`)."""
    raw = await body_bytes(request)
    kind = content_type(request)
    looks_json = raw.lstrip()[:1] in (b"{", b"[")
    if kind and not kind.endswith("json") and not looks_json:
        raise ApiError(415, "unsupported-media-type", "send the body as application/json")
    return _parse_json(raw)


async def json_object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "bad-request", "the body must be a JSON object")
    return body


async def optional_json_object(request: Request) -> dict[str, Any]:
    """A JSON object body, or {} when the request has no body at all."""
    raw = await body_bytes(request)
    if not raw.strip():
        return {}
    kind = content_type(request)
    if kind and not kind.endswith("json") and raw.lstrip()[:1] != b"{":
        raise ApiError(415, "unsupported-media-type", "send the body as application/json")
    body = _parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "bad-request", "the body must be a JSON object")
    return body


async def json_list(request: Request) -> list[Any]:
    body = await json_body(request)
    if not isinstance(body, list):
        raise ApiError(400, "bad-request", "the body must be a JSON array")
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


def _number(query: Mapping[str, str], name: str, limit: int, hint: str = "") -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(limit)) or int(raw) > limit:
        raise InvalidPaging(f"{name} must be a whole number from 0 to {limit}{hint}")
    return int(raw)


_MAX_HINT = f" (a page holds at most {MAX_PAGE})"


def paging(query: Mapping[str, str], *, default_max: int | None = None) -> PageRequest:
    """XEP-0059 paging from `max`, `after` and `before` (an empty `before` is the last page).

    `max` above the largest page (1000) asks for the largest page; `default_max` is the size
    without `max` (the engine's 50 when None).
    """
    size = _number(query, "max", 999_999, _MAX_HINT)
    if size is None:
        size = default_max
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


def search_paging(query: Mapping[str, str], *, default_max: int) -> tuple[PageRequest, int]:
    """A page of search results by position: `max` and `index` (the number skipped)."""
    size = _number(query, "max", 999_999, _MAX_HINT)
    index = _number(query, "index", MAX_INDEX)
    return PageRequest(max=default_max if size is None else size), index or 0


# --- content negotiation ------------------------------------------------------------------


def _ranges(header: str) -> list[tuple[str, str, float]]:
    """The media ranges of an Accept header with their q-values; malformed ones dropped."""
    found = []
    for part in header.split(",")[:64]:
        media, *params = (piece.strip() for piece in part.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
        if 0.0 <= quality <= 1.0:
            found.append((kind, sub, quality))
    return found


def _quality(offered: str, ranges: list[tuple[str, str, float]]) -> float:
    """The q-value the most specific matching range gives `offered` (RFC 9110 12.5.1)."""
    kind, _, sub = offered.partition("/")
    best: tuple[int, float] = (-1, 0.0)
    for range_kind, range_sub, quality in ranges:
        if (range_kind, range_sub) == (kind, sub):
            specificity = 2
        elif (range_kind, range_sub) == (kind, "*"):
            specificity = 1
        elif (range_kind, range_sub) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, quality)
    return best[1]


def negotiate(request: Request, offered: Sequence[str], *, preferred: str | None = None) -> str:
    """The media type to answer in: the one of `offered` the client's `Accept` rates
    highest. Without `Accept`, and among equally rated types, `preferred` (else the first
    offered) wins, so `*/*` gets JSON unless the endpoint prefers otherwise.

    Raises:
        ApiError: 406, the client accepts none of `offered`.
    """
    default = preferred or offered[0]
    header = request.headers.get("accept", "").strip()
    if not header:
        return default
    ranges = _ranges(header)
    rated = [(_quality(kind, ranges), kind) for kind in offered]
    top = max(quality for quality, _ in rated)
    if top <= 0:
        raise ApiError(
            406,
            "not-acceptable",
            f"this resource is served as {' or '.join(offered)}; the Accept header "
            f"{header[:100]!r} takes none of them",
        )
    tied = [kind for quality, kind in rated if quality == top]
    return default if default in tied else tied[0]


# --- posted items ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostedItem:
    """An item a client sent: an Atom entry (from JSON or Atom XML), or another XML payload
    (geolocation, keys), and the media type it came in."""

    payload: EntryDraft | RawPayload
    media_type: str


async def posted_item(request: Request) -> PostedItem:
    """The body of a post: JSON `{content, replyTo, media, title}` (reference 9.1), an Atom
    `<entry>`, or for other nodes their own XML payload.

    JSON is recognised by a JSON content type or a body starting with `{`, XML by an XML
    content type or a body starting with `<`. `id` and `author` in JSON are the server's
    to set, and ignored.

    Raises:
        ApiError: 400 for a malformed body, 413 past the size limit, 415 for another type.
    """
    raw = await body_bytes(request)
    kind = content_type(request)
    start = raw.lstrip()[:1]
    xml_type = kind in _XML_TYPES or kind.endswith("+xml")
    if kind.endswith("json") or (not xml_type and start == b"{"):
        body = _parse_json(raw)
        if not isinstance(body, dict):
            raise ApiError(400, "bad-request", 'an entry is a JSON object: {"content": ...}')
        return PostedItem(_entry_from_json(body, len(raw)), JSON)
    if xml_type or start == b"<":
        root = xml_document(raw)
        if root.tag == ENTRY:
            return PostedItem(parse_entry(root, byte_size=len(raw)), ATOM)
        namespace = split_tag(root.tag)[0]
        return PostedItem(RawPayload(serialize(root), namespace), ATOM)
    if not raw.strip():
        raise ApiError(400, "bad-request", "the body is empty: send an entry as JSON or Atom")
    raise ApiError(
        415,
        "unsupported-media-type",
        f"send the entry as application/json or {ATOM}, not {kind[:60] or 'untyped text'}",
    )


def xml_document(raw: bytes) -> Element:
    """A UTF-8 XML body, parsed without entities or external references, at most
    `MAX_XML_DEPTH` elements deep.

    Raises:
        ApiError: 400 `malformed-xml`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed-xml", "the XML body is not UTF-8") from None
    try:
        root = parse_xml(text)
    except UnsafeXml as exc:
        raise ApiError(
            400, "malformed-xml", f"the body is not safe, well-formed XML: {exc}"[:200]
        ) from None
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > MAX_XML_DEPTH:
            raise ApiError(
                400, "malformed-xml", f"the XML body nests deeper than {MAX_XML_DEPTH} elements"
            )
        stack.extend((child, depth + 1) for child in element)
    return root


def _optional_string(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ApiError(400, "bad-request", f"{name!r} must be a string")


def _entry_from_json(body: Mapping[str, Any], size: int) -> EntryDraft:
    media = body.get("media")
    extensions: tuple[str, ...] = ()
    if media is not None:
        if not isinstance(media, list) or len(media) > MAX_EXTENSIONS:
            raise ApiError(
                400,
                "bad-request",
                f"'media' must be null or a list of at most {MAX_EXTENSIONS} "
                '{"id": ..., "channel": ...} objects',
            )
        listed = [_media(one) for one in media]
        if listed:
            extensions = (media_extension(listed),)
    return EntryDraft(
        content=_optional_string(body, "content"),
        title=_optional_string(body, "title"),
        in_reply_to=_optional_string(body, "replyTo"),
        extensions=extensions,
        byte_size=size,
    )


def _media(raw: Any) -> Media:
    if isinstance(raw, dict):
        ident, channel = raw.get("id"), raw.get("channel")
        if (
            isinstance(ident, str)
            and isinstance(channel, str)
            and 0 < len(ident) <= MAX_MEDIA_FIELD
            and 0 < len(channel) <= MAX_MEDIA_FIELD
        ):
            return Media(ident, channel)
    raise ApiError(
        400,
        "bad-request",
        f'each media is {{"id": ..., "channel": ...}}, two strings of 1 to {MAX_MEDIA_FIELD} '
        "characters",
    )
