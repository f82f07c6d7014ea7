"""The outbox: events on this server's channels go once per following domain, durably, in
order, with backoff, and a dead domain delays no other (docs/federation.md).

A real engine over real SQLite; the network is a fake `request` function, and time a fake
`sleep` that the tests release.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from engine_support import FakeClock, text

from buddycloud.domain.events import AuthorizationRequested, ItemPublished, SubscriptionChanged
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId
from buddycloud.federation.client import RemoteServers
from buddycloud.federation.discovery import ServerDiscovery
from buddycloud.federation.outbox import MAX_BATCH_BYTES, Outbox
from buddycloud.services.config import ConfigUpdate, EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.base import Storage
from buddycloud.xmpp.multicast import QueryFailed
from buddycloud.xmpp.namespaces import NS_INBOX, NS_PUBSUB_EVENT
from buddycloud.xmpp.notifications import Notifier
from buddycloud.xmpp.presence import OnlineUsers
from buddycloud.xmpp.xml import parse_xml

JULIET = Jid.parse("juliet@capulet.lit")
NURSE = Jid.parse("nurse@capulet.lit")
ROMEO = Jid.parse("romeo@montague.lit")
BENVOLIO = Jid.parse("benvolio@montague.lit")
PARIS = Jid.parse("paris@verona.lit")
GUEST = Jid.parse("guest1@anon.montague.lit")
MONTAGUE = "channels.montague.lit"
VERONA = "channels.verona.lit"
NODE = NodeId(JULIET, "posts")
RESULT = "type='result'/>"
TIMEOUT = 5.0


def error(kind: str, condition: str) -> str:
    return (
        f"type='error'><error type='{kind}'><{condition} "
        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>the remote's own words</text></error></iq>"
    )


class Network:
    """Each channel server answers the inbox IQs it gets with its scripted answers in turn
    (then with `result`); a server that is `down` never answers."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.down: set[str] = set()
        self.sent: list[tuple[str, str]] = []
        self.in_flight: dict[str, int] = {}
        self.most_in_flight = 0
        self.changed = asyncio.Event()

    async def query(self, to: str, payload: Element) -> Element:
        if to in ("montague.lit", "verona.lit"):
            return parse_xml(
                "<query xmlns='http://jabber.org/protocol/disco#items'>"
                f"<item jid='channels.{to}'/></query>"
            )
        if to in (MONTAGUE, VERONA):
            return parse_xml(
                "<query xmlns='http://jabber.org/protocol/disco#info'>"
                "<identity category='pubsub' type='channels'/></query>"
            )
        raise QueryFailed(f"{to} answered with an error")

    async def request(
        self, type_: str, to: str, payload: Element | str, *, timeout: float
    ) -> Element:
        assert type_ == "set" and isinstance(payload, str)
        self.sent.append((to, payload))
        self.in_flight[to] = self.in_flight.get(to, 0) + 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight[to])
        self.changed.set()
        try:
            while to in self.down:
                await asyncio.sleep(0.01)  # until the test brings it back
            answers = self.answers.get(to)
            reply = answers.pop(0) if answers else RESULT
            return parse_xml(f"<iq xmlns='jabber:component:accept' from='{to}' id='x' {reply}")
        finally:
            self.in_flight[to] -= 1

    def to(self, server: str) -> list[list[str]]:
        """The item ids of each inbox IQ sent to `server`, in order."""
        return [ids_in(payload) for to, payload in self.sent if to == server]


def ids_in(payload: str) -> list[str]:
    inbox = parse_xml(payload)
    assert inbox.tag == f"{{{NS_INBOX}}}inbox"
    return [
        item.get("id", "")
        for item in inbox.iter(f"{{{NS_PUBSUB_EVENT}}}item")
        if item.get("id") is not None
    ]


class FakeTime:
    """`sleep` as the outbox sees it: each wait is recorded, and returns at once when
    `instant`, else when the test calls `release`."""

    def __init__(self, *, instant: bool = False) -> None:
        self.instant = instant
        self.waits: list[float] = []
        self._release = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if not self.instant:
            await self._release.wait()
            self._release.clear()
        await asyncio.sleep(0)

    def release(self) -> None:
        self._release.set()


async def until(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.fixture
async def storage(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Storage]:
    from buddycloud.storage.factory import open_storage

    path = tmp_path / "buddycloud.db"
    shutil.copyfile(sqlite_template, path)
    opened = await open_storage(f"sqlite:///{path}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def network() -> Network:
    return Network()


Build = Callable[..., Awaitable[Outbox]]


@pytest.fixture
async def build(storage: Storage, network: Network) -> AsyncIterator[Build]:
    """`await build(time)`: an engine over `storage` federating through `network`, and
    its outbox, started."""
    outboxes: list[Outbox] = []

    async def _build(time: FakeTime | None = None, *, start: bool = True) -> Outbox:
        clock = FakeClock()
        config = EngineConfig(
            domain="capulet.lit",
            service_jid=Jid.parse("channels.capulet.lit"),
            topics_domain="topics.capulet.lit",
        )
        engine = Engine(storage, clock, config)
        discovery = ServerDiscovery(
            network.query,
            no_txt,
            own_domain="capulet.lit",
            own_jid=Jid.parse("channels.capulet.lit"),
        )
        engine.use_remote(RemoteServers(discovery, network.request, clock))
        notifier = Notifier(Jid.parse("channels.capulet.lit"), OnlineUsers(), NoSink())
        time = time or FakeTime(instant=True)
        outbox = Outbox(
            engine, discovery, notifier, network.request, retry_max=30, sleep=time.sleep
        )
        engine.add_listener(outbox)
        if start:
            await outbox.start()
        outboxes.append(outbox)
        return outbox

    try:
        yield _build
    finally:
        for outbox in outboxes:
            await outbox.stop()


async def no_txt(domain: str) -> Jid | None:
    return None


class NoSink:
    def send(self, stanza: Element) -> None:
        pass

    def send_text(self, text: str) -> None:
        pass

    def send_many(self, texts: object) -> None:
        pass


async def juliets_channel(engine: Engine, *followers: Jid) -> None:
    await engine.register(JULIET)
    for follower in followers:
        await engine.subscribe(follower, NODE, follower, temporary=follower == GUEST)


async def post(engine: Engine, content: str) -> str:
    return (await engine.publish(JULIET, NODE, text(content))).id


async def queued(storage: Storage, domain: str) -> list[str]:
    entries = await storage.read_outbox(domain, max_bytes=1 << 20, max_rows=1000)
    return [entry.body for entry in entries]


# --- queueing ------------------------------------------------------------------------------


async def test_each_event_is_queued_once_per_following_domain_before_the_ack(
    build: Build, network: Network, storage: Storage
) -> None:
    network.down |= {MONTAGUE, VERONA}
    outbox = await build()
    engine = outbox.engine
    await juliets_channel(engine, ROMEO, BENVOLIO, PARIS, NURSE, GUEST)
    renders = 0
    render = outbox.notifier.render

    def counting(event: object) -> list[str]:
        nonlocal renders
        renders += 1
        return render(event)  # type: ignore[arg-type]

    outbox.notifier.render = counting  # type: ignore[method-assign]
    storage_before = {d: len(await queued(storage, d)) for d in ("montague.lit", "verona.lit")}

    item_id = await post(engine, "a plague on both your houses")

    # Durable when publish returned: once for montague.lit (two followers), once for
    # verona.lit; never for this server's own domain or a guest's.
    montague = await queued(storage, "montague.lit")
    verona = await queued(storage, "verona.lit")
    assert len(montague) == storage_before["montague.lit"] + 1
    assert len(verona) == storage_before["verona.lit"] + 1
    assert montague[-1] == verona[-1]
    assert f'id="{item_id}"' in montague[-1] and "a plague on both" in montague[-1]
    assert renders == 1
    statuses = {status.domain for status in await engine.outbox_status()}
    assert statuses == {"montague.lit", "verona.lit"}


async def test_events_on_other_domains_channels_and_prompts_are_not_queued(
    build: Build, network: Network, storage: Storage
) -> None:
    network.down.add(MONTAGUE)
    outbox = await build()
    engine = outbox.engine
    await engine.register(JULIET)
    await engine.configure(JULIET, NODE, ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    await engine.subscribe(ROMEO, NODE, ROMEO)  # pending: Juliet is asked, not montague.lit
    bodies = await queued(storage, "montague.lit")
    # Only the subscription change goes (Romeo's own, now pending), not the prompt.
    assert len(bodies) == 1
    assert "subscription=" in bodies[0] and "jabber:x:data" not in bodies[0]
    channel = await engine.storage.get_channel(JULIET)
    assert engine.following_domains(AuthorizationRequested(channel, NODE, ROMEO, (ROMEO,))) == ()
    # An event about another domain's channel is that domain's server's to send.
    membership = await engine.storage.find_membership(JULIET, ROMEO)
    assert membership is not None
    elsewhere = SubscriptionChanged(channel, NodeId(ROMEO, "posts"), membership, (PARIS,))
    assert engine.following_domains(elsewhere) == ()
    assert engine.following_domains(replace(elsewhere, node=NODE)) == ("verona.lit",)


# --- delivery ------------------------------------------------------------------------------


async def test_batches_go_oldest_first_one_at_a_time_within_64_kib(
    build: Build, network: Network, storage: Storage
) -> None:
    network.down.add(MONTAGUE)
    outbox = await build()
    engine = outbox.engine
    await juliets_channel(engine, ROMEO)
    ids = [await post(engine, f"post {n} " + "x" * 3000) for n in range(60)]
    network.down.clear()
    outbox.retry_now()
    await until(lambda: not outbox.pending()["montague.lit"], "delivery")

    delivered = [item for batch in network.to(MONTAGUE) for item in batch]
    # The first IQ held the subscription event only; the 60 posts follow in order, each
    # exactly once (the first post may have gone alone, while the server was down).
    assert [i for i in delivered if i in ids] == ids
    payloads = [payload for to, payload in network.sent if to == MONTAGUE]
    assert all(len(payload.encode()) <= MAX_BATCH_BYTES + 100 for payload in payloads)
    assert len(payloads) >= 4  # 180 KB of posts
    assert network.most_in_flight == 1
    assert await queued(storage, "montague.lit") == []
    [status] = await engine.outbox_status()
    assert (status.server, status.depth, status.attempts) == (MONTAGUE, 0, 0)
    assert status.last_success is not None


async def test_backoff_doubles_up_to_retry_max_and_keeps_the_batch(
    build: Build, network: Network, storage: Storage
) -> None:
    time = FakeTime(instant=True)
    network.answers[MONTAGUE] = [error("wait", "internal-server-error")] * 8
    outbox = await build(time)
    engine = outbox.engine
    await juliets_channel(engine, ROMEO)
    await until(lambda: not outbox.pending()["montague.lit"], "delivery")

    assert time.waits == [1, 2, 4, 8, 16, 30, 30, 30]
    # The same batch each time, until it was taken.
    payloads = [payload for to, payload in network.sent if to == MONTAGUE]
    assert len(payloads) == 9 and len(set(payloads)) == 1
    assert await queued(storage, "montague.lit") == []
    [status] = await engine.outbox_status()
    assert status.attempts == 0 and status.last_success is not None
    assert status.last_error == "answered wait error internal-server-error"


async def test_routing_errors_and_timeouts_are_retried(
    build: Build, network: Network, storage: Storage
) -> None:
    time = FakeTime(instant=True)
    network.answers[MONTAGUE] = [
        error("cancel", "remote-server-not-found"),
        error("wait", "remote-server-timeout"),
    ]
    outbox = await build(time)
    await juliets_channel(outbox.engine, ROMEO)
    await until(lambda: not outbox.pending()["montague.lit"], "delivery")
    assert time.waits == [1, 2]
    assert len(network.to(MONTAGUE)) == 3


async def test_a_batch_refused_for_good_is_dropped_and_the_next_goes(
    build: Build, network: Network, storage: Storage
) -> None:
    network.answers[MONTAGUE] = [error("cancel", "forbidden")]
    outbox = await build()
    engine = outbox.engine
    await juliets_channel(engine, ROMEO)
    await until(lambda: not outbox.pending()["montague.lit"], "the refusal")
    later = await post(engine, "after the refusal")
    await until(lambda: not outbox.pending()["montague.lit"], "delivery")

    assert network.to(MONTAGUE)[-1] == [later]
    assert len(network.to(MONTAGUE)) == 2  # the refused batch was not sent again
    assert await queued(storage, "montague.lit") == []
    [status] = await engine.outbox_status()
    assert status.last_error == "refused: answered cancel error forbidden"
    assert "own words" not in (status.last_error or "")


async def test_a_domain_heard_from_is_retried_at_once(
    build: Build, network: Network, storage: Storage
) -> None:
    time = FakeTime()  # waits until released: only a heard-from ends them here
    network.answers[MONTAGUE] = [error("wait", "remote-server-timeout")] * 2
    outbox = await build(time)
    await juliets_channel(outbox.engine, ROMEO)
    await until(lambda: time.waits == [1], "the first wait")

    outbox.heard_from("romeo@montague.lit/balcony")  # not its channel server
    outbox.heard_from(VERONA)
    await asyncio.sleep(0.05)
    assert len(network.to(MONTAGUE)) == 1

    outbox.heard_from(MONTAGUE)
    await until(lambda: time.waits == [1, 2], "the second wait")
    assert len(network.to(MONTAGUE)) == 2
    outbox.heard_from(MONTAGUE)
    await until(lambda: not outbox.pending()["montague.lit"], "delivery")
    assert len(network.to(MONTAGUE)) == 3
    assert await queued(storage, "montague.lit") == []


async def test_a_dead_domain_delays_no_other(
    build: Build, network: Network, storage: Storage
) -> None:
    network.down.add(MONTAGUE)  # never answers
    outbox = await build()
    engine = outbox.engine
    await juliets_channel(engine, ROMEO, PARIS)
    ids = [await post(engine, f"post {n}") for n in range(5)]
    await until(lambda: not outbox.pending()["verona.lit"], "delivery to verona")

    to_verona = [item for batch in network.to(VERONA) for item in batch]
    assert to_verona == ids
    assert outbox.pending()["montague.lit"]
    assert len(network.to(MONTAGUE)) == 1  # the first IQ still waits for its answer
    # Both follows (Romeo sees the followers' list) and the five posts wait, in order.
    waiting = await queued(storage, "montague.lit")
    assert len(waiting) == 7
    assert [ids_in(f'<inbox xmlns="{NS_INBOX}">{body}</inbox>') for body in waiting[2:]] == [
        [item_id] for item_id in ids
    ]


async def test_what_is_queued_is_delivered_after_a_restart_in_order(
    build: Build, network: Network, storage: Storage
) -> None:
    network.down.add(MONTAGUE)
    first = await build()
    await juliets_channel(first.engine, ROMEO)
    ids = [await post(first.engine, f"post {n}") for n in range(5)]
    await first.stop()  # the server stops with montague.lit unreachable
    network.down.clear()
    network.sent.clear()

    second = await build()  # a new process over the same database
    await until(lambda: not second.pending().get("montague.lit", True), "delivery")

    delivered = [item for batch in network.to(MONTAGUE) for item in batch]
    assert delivered == ids
    assert await queued(storage, "montague.lit") == []


async def test_a_domain_without_a_channel_server_waits_with_its_queue(
    build: Build, network: Network, storage: Storage
) -> None:
    time = FakeTime()
    outbox = await build(time)
    engine = outbox.engine
    stranger = Jid.parse("mercutio@nowhere.lit")
    await juliets_channel(engine, stranger)
    await until(lambda: time.waits == [1], "the first wait")
    [status] = await engine.outbox_status()
    assert (status.domain, status.server, status.depth) == ("nowhere.lit", None, 1)
    assert status.last_error == "no channel server found"


# --- the Notifier leaves other domains' users to their home servers ---------------------------


class RecordingSink(NoSink):
    def __init__(self) -> None:
        self.texts: list[str] = []

    def send_many(self, texts: object) -> None:
        self.texts.extend(texts)  # type: ignore[arg-type]


async def test_the_notifier_leaves_other_domains_users_to_their_home_server(
    build: Build, network: Network
) -> None:
    outbox = await build()
    engine = outbox.engine
    await juliets_channel(engine, ROMEO, NURSE, GUEST)
    online = OnlineUsers()
    for jid in ("romeo@montague.lit/r", "nurse@capulet.lit/n", "guest1@anon.montague.lit/g"):
        online.add(Jid.parse(jid))
    sink = RecordingSink()
    notifier = Notifier(Jid.parse("channels.capulet.lit"), online, sink)
    item = await engine.publish(JULIET, NODE, text("hello"))
    context = await engine.storage.get_node_context(NODE, JULIET)
    event = ItemPublished(context.node, item, (ROMEO, NURSE, GUEST))

    await notifier(event)  # federation off: everyone online is notified from here
    assert {parse_xml(t).get("to") for t in sink.texts} == {
        "romeo@montague.lit/r",
        "nurse@capulet.lit/n",
        "guest1@anon.montague.lit/g",
    }
    sink.texts.clear()
    notifier.home_delivers = engine.delivered_by_home_server
    await notifier(event)
    assert {parse_xml(t).get("to") for t in sink.texts} == {
        "nurse@capulet.lit/n",
        "guest1@anon.montague.lit/g",
    }
    # An authorization prompt still asks a moderator of another domain directly.
    sink.texts.clear()
    channel = await engine.storage.get_channel(JULIET)
    await notifier(AuthorizationRequested(channel, NODE, PARIS, (ROMEO,)))
    assert [parse_xml(t).get("to") for t in sink.texts] == ["romeo@montague.lit/r"]


async def test_the_notifier_and_the_outbox_render_an_event_once_between_them(
    build: Build, network: Network, storage: Storage
) -> None:
    outbox = await build()
    engine = outbox.engine
    notifier = outbox.notifier
    notifier.home_delivers = engine.delivered_by_home_server
    engine.add_listener(notifier)
    notifier.online.add(Jid.parse("nurse@capulet.lit/n"))
    await juliets_channel(engine, ROMEO, NURSE)
    renders = 0
    render = notifier._render

    def counting(event: object) -> list[str]:
        nonlocal renders
        renders += 1
        return render(event)  # type: ignore[arg-type]

    notifier._render = counting  # type: ignore[method-assign]
    item_id = await post(engine, "one rendering")
    assert renders == 1
    await until(lambda: not outbox.pending()["montague.lit"], "delivery")
    assert any(item_id in ids for ids in network.to(MONTAGUE))
