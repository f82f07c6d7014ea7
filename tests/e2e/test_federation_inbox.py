"""montague.lit's inbox through real XMPP servers over s2s.

mantua.lit has no XMPP service; its DNS record names probe.lit, a component of capulet.lit's
Prosody, as its channel server. The tests run mantua.lit's channel server in their own
process as that component (this project's engine and component), so montague.lit's server
follows, back-fills and is approved through it over s2s, and the tests send montague.lit's
inbox the events of mantua.lit's channels as the contract puts them (each `<event>` is what
the sender's notifier renders), from the server montague.lit trusts for mantua.lit, or
spoofed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from e2e.conftest import FederatedConnect
from e2e.federation import CAPULET, MANTUA, MONTAGUE, PROBE, TwoDomains, service_of
from e2e.harness import (
    NS_STANZAS,
    TIMEOUT,
    Client,
    entry,
    has_item,
    item_ids,
    items_request,
    posts,
    subscribe,
    subscription_event,
    unsubscribe,
)
from engine_support import text as draft

from buddycloud.domain.events import Event
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId
from buddycloud.federation.client import RemoteServers
from buddycloud.federation.discovery import ServerDiscovery
from buddycloud.federation.dns import DnsTxtLookup
from buddycloud.services.config import ConfigUpdate, EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.factory import open_storage
from buddycloud.util.clock import SystemClock
from buddycloud.xmpp.component import ChannelComponent
from buddycloud.xmpp.namespaces import NS_COMPONENT, NS_INBOX, qname
from buddycloud.xmpp.xml import parse_xml, serialize

NS_EVENT = "http://jabber.org/protocol/pubsub#event"


@dataclass
class Mantua:
    """mantua.lit's channel server, run here as probe.lit; `waiting` holds the rendered
    events of its channels for montague.lit's users until `deliver` sends them."""

    engine: Engine
    component: ChannelComponent
    waiting: list[str] = field(default_factory=list)

    async def channel(self, unique: str) -> tuple[Jid, NodeId]:
        """A new user of mantua.lit, and the posts node of their channel (a fresh one for
        each test: montague.lit's cache outlives a test)."""
        friar = Jid.parse(f"friar-{unique}@{MANTUA}")
        await self.engine.register(friar)
        return friar, NodeId(friar, "posts")

    async def __call__(self, event: Event) -> None:
        if any(jid.domain == MONTAGUE for jid in event.audience):
            self.waiting.extend(self.component.notifier.render(event))

    async def inbox(self, events: list[str]) -> Element:
        """Send montague.lit's server one inbox IQ from probe.lit; its answer."""
        inbox = Element(qname(NS_INBOX, "inbox"))
        inbox.extend(parse_xml(text) for text in events)
        return await self.component.request("set", service_of(MONTAGUE), inbox, timeout=TIMEOUT)

    async def deliver(self) -> None:
        events, self.waiting = self.waiting, []
        assert events, "nothing to deliver"
        answer = await self.inbox(events)
        assert answer.get("type") == "result", serialize(answer)


@pytest.fixture
async def mantua(two_domains: TwoDomains, tmp_path: Path) -> AsyncIterator[Mantua]:
    storage = await open_storage(f"sqlite:///{tmp_path / 'mantua.db'}", migrate=True)
    clock = SystemClock()
    engine = Engine(storage, clock, EngineConfig(domain=MANTUA, service_jid=Jid.parse(PROBE)))
    settings = two_domains.capulet.prosody.settings
    component = ChannelComponent(
        engine,
        PROBE,
        two_domains.probe_secret,
        settings.interface,
        settings.component_port,
        multicast=False,
    )
    # mantua.lit's server believes montague.lit's server acting for its users (10.1).
    discovery = ServerDiscovery(
        component.query,
        DnsTxtLookup([two_domains.nameserver], timeout=3),
        own_domain=MANTUA,
        own_jid=Jid.parse(PROBE),
    )
    engine.use_remote(RemoteServers(discovery, component.request, clock))
    server = Mantua(engine, component)
    engine.add_listener(server)
    await component.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await component.connected.wait()
        yield server
    finally:
        await component.stop()
        await storage.close()


async def _follow(romeo: Client, node: str, state: str = "subscribed") -> None:
    followed = await romeo.ok("set", subscribe(node, romeo.bare))
    subscription = followed.find("pubsub:pubsub/pubsub:subscription")
    assert subscription is not None and subscription.get("subscription") == state


async def test_a_follow_backfills_and_the_inbox_notifies_the_follower_from_home(
    federated: FederatedConnect, mantua: Mantua, unique: str
) -> None:
    friar, friars_posts = await mantua.channel(unique)
    node = str(friars_posts)
    engine = mantua.engine
    before = await engine.publish(friar, friars_posts, draft(f"a potion {unique}"))
    romeo = await federated(f"romeo@{MONTAGUE}")
    await _follow(romeo, node)
    await mantua.deliver()  # his follow, announced to him

    # What came before his follow is there, from his home server.
    page = await romeo.ok("get", items_request(node, max_items=10))
    assert page.element.get("from") == service_of(MONTAGUE)
    assert item_ids(page, node) == [before.id]

    # Read from the cache: a post mantua.lit has not yet sent is not there...
    later = await engine.publish(friar, friars_posts, draft(f"she sleeps {unique}"))
    page = await romeo.ok("get", items_request(node, max_items=10))
    assert item_ids(page, node) == [before.id]
    # ...until it arrives in montague.lit's inbox, which tells Romeo from his home server.
    await mantua.deliver()
    told = await romeo.wait_for(has_item(node, later.id))
    assert told.get("from") == service_of(MONTAGUE)
    assert f"she sleeps {unique}" in serialize(told)
    page = await romeo.ok("get", items_request(node, max_items=10))
    assert item_ids(page, node) == [later.id, before.id]


async def test_a_follow_of_an_authorize_channel_waits_for_the_owners_answer(
    federated: FederatedConnect, mantua: Mantua, unique: str
) -> None:
    friar, friars_posts = await mantua.channel(unique)
    node = str(friars_posts)
    engine = mantua.engine
    await engine.configure(friar, friars_posts, ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    secret = await engine.publish(friar, friars_posts, draft(f"the plan {unique}"))
    benvolio = await federated(f"benvolio@{MONTAGUE}")
    await _follow(benvolio, node, "pending")
    await mantua.deliver()
    refused = await benvolio.iq("get", items_request(node, max_items=10))
    assert refused.condition == "not-authorized"

    await engine.authorize(friar, friars_posts, Jid.parse(benvolio.bare), allow=True)
    await mantua.deliver()
    told = await benvolio.wait_for(subscription_event(node, benvolio.bare, "subscribed"))
    assert told.get("from") == service_of(MONTAGUE)
    page = await benvolio.ok("get", items_request(node, max_items=10))
    assert item_ids(page, node) == [secret.id]  # back-filled once approved


async def test_spoofed_events_are_refused_and_change_nothing(
    federated: FederatedConnect, mantua: Mantua, two_domains: TwoDomains, unique: str
) -> None:
    juliet = await federated(f"juliet@{CAPULET}")
    romeo = await federated(f"romeo@{MONTAGUE}")
    julies = posts(juliet.bare)
    _, friars_posts = await mantua.channel(unique)
    await _follow(romeo, julies)  # cached at montague.lit
    try:
        await _refused_spoofs(romeo, juliet, mantua, two_domains, friars_posts, unique)
    finally:
        await romeo.ok("set", unsubscribe(julies, romeo.bare))


async def _refused_spoofs(
    romeo: Client,
    juliet: Client,
    mantua: Mantua,
    two_domains: TwoDomains,
    friars_posts: NodeId,
    unique: str,
) -> None:
    julies = posts(juliet.bare)
    await _follow(romeo, str(friars_posts))
    await mantua.deliver()
    cached = item_ids(await romeo.ok("get", items_request(julies, max_items=50)), julies)

    def forged(node: str, item_id: str) -> str:
        return (
            f"<event xmlns='{NS_EVENT}'><items node='{node}'><item id='{item_id}'>"
            f"{entry(f'forged {unique}')}</item></items></event>"
        )

    # probe.lit is mantua.lit's channel server, not capulet.lit's (though a component of
    # capulet.lit's XMPP server): an IQ about capulet.lit alone is refused whole.
    answer = await mantua.inbox([forged(julies, f"forged-{unique}")])
    assert answer.get("type") == "error"
    error = answer.find(f"{{{NS_COMPONENT}}}error")
    assert error is not None and error.get("type") == "cancel"
    assert error.find(f"{{{NS_STANZAS}}}forbidden") is not None

    # With one event about its own domain, the others, about capulet.lit and about
    # montague.lit's own channel, are refused one by one.
    genuine = f"genuine-{unique}"
    answer = await mantua.inbox(
        [
            forged(julies, f"forged2-{unique}"),
            forged(posts(romeo.bare), f"forged3-{unique}"),
            forged(str(friars_posts), genuine),
        ]
    )
    assert answer.get("type") == "result", serialize(answer)
    page = await romeo.ok("get", items_request(julies, max_items=50))
    assert item_ids(page, julies) == cached
    assert f"forged {unique}" not in page.text
    mine = await romeo.ok("get", items_request(posts(romeo.bare), max_items=50))
    assert f"forged {unique}" not in mine.text
    friars = await romeo.ok("get", items_request(str(friars_posts), max_items=50))
    assert genuine in item_ids(friars, str(friars_posts))
    output = await two_domains.montague.server.wait_for_log(  # type: ignore[union-attr]
        f"about /user/{juliet.bare}/posts: not the channel server of {CAPULET}"
    )
    assert f"refused an inbox event from {PROBE}" in output
