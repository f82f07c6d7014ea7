"""XMPP edge test helpers: a fake stream, and clients that speak XML to the router.

`FakeStream` stands where the component's XMPP stream would be: tests feed it stanzas as
XML text (as an XMPP server routes them to the component) and read back what the
component sent, parsed (STYLE principle 12).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element

from buddycloud.domain.jid import Jid
from buddycloud.services.engine import Engine
from buddycloud.xmpp.fitting import DEFAULT_MAX_STANZA_BYTES
from buddycloud.xmpp.notifications import Notifier
from buddycloud.xmpp.presence import OnlineUsers
from buddycloud.xmpp.router import Router
from buddycloud.xmpp.xml import BoundedPullParser, parse_xml, serialize

SERVICE = "channels.capulet.lit"
NS = {
    "pubsub": "http://jabber.org/protocol/pubsub",
    "owner": "http://jabber.org/protocol/pubsub#owner",
    "event": "http://jabber.org/protocol/pubsub#event",
    "errors": "http://jabber.org/protocol/pubsub#errors",
    "bcerr": "http://buddycloud.org/v1/errors",
    "bc": "http://buddycloud.org/v1",
    "stanzas": "urn:ietf:params:xml:ns:xmpp-stanzas",
    "disco": "http://jabber.org/protocol/disco#info",
    "items": "http://jabber.org/protocol/disco#items",
    "x": "jabber:x:data",
    "rsm": "http://jabber.org/protocol/rsm",
    "atom": "http://www.w3.org/2005/Atom",
    "thr": "http://purl.org/syndication/thread/1.0",
    "ts": "http://purl.org/atompub/tombstones/1.0",
    "activity": "http://activitystrea.ms/spec/1.0/",
    "mam": "urn:xmpp:mam:2",
    "mamtmp": "urn:xmpp:mam:tmp",
    "client": "jabber:client",
    "delay": "urn:xmpp:delay",
    "fwd": "urn:xmpp:forward:0",
    "search": "jabber:iq:search",
    "register": "jabber:iq:register",
}


STREAM_HEADER = (
    "<stream:stream xmlns='jabber:component:accept' "
    "xmlns:stream='http://etherx.jabber.org/streams' from='capulet.lit' id='fake'>"
)


def parse_stanza(xml: str) -> tuple[Element, str | None]:
    """One stanza as the component's stream parser hands it over: the element, and the
    parse-time limit it broke (None if none)."""
    parser = BoundedPullParser()
    parser.feed(STREAM_HEADER)
    parser.feed(xml)
    depth = 0
    found: tuple[Element, str | None] | None = None
    for event, element in parser.read_events():
        depth += 1 if event == "start" else -1
        if event == "end" and depth == 1:
            assert found is None, "one stanza at a time"
            found = (element, parser.refusal)
    assert found is not None, f"not a whole stanza: {xml[:200]}"
    return found


class FakeStream:
    """Records every stanza the edge sends, serialised exactly as it would go on the wire.

    Like an XMPP server, it does not take a stanza larger than `max_stanza_bytes`: `take`
    fails the test if one was sent (a real server would have closed the stream).
    """

    def __init__(self, max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES) -> None:
        self.max_stanza_bytes = max_stanza_bytes
        self.wire: list[str] = []
        # The wire text of the stanzas `take` returned last, in the same order.
        self.taken: list[str] = []

    def send(self, stanza: Element) -> None:
        self.wire.append(serialize(stanza))

    def send_text(self, text: str) -> None:
        self.wire.append(text)

    def send_many(self, texts: Sequence[str]) -> None:
        self.wire.extend(texts)

    def take(self) -> list[Element]:
        """The stanzas sent since the last call, parsed back from the wire text."""
        oversized = [
            len(text.encode()) for text in self.wire if len(text.encode()) > self.max_stanza_bytes
        ]
        assert not oversized, f"stanzas of {oversized} bytes, over {self.max_stanza_bytes}"
        sent = [parse_xml(text) for text in self.wire]
        self.taken = list(self.wire)
        self.wire.clear()
        return sent


class Client:
    """Speaks to the component as one XMPP user would, through the XMPP server."""

    def __init__(self, harness: Harness, jid: str) -> None:
        self.harness = harness
        self.jid = jid
        self._ids = 0
        self.reply_text = ""

    async def iq(self, type_: str, payload: str) -> Element:
        """Send an IQ and return the component's reply (asserting exactly one arrives)."""
        self._ids += 1
        reply = await self.harness.feed(
            f"<iq xmlns='jabber:component:accept' type='{type_}' id='q{self._ids}' "
            f"from='{self.jid}' to='{SERVICE}'>{payload}</iq>"
        )
        replies = [s for s in reply if s.tag == "iq"]
        assert len(replies) == 1, [serialize(s) for s in reply]
        assert replies[0].get("id") == f"q{self._ids}"
        assert replies[0].get("to") == self.jid
        self.harness.extra = [s for s in reply if s.tag != "iq"]
        # The reply as written on the wire, to measure it.
        self.reply_text = self.harness.stream.taken[reply.index(replies[0])]
        return replies[0]

    async def ok(self, type_: str, payload: str) -> Element:
        """Send an IQ that must succeed."""
        reply = await self.iq(type_, payload)
        assert reply.get("type") == "result", serialize(reply)
        return reply

    async def error(self, type_: str, payload: str) -> tuple[str, str, str | None]:
        """Send an IQ that must fail: (condition, error type, application condition)."""
        reply = await self.iq(type_, payload)
        assert reply.get("type") == "error", serialize(reply)
        return condition_of(reply)

    async def presence(self, type_: str | None = None) -> list[Element]:
        type_attr = f" type='{type_}'" if type_ else ""
        return await self.harness.feed(
            f"<presence xmlns='jabber:component:accept' from='{self.jid}' to='{SERVICE}'"
            f"{type_attr}/>"
        )

    async def message(self, payload: str) -> list[Element]:
        return await self.harness.feed(
            f"<message xmlns='jabber:component:accept' from='{self.jid}' to='{SERVICE}'>"
            f"{payload}</message>"
        )


def condition_of(stanza: Element) -> tuple[str, str, str | None]:
    error = stanza.find("error")
    assert error is not None
    condition = next(
        child.tag.split("}")[1]
        for child in error
        if child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}")
        and not child.tag.endswith("}text")
    )
    app = next(
        (
            child.tag.split("}")[1]
            for child in error
            if not child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}")
        ),
        None,
    )
    return condition, error.get("type", ""), app


class Harness:
    def __init__(self, engine: Engine, *, max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES) -> None:
        self.engine = engine
        self.stream = FakeStream(max_stanza_bytes)
        self.online = OnlineUsers()
        self.router = Router(
            engine,
            Jid.parse(SERVICE),
            self.stream,
            self.online,
            max_payload_bytes=4096,
            max_stanza_bytes=max_stanza_bytes,
        )
        self.notifier = Notifier(
            Jid.parse(SERVICE), self.online, self.stream, max_stanza_bytes=max_stanza_bytes
        )
        engine.add_listener(self.notifier)
        self.extra: list[Element] = []

    async def feed(self, xml: str) -> list[Element]:
        """Hand one stanza to the router, parsed as the component's stream parses it;
        return everything sent while handling it."""
        stanza, refusal = parse_stanza(xml)
        await self.router.handle(stanza, refusal=refusal)
        return self.stream.take()

    def client(self, jid: str) -> Client:
        return Client(self, jid)
