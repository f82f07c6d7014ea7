"""A minimal asyncio XMPP client and component for load generation.

Plain TCP, SASL PLAIN and resource binding for clients; the XEP-0114 handshake for
components. Stanzas are pre-formatted strings and replies are recognised by substring or
regular expression, so the load generator costs a small fraction of what it measures.

Two ways to read:

* setup: `await conn.expect(regex)` returns the buffered text up to the first match;
* measurement: `conn.start_counting(marker, wanted)` counts occurrences of a byte marker in
  everything received from then on (chunk-boundary safe) and sets `conn.counted` once
  `wanted` were seen; `on_count` is called with each chunk's count (pipelined IQs use it to
  open their window).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import Callable
from xml.sax.saxutils import escape

STREAM_NS = "http://etherx.jabber.org/streams"
SETUP_TIMEOUT = 30.0


def attr(name: str, stanza: bytes) -> str | None:
    """The value of attribute `name` in the first tag of `stanza`, or None."""
    head = stanza.split(b">", 1)[0]
    match = re.search(rb"\s" + name.encode() + rb"=(['\"])(.*?)\1", head)
    return match.group(2).decode() if match else None


class XmppError(Exception):
    """The server refused something the benchmark needs (auth, registration, a request)."""


class _Conn(asyncio.Protocol):
    """Buffering/counting protocol shared by clients and components."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.closed = asyncio.Event()
        self._data = asyncio.Event()
        self._marker = b""
        self._tail = b""
        self.count = 0
        self.wanted = 0
        self.counted = asyncio.Event()
        self.done_at = 0.0
        self.on_count: Callable[[int], None] | None = None
        self.received_bytes = 0
        self.errors = 0
        self._writable = asyncio.Event()
        self._writable.set()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received_bytes += len(data)
        if self._marker:
            chunk = self._tail + data
            k = chunk.count(self._marker)
            if b"error" in chunk:
                self.errors += chunk.count(b"type='error'") + chunk.count(b'type="error"')
            self._tail = chunk[-(len(self._marker) - 1) :]
            if k:
                self.count += k
                if self.on_count is not None:
                    self.on_count(k)
                if self.count >= self.wanted and not self.counted.is_set():
                    self.done_at = time.perf_counter()
                    self.counted.set()
            return
        self.buf += data
        self._data.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        self._data.set()
        self._writable.set()

    # sending
    def send(self, text: str | bytes) -> None:
        assert self.transport is not None
        self.transport.write(text.encode() if isinstance(text, str) else text)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if not self._writable.is_set():
            await asyncio.wait_for(self._writable.wait(), 120)

    # setup-mode reading
    async def expect(self, pattern: bytes, timeout: float = SETUP_TIMEOUT) -> bytes:
        """Wait for `pattern` in the stream; return everything up to the end of the match."""
        rx = re.compile(pattern, re.S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            match = rx.search(self.buf)
            if match:
                out = bytes(self.buf[: match.end()])
                del self.buf[: match.end()]
                return out
            if self.closed.is_set():
                raise XmppError(f"stream closed while waiting: {bytes(self.buf[-300:])!r}")
            self._data.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {pattern!r} after {timeout}s: {bytes(self.buf[-300:])!r}")
            try:
                await asyncio.wait_for(self._data.wait(), remaining)
            except TimeoutError:
                pass

    async def iq(self, xml: str, iq_id: str, timeout: float = SETUP_TIMEOUT) -> bytes:
        """Send an IQ and return its reply (the IQ carrying the same id).

        Anything that arrives before the reply (messages, presence) is dropped.
        """
        self.send(xml)
        quoted = re.escape(iq_id.encode())
        pattern = (
            rb"<iq\b[^>]*\bid=['\"]" + quoted + rb"['\"][^>]*?/>|<iq\b[^>]*\bid=['\"]"
            + quoted + rb"['\"](?:[^>]*[^/])?>.*?</iq>"
        )  # fmt: skip
        out = await self.expect(pattern, timeout)
        return out[out.rfind(b"<iq") :]

    # measurement-mode counting
    def start_counting(self, marker: bytes, wanted: int) -> None:
        """Count `marker` in what arrives from now on (and what is still buffered)."""
        self.count = self.buf.count(marker)
        self._tail = bytes(self.buf[-(len(marker) - 1) :]) if self.buf else b""
        self.buf.clear()
        self.errors = 0
        self.wanted = wanted
        self.counted = asyncio.Event()
        self.done_at = 0.0
        self._marker = marker
        if self.count >= wanted:
            self.done_at = time.perf_counter()
            self.counted.set()

    def stop_counting(self) -> None:
        """Back to setup mode: buffer what arrives."""
        self._marker = b""
        self._tail = b""
        self.on_count = None

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.write(b"</stream:stream>")
            finally:
                self.transport.close()


class Client(_Conn):
    """A c2s session: `await Client.open(...)` connects, optionally registers, logs in, binds."""

    jid: str = ""

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        domain: str,
        user: str,
        password: str,
        resource: str = "bench",
        register: bool = False,
    ) -> Client:
        """Connect and log in; with `register`, create the account first (XEP-0077)."""
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, host, port)
        await conn._open_stream(domain)
        if register:
            reply = await conn.iq(
                f"<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
                f"<username>{escape(user)}</username><password>{escape(password)}</password>"
                f"</query></iq>",
                "reg1",
            )
            if b"type='result'" not in reply and b'type="result"' not in reply:
                raise XmppError(f"registration of {user}@{domain} refused: {reply[:300]!r}")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        conn.send(
            f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        )
        reply = await conn.expect(
            rb"<success\b[^>]*/>|<success\b.*?</success>|<failure\b.*?</failure>"
        )
        if b"<success" not in reply:
            raise XmppError(f"login of {user}@{domain} refused: {reply[:300]!r}")
        await conn._open_stream(domain)
        reply = await conn.iq(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            f"<resource>{escape(resource)}</resource></bind></iq>",
            "bind1",
        )
        match = re.search(rb"<jid>(.*?)</jid>", reply)
        if not match:
            raise XmppError(f"bind failed for {user}@{domain}: {reply[:300]!r}")
        conn.jid = match.group(1).decode()
        # RFC 6121 session establishment is optional in both servers; skip it.
        return conn

    async def _open_stream(self, domain: str) -> None:
        self.send(
            f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            f"xmlns:stream='{STREAM_NS}' to='{domain}' version='1.0'>"
        )
        await self.expect(rb"</stream:features>")


class Component(_Conn):
    """An XEP-0114 component connection."""

    jid: str = ""

    @classmethod
    async def open(cls, host: str, port: int, jid: str, secret: str) -> Component:
        """Connect and authenticate with the shared secret."""
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, host, port)
        conn.jid = jid
        conn.send(
            f"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
            f"xmlns:stream='{STREAM_NS}' to='{jid}'>"
        )
        head = await conn.expect(rb"<stream:stream\b[^>]*>")
        stream_id = attr("id", head[head.find(b"<stream:stream") :])
        if not stream_id:
            raise XmppError(f"no stream id from the component port: {head[:300]!r}")
        digest = hashlib.sha1((stream_id + secret).encode()).hexdigest()
        conn.send(f"<handshake>{digest}</handshake>")
        reply = await conn.expect(rb"<handshake\s*/>|<handshake>\s*</handshake>|</stream:stream>")
        if b"handshake" not in reply:
            raise XmppError(f"component handshake for {jid} refused: {reply[:300]!r}")
        return conn
