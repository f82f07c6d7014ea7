"""The XEP-0114 component over a real TCP stream, against a minimal component-accepting server.

The server below speaks just enough XEP-0114 (stream header, handshake) to stand in for
Prosody; end-to-end tests with a real Prosody live in tests/e2e.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable

import pytest

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId, PageRequest
from buddycloud.services.engine import Engine
from buddycloud.xmpp.component import ChannelComponent
from buddycloud.xmpp.namespaces import NS_ADDRESS

SERVICE = "channels.capulet.lit"
SECRET = "s3cret"


class ComponentServer:
    """Accepts component streams, checks the handshake, records what the component sends."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.connections = 0
        self.handshakes_ok = 0
        self.received = ""
        self.changed = asyncio.Condition()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop_all(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def send(self, text: str) -> None:
        self._writers[-1].write(text.encode())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await self._notify()
        buffer = b""
        try:
            while b"<stream:stream" not in buffer or not buffer.rstrip().endswith(b">"):
                chunk = await reader.read(4096)
                if not chunk:
                    return
                buffer += chunk
            stream_id = f"id{self.connections}"
            writer.write(
                b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                b"xmlns:stream='http://etherx.jabber.org/streams' "
                + f"id='{stream_id}' from='{SERVICE}'>".encode()
            )
            buffer = b""
            while b"</handshake>" not in buffer:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                buffer += chunk
            digest = re.search(rb"<handshake>([0-9a-f]+)</handshake>", buffer)
            expected = hashlib.sha1((stream_id + self.secret).encode()).hexdigest()
            if digest is None or digest.group(1).decode() != expected:
                writer.write(
                    b"<stream:error><not-authorized "
                    b"xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
                )
                writer.close()
                return
            self.handshakes_ok += 1
            self._writers.append(writer)
            writer.write(b"<handshake/>")
            await self._notify()
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                self.received += chunk.decode()
                await self._notify()
        except ConnectionError:
            return
        finally:
            writer.close()
            await self._notify()


@pytest.fixture
async def server() -> AsyncIterator[ComponentServer]:
    running = ComponentServer(SECRET)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def component(engine: Engine, server: ComponentServer) -> AsyncIterator[ChannelComponent]:
    connected = ChannelComponent(
        engine, SERVICE, SECRET, "127.0.0.1", server.port, reconnect_min=0.05, reconnect_max=0.2
    )
    await connected.start()
    yield connected
    await connected.stop()


async def test_the_component_handshakes_and_answers_disco(
    component: ChannelComponent, server: ComponentServer
) -> None:
    await asyncio.wait_for(component.connected.wait(), 5)
    server.send(
        "<iq type='get' id='info1' from='juliet@capulet.lit/balcony' "
        f"to='{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
    await server.wait_for(lambda: 'id="info1"' in server.received)
    assert 'type="result"' in server.received
    assert '<identity category="pubsub" type="channels"' in server.received


async def test_the_component_reconnects_when_the_server_drops_the_stream(
    component: ChannelComponent, server: ComponentServer
) -> None:
    await asyncio.wait_for(component.connected.wait(), 5)
    server.drop_all()
    await server.wait_for(lambda: server.handshakes_ok >= 2)
    await asyncio.wait_for(component.connected.wait(), 5)
    # The new stream works.
    server.send(
        "<iq type='get' id='again' from='juliet@capulet.lit/balcony' "
        f"to='{SERVICE}'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    await server.wait_for(lambda: 'id="again"' in server.received)


async def test_the_component_keeps_trying_until_the_server_comes_back(engine: Engine) -> None:
    later = ComponentServer(SECRET)
    await later.start()
    port = later.port
    await later.stop()  # nothing listens on the port now
    component = ChannelComponent(
        engine, SERVICE, SECRET, "127.0.0.1", port, reconnect_min=0.05, reconnect_max=0.1
    )
    await component.start()
    try:
        assert not component.connected.is_set()
        later.port = port
        await later.start()
        await asyncio.wait_for(component.connected.wait(), 5)
    finally:
        await component.stop()
        await later.stop()


async def test_a_wrong_secret_never_connects(engine: Engine, server: ComponentServer) -> None:
    component = ChannelComponent(
        engine, SERVICE, "wrong", "127.0.0.1", server.port, reconnect_min=0.05, reconnect_max=0.1
    )
    await component.start()
    try:
        await server.wait_for(lambda: server.connections >= 3)
        assert server.handshakes_ok == 0
        assert not component.connected.is_set()
    finally:
        await component.stop()


async def test_notifications_go_out_on_the_stream(
    component: ChannelComponent, server: ComponentServer, engine: Engine
) -> None:
    await asyncio.wait_for(component.connected.wait(), 5)
    server.send(f"<presence from='romeo@capulet.lit/orchard' to='{SERVICE}'/>")
    juliet = Jid.parse("juliet@capulet.lit")
    await engine.register(juliet)
    await server.wait_for(
        lambda: component.online.is_online(Jid.parse("romeo@capulet.lit/orchard"))
    )
    posts = NodeId(juliet, "posts")
    await engine.subscribe(Jid.parse("romeo@capulet.lit"), posts, Jid.parse("romeo@capulet.lit"))
    await engine.publish(juliet, posts, EntryDraft(content="over the stream", byte_size=15))
    await server.wait_for(lambda: "over the stream" in server.received)
    assert 'to="romeo@capulet.lit/orchard"' in server.received
    assert 'type="headline"' in server.received


async def test_stop_is_idempotent(component: ChannelComponent) -> None:
    await asyncio.wait_for(component.connected.wait(), 5)
    await component.stop()
    await component.stop()
    assert not component.connected.is_set()


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for component state that nothing on the wire announces."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _stanzas(received: str, tag: str, containing: str = "") -> list[ET.Element]:
    """Every top-level `tag` stanza the component sent (holding that text), parsed."""
    return [
        element
        for element in ET.fromstring(f"<s>{received}</s>")
        if (element.tag == tag or element.tag.endswith(f"}}{tag}"))
        and containing in ET.tostring(element, encoding="unicode")
    ]


def _multicast_info(query_id: str, limit: int) -> str:
    return (
        f"<iq type='result' id='{query_id}' from='capulet.lit' to='{SERVICE}'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'>"
        "<identity category='server' type='im'/>"
        f"<feature var='{NS_ADDRESS}'/>"
        "<x xmlns='jabber:x:data' type='result'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{NS_ADDRESS}</value></field>"
        f"<field var='message'><value>{limit}</value></field></x></query></iq>"
    )


async def test_notifications_go_through_the_multicast_service_until_it_refuses_one(
    component: ChannelComponent, server: ComponentServer, engine: Engine
) -> None:
    await asyncio.wait_for(component.connected.wait(), 5)
    # The component asks the server's domain for XEP-0033; the server offers 2 per stanza.
    await server.wait_for(lambda: "disco#info" in server.received)
    (query,) = _stanzas(server.received, "iq")
    assert query.get("to") == "capulet.lit"
    server.send(_multicast_info(query.get("id", ""), 2))
    await _until(lambda: component.notifier.multicast is not None)

    juliet = Jid.parse("juliet@capulet.lit")
    await engine.register(juliet)
    posts = NodeId(juliet, "posts")
    followers = ["romeo@capulet.lit/orchard", "romeo@capulet.lit/phone", "nurse@capulet.lit/n"]
    for full in followers:
        server.send(f"<presence from='{full}' to='{SERVICE}'/>")
        bare = Jid.parse(full).bare
        await engine.subscribe(bare, posts, bare)
    await _until(lambda: len(component.online) == len(followers))
    server.received = ""

    await engine.publish(juliet, posts, EntryDraft(content="to all at once", byte_size=14))
    await server.wait_for(lambda: server.received.count("to all at once") == 2)
    sent = _stanzas(server.received, "message", "to all at once")
    assert [message.get("to") for message in sent] == ["capulet.lit", "capulet.lit"]
    addressed = [
        (address.get("type"), address.get("jid"))
        for message in sent
        for address in message.iter(f"{{{NS_ADDRESS}}}address")
    ]
    # juliet follows her own channel but is offline: only the three online resources
    assert sorted(addressed) == sorted(("bcc", full) for full in followers)

    # The service refuses the first stanza: its copies go one by one, and so does the rest.
    first = sent[0]
    refused_to = [address.get("jid") for address in first.iter(f"{{{NS_ADDRESS}}}address")]
    server.received = ""
    server.send(
        f"<message type='error' id='{first.get('id')}' from='capulet.lit' to='{SERVICE}'>"
        "<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></message>"
    )
    await server.wait_for(lambda: server.received.count("to all at once") == len(refused_to))
    resent = _stanzas(server.received, "message", "to all at once")
    assert [message.get("to") for message in resent] == refused_to
    assert component.notifier.multicast is None
    assert component.online.is_online(Jid.parse(followers[0]))  # not taken for a bounce

    server.received = ""
    await engine.publish(juliet, posts, EntryDraft(content="one by one", byte_size=10))
    await server.wait_for(lambda: server.received.count("one by one") == len(followers))
    one_by_one = _stanzas(server.received, "message", "one by one")
    assert sorted(message.get("to") or "" for message in one_by_one) == sorted(followers)


async def test_without_multicast_the_component_asks_nothing(
    engine: Engine, server: ComponentServer
) -> None:
    component = ChannelComponent(engine, SERVICE, SECRET, "127.0.0.1", server.port, multicast=False)
    await component.start()
    try:
        await asyncio.wait_for(component.connected.wait(), 5)
        server.send(
            "<iq type='get' id='ping1' from='juliet@capulet.lit/balcony' "
            f"to='{SERVICE}'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
        await server.wait_for(lambda: 'id="ping1"' in server.received)
        assert "disco#info" not in server.received
    finally:
        await component.stop()


async def test_the_multicast_service_is_looked_for_again_on_every_connection(
    component: ChannelComponent, server: ComponentServer
) -> None:
    await asyncio.wait_for(component.connected.wait(), 5)
    await server.wait_for(lambda: "disco#info" in server.received)
    (query,) = _stanzas(server.received, "iq")
    server.send(_multicast_info(query.get("id", ""), 50))
    await _until(lambda: component.notifier.multicast is not None)

    # The XMPP server restarts, maybe without the service: forget it until it answers again.
    server.received = ""
    server.drop_all()
    await server.wait_for(lambda: server.handshakes_ok >= 2 and "disco#info" in server.received)
    assert component.notifier.multicast is None
    (again,) = _stanzas(server.received, "iq")
    server.send(_multicast_info(again.get("id", ""), 7))
    await _until(lambda: component.notifier.multicast is not None)
    assert component.notifier.multicast is not None
    assert component.notifier.multicast.limit == 7


async def test_the_stream_parser_refuses_a_stanza_nesting_too_deep_and_serves_on(
    component: ChannelComponent, server: ComponentServer, engine: Engine
) -> None:
    """docs/xmpp.md limits, on the real stream: the deep publish (sent in pieces, as the
    network delivers) is answered bad-request and stores nothing; the stanza sent right
    behind it in the same write is served."""
    await asyncio.wait_for(component.connected.wait(), 5)
    juliet = Jid.parse("juliet@capulet.lit")
    await engine.register(juliet)
    deep = "<a>" * 1000 + "</a>" * 1000
    stanza = (
        "<iq type='set' id='deep1' from='juliet@capulet.lit/balcony' "
        f"to='{SERVICE}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
        "<publish node='/user/juliet@capulet.lit/posts'><item>"
        f"<entry xmlns='http://www.w3.org/2005/Atom'><content>x</content>{deep}</entry>"
        "</item></publish></pubsub></iq>"
        "<iq type='get' id='after1' from='juliet@capulet.lit/balcony' "
        f"to='{SERVICE}'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    for start in range(0, len(stanza), 1000):
        server.send(stanza[start : start + 1000])
    await server.wait_for(
        lambda: 'id="deep1"' in server.received and 'id="after1"' in server.received
    )
    (refused,) = [iq for iq in _stanzas(server.received, "iq") if iq.get("id") == "deep1"]
    assert refused.get("type") == "error"
    error = refused.find("error")
    assert error is not None and error.get("type") == "modify"
    stanzas_ns = "urn:ietf:params:xml:ns:xmpp-stanzas"
    assert error.find(f"{{{stanzas_ns}}}bad-request") is not None
    assert "deeper than 64 levels" in (error.findtext(f"{{{stanzas_ns}}}text") or "")
    (after,) = [iq for iq in _stanzas(server.received, "iq") if iq.get("id") == "after1"]
    assert after.get("type") == "result"
    page = await engine.get_items(juliet, NodeId(juliet, "posts"), PageRequest())
    assert page.items == []
    assert component.connected.is_set() and server.handshakes_ok == 1


async def test_a_stanza_over_the_size_limit_is_never_written(
    engine: Engine, server: ComponentServer
) -> None:
    """The XMPP server would close the stream for it; the component drops it instead."""
    component = ChannelComponent(
        engine, SERVICE, SECRET, "127.0.0.1", server.port, multicast=False, max_stanza_bytes=20_000
    )
    await component.start()
    try:
        await asyncio.wait_for(component.connected.wait(), 5)
        component.send_text(
            f"<message to='romeo@capulet.lit'><body>{'x' * 20_000}</body></message>"
        )
        component.send_text("<message to='romeo@capulet.lit'><body>still here</body></message>")
        await server.wait_for(lambda: "still here" in server.received)
        assert "x" * 1000 not in server.received
        assert component.dropped == 1
        assert server.handshakes_ok == 1
    finally:
        await component.stop()


async def _notify_romeo_while_down(
    component: ChannelComponent, server: ComponentServer, engine: Engine, contents: list[str]
) -> None:
    """Romeo follows Juliet and is online; the stream goes down (and stays down); Juliet
    publishes `contents` meanwhile."""
    await asyncio.wait_for(component.connected.wait(), 5)
    server.send(f"<presence from='romeo@capulet.lit/orchard' to='{SERVICE}'/>")
    juliet = Jid.parse("juliet@capulet.lit")
    await engine.register(juliet)
    await _until(lambda: component.online.is_online(Jid.parse("romeo@capulet.lit/orchard")))
    posts = NodeId(juliet, "posts")
    await engine.subscribe(Jid.parse("romeo@capulet.lit"), posts, Jid.parse("romeo@capulet.lit"))
    await server.stop()  # nothing listens: the component cannot reconnect yet
    await _until(lambda: not component.connected.is_set())
    server.received = ""
    for content in contents:
        await engine.publish(juliet, posts, EntryDraft(content=content, byte_size=len(content)))


async def test_notifications_of_events_during_an_outage_are_sent_once_the_stream_is_back(
    component: ChannelComponent, server: ComponentServer, engine: Engine
) -> None:
    contents = [f"while down {n}" for n in range(5)]
    await _notify_romeo_while_down(component, server, engine, contents)
    assert server.received == ""
    await server.start()  # same port: the component reconnects
    await server.wait_for(lambda: all(content in server.received for content in contents))
    # In the order they happened, once each.
    positions = [server.received.index(content) for content in contents]
    assert positions == sorted(positions)
    assert all(server.received.count(content) == 1 for content in contents)
    assert component.dropped == 0


async def test_past_the_reconnect_queue_size_the_oldest_stanzas_are_dropped(
    engine: Engine, server: ComponentServer, caplog: pytest.LogCaptureFixture
) -> None:
    component = ChannelComponent(
        engine,
        SERVICE,
        SECRET,
        "127.0.0.1",
        server.port,
        reconnect_min=0.05,
        reconnect_max=0.2,
        multicast=False,
        reconnect_queue_bytes=2_500,  # a notification is about 1 KiB
    )
    await component.start()
    try:
        contents = [f"queued {n}" for n in range(6)]
        await _notify_romeo_while_down(component, server, engine, contents)
        await server.start()
        await server.wait_for(lambda: contents[-1] in server.received)
        kept = [content for content in contents if content in server.received]
        assert kept == contents[-len(kept) :] and 0 < len(kept) < len(contents)
        assert component.dropped == len(contents) - len(kept)
        assert "reconnect_queue_bytes" in caplog.text
    finally:
        await component.stop()


async def test_every_sender_is_told_to_the_heard_from_hook_and_a_session_to_on_connected(
    engine: Engine, server: ComponentServer
) -> None:
    component = ChannelComponent(
        engine, SERVICE, SECRET, "127.0.0.1", server.port, reconnect_min=0.05, multicast=False
    )
    heard: list[str] = []
    sessions: list[bool] = []
    component.heard_from = heard.append
    component.on_connected = lambda: sessions.append(True)
    await component.start()
    try:
        await asyncio.wait_for(component.connected.wait(), 5)
        assert sessions == [True]
        # A request sent already serialised goes as it is; its answer settles it.
        asking = asyncio.ensure_future(
            component.request("set", "channels.montague.lit", "<inbox xmlns='x'/>", timeout=5)
        )
        await server.wait_for(lambda: "<inbox xmlns='x'/>" in server.received)
        (iq,) = _stanzas(server.received, "iq", "inbox")
        assert (iq.get("type"), iq.get("from"), iq.get("to")) == (
            "set",
            SERVICE,
            "channels.montague.lit",
        )
        server.send(
            f"<iq type='result' id='{iq.get('id')}' from='channels.montague.lit' to='{SERVICE}'/>"
        )
        assert (await asyncio.wait_for(asking, 5)).get("type") == "result"
        server.send(f"<presence from='romeo@montague.lit/orchard' to='{SERVICE}'/>")
        await _until(lambda: len(heard) == 2)
        assert heard == ["channels.montague.lit", "romeo@montague.lit/orchard"]
    finally:
        await component.stop()
