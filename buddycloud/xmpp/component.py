"""The XEP-0114 component: the stream to the XMPP server, and its reconnection.

This and `c2s.py` (the `xmpp` sign-in method's client streams) are the modules that import
slixmpp. slixmpp parses the stream and performs the
handshake; every stanza addressed to the component is handed, as its ElementTree element,
straight to `Router.handle`, without slixmpp's stanza objects, handler matching or plugin
layers (XEP-0030 and everything else are answered by this project's own code).
Outgoing stanzas are serialised once by the edge and written with `send_raw`.

When the stream goes away, the component reconnects with exponential backoff and jitter.
What it sends meanwhile (notifications of events that happen during the outage, answers
to requests it was handling) waits in a queue of at most `reconnect_queue_bytes` and
leaves first once the stream is back; past that size the oldest stanzas are dropped, and
clients catch up with MAM and recent-items. Once connected, it looks for the XMPP
server's XEP-0033 multicast service (`multicast.py`) and, when there is one, sends each
notification through it once for all its recipients.

No stanza larger than `max_stanza_bytes` is ever written: the XMPP server would close the
stream. The edge renders everything to fit (`fitting.py`); this is the last guard.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import ComponentXMPP

from buddycloud.domain.jid import Jid
from buddycloud.services.engine import Engine
from buddycloud.util.errors import CannotStart
from buddycloud.xmpp.fitting import DEFAULT_MAX_STANZA_BYTES, fits
from buddycloud.xmpp.multicast import QueryFailed, QueryTimeout, discover
from buddycloud.xmpp.namespaces import NS_COMPONENT, qname
from buddycloud.xmpp.notifications import Notifier
from buddycloud.xmpp.presence import OnlineUsers
from buddycloud.xmpp.router import Router
from buddycloud.xmpp.stanzas import DEFAULT_MAX_PAYLOAD_BYTES
from buddycloud.xmpp.xml import BoundedPullParser, quote_attribute, serialize, utf8_size

log = logging.getLogger(__name__)

_STANZA_TAGS = frozenset(qname(NS_COMPONENT, name) for name in ("iq", "message", "presence"))
_IQ = qname(NS_COMPONENT, "iq")
_MESSAGE = qname(NS_COMPONENT, "message")
QUERY_TIMEOUT = 10.0
DEFAULT_RECONNECT_QUEUE_BYTES = 16 * 1024 * 1024
_NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"


class ComponentRefused(CannotStart):
    """The first connection to the XMPP server failed: it refused the component (a wrong
    secret, an undeclared component JID) or could not be reached. The message says which,
    where, and what to do."""


def describe_stream_error(error: Element) -> str:
    """A stream error as `condition (text)`, e.g. `not-authorized (Given token does not
    match calculated token)`."""
    condition = "undefined-condition"
    text = ""
    for child in error:
        namespace, _, name = child.tag.rpartition("}")
        if namespace.lstrip("{") != _NS_STREAMS:
            continue
        if name == "text":
            text = (child.text or "").strip()
        else:
            condition = name
    return f"{condition} ({text})" if text else condition


def refusal_advice(condition: str) -> str:
    """What to do when the XMPP server ends the component's stream with `condition`."""
    if condition.startswith("not-authorized"):
        return (
            "the component secret differs from the XMPP server's: make [xmpp] secret the "
            "one declared for the component there"
        )
    if condition.startswith(("host-unknown", "improper-addressing", "host-gone")):
        return (
            "the XMPP server has no component of that name: declare [xmpp] component_jid "
            'there (Prosody: Component "<jid>"; ejabberd: ejabberd_service hosts)'
        )
    if condition.startswith("conflict"):
        return "another process is connected as that component: stop it first"
    return "see the XMPP server's log"


class _ChannelStream(ComponentXMPP):
    """The component stream. slixmpp reads the socket, parses the XML (with
    `BoundedPullParser`, which measures each stanza as it is parsed) and performs the
    handshake; every iq, message and presence then goes straight to `deliver` as its
    ElementTree element, with what the stanza broke of the parse-time limits (None if
    nothing), without slixmpp's stanza objects and handler matching."""

    def __init__(
        self,
        jid: str,
        secret: str,
        host: str,
        port: int,
        deliver: Callable[[Element, str | None], None],
    ) -> None:
        super().__init__(jid, secret, host, port)  # type: ignore[no-untyped-call]
        self._deliver = deliver
        self._parser: BoundedPullParser | None = None

    def init_parser(self) -> None:
        super().init_parser()
        self._parser = BoundedPullParser()
        self.parser = self._parser

    def _spawn_event(self, xml: Element) -> None:
        if xml.tag in _STANZA_TAGS:
            refusal = self._parser.refusal if self._parser is not None else None
            if refusal is not None:
                # Only the envelope answers: the rest may be what the limits keep out.
                xml = Element(xml.tag, xml.attrib)
            self._deliver(xml, refusal)
        else:  # the handshake and stream-level elements stay slixmpp's
            super()._spawn_event(xml)


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What one component handshake found (`buddycloud doctor`).

    Attributes:
        failure: why the XMPP server refused or could not be reached, with what to do;
            None when it accepted the secret.
        already_connected: it accepted the secret but another process (the running
            channel server) holds the component's connection.
        disco_items: the JIDs disco#items of the domain lists, when asked.
    """

    failure: str | None
    already_connected: bool = False
    disco_items: list[str] | None = None


_NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


async def probe_component(
    jid: str, secret: str, host: str, port: int, *, disco_domain: str, timeout: float
) -> ProbeOutcome:
    """Connect once as the component: is the secret accepted? Then, holding the
    connection, ask disco#items of `disco_domain`, and disconnect."""
    stream = ComponentXMPP(jid, secret, host, port)  # type: ignore[no-untyped-call]
    for name in ("IM", "IMError", "Presence"):
        stream.remove_handler(name)
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[ProbeOutcome] = loop.create_future()

    def settle(result: ProbeOutcome) -> None:
        if not outcome.done():
            outcome.set_result(result)

    async def ask_disco() -> None:
        iq = stream.make_iq_get(queryxmlns=_NS_DISCO_ITEMS, ito=disco_domain, ifrom=jid)
        try:
            reply = await iq.send(timeout=timeout)  # type: ignore[no-untyped-call]
        except Exception:  # an error reply or no answer: nothing is listed
            settle(ProbeOutcome(None, disco_items=[]))
            return
        items = reply.xml.findall(f"{{{_NS_DISCO_ITEMS}}}query/{{{_NS_DISCO_ITEMS}}}item")
        settle(ProbeOutcome(None, disco_items=[item.get("jid", "") for item in items]))

    def on_session_start(_: Any) -> None:
        disco = loop.create_task(ask_disco())
        disco.add_done_callback(lambda _: None)
        tasks.add(disco)

    def on_stream_error(error: Any) -> None:
        condition = describe_stream_error(error.xml)
        if condition.startswith("conflict"):
            settle(ProbeOutcome(None, already_connected=True))
            return
        settle(
            ProbeOutcome(
                f"it refused the component {jid}: {condition}; {refusal_advice(condition)}"
            )
        )

    def on_connection_failed(error: Any) -> None:
        reason: object = error
        if isinstance(error, OSError) and error.errno is not None and error.errno > 0:
            reason = os.strerror(error.errno)
        settle(
            ProbeOutcome(
                f"cannot connect ({reason}): check that the XMPP server runs and that "
                "[xmpp] host and port name its component port"
            )
        )

    def on_disconnected(_: Any) -> None:
        settle(ProbeOutcome("it closed the stream before the handshake completed"))

    tasks: set[asyncio.Task[None]] = set()
    stream.add_event_handler("session_start", on_session_start)
    stream.add_event_handler("stream_error", on_stream_error)
    stream.add_event_handler("connection_failed", on_connection_failed)
    stream.add_event_handler("disconnected", on_disconnected)
    stream.connect(host, port)
    try:
        return await asyncio.wait_for(asyncio.shield(outcome), timeout + 5)
    except TimeoutError:
        return ProbeOutcome(f"no handshake within {timeout + 5:.0f} s")
    finally:
        stream.cancel_connection_attempt()
        if stream.transport is not None:
            stream.abort()
        for task in tasks:
            task.cancel()


class ChannelComponent:
    """The channel server's XMPP edge, connected to an XMPP server as a component.

    Args:
        engine: the channel engine.
        jid: the component's JID (e.g. `channels.capulet.lit`).
        secret: the shared secret configured for the component in the XMPP server.
        host: the XMPP server's address.
        port: its component port (XEP-0114).
        max_payload_bytes: larger item payloads are refused with payload-too-big.
        reconnect_min: first delay, in seconds, before reconnecting.
        reconnect_max: longest delay between attempts.
        multicast: send notifications through the XMPP server's XEP-0033 service, if it
            has one (found again on every connection).
        server_domain: the XMPP server's domain, where the multicast service is looked
            for; by default the component JID without its first label.
        max_stanza_bytes: the largest stanza the XMPP server accepts from the component
            (Prosody: `component_stanza_size_limit`); replies and notifications fit it.
        reconnect_queue_bytes: what is sent while the stream is down is kept, up to this
            many bytes (oldest dropped first), and sent once it is back.
    """

    def __init__(
        self,
        engine: Engine,
        jid: str | Jid,
        secret: str,
        host: str,
        port: int,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        reconnect_min: float = 1.0,
        reconnect_max: float = 60.0,
        multicast: bool = True,
        server_domain: str | None = None,
        max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES,
        reconnect_queue_bytes: int = DEFAULT_RECONNECT_QUEUE_BYTES,
    ) -> None:
        self.jid = jid if isinstance(jid, Jid) else Jid.parse(jid)
        self.engine = engine
        self.host = host
        self.port = port
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.connected = asyncio.Event()
        self.online = OnlineUsers()
        self.max_stanza_bytes = max_stanza_bytes
        self.reconnect_queue_bytes = reconnect_queue_bytes
        self.router = Router(
            engine,
            self.jid,
            self,
            self.online,
            max_payload_bytes=max_payload_bytes,
            max_stanza_bytes=max_stanza_bytes,
        )
        self.notifier = Notifier(self.jid, self.online, self, max_stanza_bytes=max_stanza_bytes)
        self._secret = secret
        self._stream: ComponentXMPP | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._stream_ended = asyncio.Event()
        self._stopping = False
        self._listening = False
        # Stanzas never sent: too large for the XMPP server, or pushed out of the queue.
        self.dropped = 0
        # What was sent while the stream was down, oldest first, and its size in bytes.
        self._waiting: deque[tuple[str, int]] = deque()
        self._waiting_bytes = 0
        self._outgoing: list[str] = []
        self._flush_scheduled = False
        self._dropped_this_outage = 0
        self.use_multicast = multicast
        self.server_domain = server_domain or self.jid.domain.partition(".")[2] or self.jid.domain
        self._queries: dict[str, tuple[str, asyncio.Future[Element]]] = {}
        self._query_ids = itertools.count(1)
        # Why the last attempt to connect ended without a session (None while unknown).
        self._failure: str | None = None
        self._first_outcome: asyncio.Future[str | None] | None = None
        # Told the sender of every stanza that reaches the component (federation's
        # outbox retries a domain at once when its channel server is heard from).
        self.heard_from: Callable[[str], None] | None = None
        # Called each time a session starts (the outbox retries what waits).
        self.on_connected: Callable[[], None] | None = None

    # --- StanzaSink -----------------------------------------------------------------------

    def send(self, stanza: Element) -> None:
        self.send_text(serialize(stanza))

    def send_text(self, text: str) -> None:
        self.send_many((text,))

    def send_many(self, texts: Sequence[str]) -> None:
        # No character takes more than 4 bytes: only long texts need measuring.
        if texts and max(map(len, texts)) * 4 > self.max_stanza_bytes:
            texts = [text for text in texts if self._sendable(text)]
        if not self._is_up():
            self._keep(texts)
            return
        # Everything sent during one turn of the event loop leaves in one write at its end:
        # under load, a whole batch of replies and notifications becomes one TCP write that
        # the XMPP server reads in one go, instead of a small segment per stanza.
        self._outgoing.extend(texts)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _sendable(self, text: str) -> bool:
        if fits(text, self.max_stanza_bytes):
            return True
        # The edge renders everything to fit; should anything slip through, it must not
        # reach the XMPP server, which would close the stream for everyone.
        self.dropped += 1
        log.error(
            "not sending a stanza of %d bytes: more than [xmpp] max_stanza_bytes (%d)",
            utf8_size(text),
            self.max_stanza_bytes,
        )
        return False

    def _is_up(self) -> bool:
        stream = self._stream
        return stream is not None and self.connected.is_set() and stream.transport is not None

    def _flush(self) -> None:
        self._flush_scheduled = False
        texts, self._outgoing = self._outgoing, []
        if not texts:
            return
        stream = self._stream
        if stream is None or not self._is_up():
            self._keep(texts)
            return
        stream.send_raw("".join(texts))

    def _keep(self, texts: Sequence[str]) -> None:
        """Queue what is sent while the stream is down, dropping the oldest past the
        queue's size: those clients catch up with MAM or recent-items."""
        if self._stopping:
            self.dropped += len(texts)
            return
        waiting = self._waiting
        for text in texts:
            size = utf8_size(text)
            waiting.append((text, size))
            self._waiting_bytes += size
        dropped = 0
        while self._waiting_bytes > self.reconnect_queue_bytes:
            _, size = waiting.popleft()
            self._waiting_bytes -= size
            dropped += 1
        if dropped:
            if self._dropped_this_outage == 0:
                log.warning(
                    "the XMPP stream is down and more than [xmpp] reconnect_queue_bytes (%d) "
                    "waits to be sent: dropping the oldest stanzas; clients catch up with "
                    "MAM and recent-items",
                    self.reconnect_queue_bytes,
                )
            self._dropped_this_outage += dropped
            self.dropped += dropped

    def _send_waiting(self, stream: ComponentXMPP) -> None:
        """Send what waited while the stream was down, before anything else."""
        waiting, self._waiting = self._waiting, deque()
        size, self._waiting_bytes = self._waiting_bytes, 0
        dropped, self._dropped_this_outage = self._dropped_this_outage, 0
        if waiting:
            log.info(
                "sending %d stanzas (%d bytes) kept while the XMPP stream was down",
                len(waiting),
                size,
            )
            stream.send_raw("".join([text for text, _ in waiting]))
        if dropped:
            log.warning(
                "%d stanzas sent while the XMPP stream was down were dropped "
                "([xmpp] reconnect_queue_bytes)",
                dropped,
            )

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the notification listener and start connecting (returns at once)."""
        if self._supervisor is not None:
            return
        if not self._listening:
            self.engine.add_listener(self.notifier)
            self._listening = True
        self._stopping = False
        self._first_outcome = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._supervise(), name="xmpp-component")

    async def first_connection(self) -> None:
        """Wait for the outcome of the first attempt to connect after `start`.

        Raises:
            ComponentRefused: that attempt failed: the XMPP server refused the component
                or could not be reached. The component stops trying.
        """
        if self._first_outcome is None:
            raise RuntimeError("first_connection() before start()")
        failure = await asyncio.shield(self._first_outcome)
        if failure is None:
            return
        await self.stop()
        raise ComponentRefused(f"XMPP server at {self.host}:{self.port}: {failure}")

    async def stop(self) -> None:
        """Close the stream and stop reconnecting. Safe to call twice."""
        self._stopping = True
        self._flush()  # what was answered before the stop still leaves
        supervisor, self._supervisor = self._supervisor, None
        stream = self._stream
        if stream is not None:
            stream.cancel_connection_attempt()
            if stream.transport is not None:
                await stream.disconnect(wait=1.0)
        self.connected.clear()
        self._stream_ended.set()
        if supervisor is not None:
            supervisor.cancel()
            try:
                await supervisor
            except asyncio.CancelledError:
                pass
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self) -> None:
        delay = self.reconnect_min
        while not self._stopping:
            self._stream_ended.clear()
            had_session = await self._connect_once()
            if self._stopping:
                return
            delay = self.reconnect_min if had_session else min(delay * 2, self.reconnect_max)
            pause = delay * random.uniform(0.8, 1.2)
            log.info(
                "XMPP stream to %s:%s closed; reconnecting in %.1fs", self.host, self.port, pause
            )
            await asyncio.sleep(pause)

    async def _connect_once(self) -> bool:
        """Run one stream until it ends. True if the handshake had succeeded."""
        stream = self._make_stream()
        self._stream = stream
        self._failure = None
        session = {"started": False}

        def on_session_start(_: Any) -> None:
            session["started"] = True
            self._failure = None
            self._settle_first(None)
            self.connected.set()
            log.info("component %s connected to %s:%s", self.jid, self.host, self.port)
            self._send_waiting(stream)
            if self.use_multicast:
                self._spawn(self._find_multicast())
            if self.on_connected is not None:
                self.on_connected()

        def on_end(_: Any) -> None:
            self.connected.clear()
            self.notifier.multicast = None
            self._stream_ended.set()

        def on_stream_error(error: Any) -> None:
            condition = describe_stream_error(error.xml)
            self._failure = (
                f"it refused the component {self.jid}: {condition}; {refusal_advice(condition)}"
            )
            log.warning("the XMPP server ended the component's stream: %s", condition)

        def on_connection_failed(error: Any) -> None:
            reason: object = error
            if isinstance(error, OSError) and error.errno is not None and error.errno > 0:
                reason = os.strerror(error.errno)  # asyncio's strerror repeats the address
            elif isinstance(error, OSError) and error.strerror:
                reason = error.strerror
            self._failure = (
                f"cannot connect ({reason}): check that the XMPP server runs and that "
                "[xmpp] host and port name its component port"
            )
            on_end(error)

        stream.add_event_handler("session_start", on_session_start)
        stream.add_event_handler("stream_error", on_stream_error)
        stream.add_event_handler("disconnected", on_end)
        stream.add_event_handler("connection_failed", on_connection_failed)
        stream.connect(self.host, self.port)
        try:
            await self._stream_ended.wait()
        finally:
            # slixmpp would retry on its own schedule; this supervisor owns the backoff.
            stream.cancel_connection_attempt()
            if stream.transport is not None:
                stream.abort()
            self.connected.clear()
        if not session["started"] and not self._stopping:
            self._settle_first(
                self._failure or "it closed the stream before the handshake completed"
            )
        return session["started"]

    def _settle_first(self, failure: str | None) -> None:
        outcome = self._first_outcome
        if outcome is not None and not outcome.done():
            outcome.set_result(failure)

    def _make_stream(self) -> ComponentXMPP:
        stream = _ChannelStream(str(self.jid), self._secret, self.host, self.port, self._on_stanza)
        for name in ("IM", "IMError", "Presence"):
            stream.remove_handler(name)
        return stream

    def _on_stanza(self, stanza: Element, refusal: str | None = None) -> None:
        if self.heard_from is not None:
            sender = stanza.get("from")
            if sender:
                self.heard_from(sender)
        type_ = stanza.get("type")
        if type_ in ("result", "error") and stanza.tag == _IQ and self._answered(stanza, refusal):
            return
        if refusal is None and type_ == "error" and stanza.tag == _MESSAGE:
            if self.notifier.refused(stanza):
                return
        self._spawn(self.router.handle(stanza, refusal=refusal))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- requests the component sends -------------------------------------------------------

    async def request(
        self, type_: str, to: str, payload: Element | str, *, timeout: float = QUERY_TIMEOUT
    ) -> Element:
        """Send an IQ of `type_` (get or set) with `payload` to `to`; its answer, the whole
        `<iq type="result">` or `<iq type="error">` stanza. A `payload` already serialised
        is sent as it is.

        Raises:
            QueryTimeout: no answer within `timeout` seconds.
            QueryFailed: no stream to send it on.
        """
        if not self.connected.is_set():
            raise QueryFailed("the component is not connected to its XMPP server")
        stanza_id = f"q{next(self._query_ids)}"
        future: asyncio.Future[Element] = asyncio.get_running_loop().create_future()
        self._queries[stanza_id] = (to, future)
        if isinstance(payload, str):
            text = (
                f"<iq type={quote_attribute(type_)} from={quote_attribute(str(self.jid))} "
                f"to={quote_attribute(to)} id={quote_attribute(stanza_id)}>{payload}</iq>"
            )
        else:
            iq = Element("iq", {"type": type_, "from": str(self.jid), "to": to, "id": stanza_id})
            iq.append(payload)
            text = serialize(iq)
        try:
            self.send_text(text)
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise QueryTimeout(f"{to} did not answer in {timeout:g} s") from None
        finally:
            self._queries.pop(stanza_id, None)

    async def query(self, to: str, payload: Element) -> Element:
        """Send an IQ get with `payload` to `to`; the payload of its result.

        Raises:
            QueryFailed: an error answer, no answer in QUERY_TIMEOUT, or no stream.
        """
        answer = await self.request("get", to, payload)
        children = [child for child in answer if isinstance(child.tag, str)]
        if answer.get("type") == "result" and children:
            return children[0]
        raise QueryFailed(f"{to} answered with an error")

    def _answered(self, iq: Element, refusal: str | None = None) -> bool:
        """Settle the request `iq` answers; False if it answers none of ours. An answer the
        stream refused (`refusal`, too large or malformed) fails the request."""
        pending = self._queries.get(iq.get("id", ""))
        if pending is None or pending[0] != iq.get("from") or pending[1].done():
            return False
        if refusal is not None:
            pending[1].set_exception(QueryFailed(f"{pending[0]} answered: {refusal}"))
            return True
        pending[1].set_result(iq)
        return True

    async def _find_multicast(self) -> None:
        service = await discover(self.query, self.server_domain, own_jid=str(self.jid))
        if service is None or not self.connected.is_set():
            log.info("no multicast service: one notification stanza per recipient")
            return
        self.notifier.multicast = service
        log.info(
            "notifications go through the multicast service %s, %d recipients per stanza",
            service.jid,
            service.limit,
        )
