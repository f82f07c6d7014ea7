"""Finding a domain's channel server: disco first, DNS TXT as the fallback, both at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, SubElement

import pytest

from buddycloud.domain.jid import Jid
from buddycloud.federation.discovery import ServerDiscovery
from buddycloud.xmpp.multicast import QueryFailed
from buddycloud.xmpp.namespaces import NS_DISCO_INFO, NS_DISCO_ITEMS, qname

OWN = Jid.parse("channels.capulet.lit")


@dataclass
class FakeNetwork:
    """What each JID answers to disco#items and disco#info; absent JIDs answer errors."""

    items: dict[str, list[str]] = field(default_factory=dict)
    identities: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    txt: dict[str, str] = field(default_factory=dict)
    asked: Counter[tuple[str, str]] = field(default_factory=Counter)
    disco_gate: asyncio.Event | None = None  # when set, disco#items waits for it

    async def query(self, to: str, payload: Element) -> Element:
        self.asked[(to, payload.tag)] += 1
        if payload.tag == qname(NS_DISCO_ITEMS, "query"):
            if self.disco_gate is not None:
                await self.disco_gate.wait()
            if to not in self.items:
                raise QueryFailed(f"{to} answered with an error")
            answer = Element(qname(NS_DISCO_ITEMS, "query"))
            for jid in self.items[to]:
                SubElement(answer, qname(NS_DISCO_ITEMS, "item"), {"jid": jid})
            return answer
        if to not in self.identities:
            raise QueryFailed(f"{to} answered with an error")
        answer = Element(qname(NS_DISCO_INFO, "query"))
        for category, type_ in self.identities[to]:
            SubElement(
                answer, qname(NS_DISCO_INFO, "identity"), {"category": category, "type": type_}
            )
        return answer

    async def txt_lookup(self, domain: str) -> Jid | None:
        self.asked[(domain, "TXT")] += 1
        named = self.txt.get(domain)
        return Jid.parse(named) if named else None


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def network() -> FakeNetwork:
    return FakeNetwork(
        items={
            "montague.lit": ["muc.montague.lit", "pubsub.montague.lit", "channels.montague.lit"]
        },
        identities={
            "muc.montague.lit": [("conference", "text")],
            "pubsub.montague.lit": [("pubsub", "service")],
            "channels.montague.lit": [("pubsub", "channels"), ("pubsub", "inbox")],
            "bc.verona-hosting.lit": [("pubsub", "channels")],
        },
    )


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


def discovery(network: FakeNetwork, clock: FakeTime) -> ServerDiscovery:
    return ServerDiscovery(
        network.query,
        network.txt_lookup,
        own_domain="capulet.lit",
        own_jid=OWN,
        ttl=600,
        failure_ttl=30,
        clock=clock,
    )


async def test_disco_items_then_info_finds_the_component_with_the_channels_identity(
    network: FakeNetwork, clock: FakeTime
) -> None:
    found = await discovery(network, clock).channel_server("montague.lit")
    assert found == Jid.parse("channels.montague.lit")


async def test_a_pubsub_service_that_is_not_a_channel_server_is_not_taken(
    network: FakeNetwork, clock: FakeTime
) -> None:
    network.items["verona.lit"] = ["pubsub.montague.lit", "muc.montague.lit"]
    assert await discovery(network, clock).channel_server("verona.lit") is None


async def test_dns_names_the_server_a_domain_hides_from_disco(
    network: FakeNetwork, clock: FakeTime
) -> None:
    network.items["verona.lit"] = ["muc.montague.lit"]
    network.txt["verona.lit"] = "bc.verona-hosting.lit"
    found = await discovery(network, clock).channel_server("verona.lit")
    assert found == Jid.parse("bc.verona-hosting.lit")


async def test_dns_answers_when_the_domain_has_no_xmpp_service_at_all(
    network: FakeNetwork, clock: FakeTime
) -> None:
    network.txt["padua.lit"] = "bc.verona-hosting.lit"
    found = await discovery(network, clock).channel_server("padua.lit")
    assert found == Jid.parse("bc.verona-hosting.lit")


async def test_a_dns_record_naming_something_other_than_a_channel_server_is_ignored(
    network: FakeNetwork, clock: FakeTime
) -> None:
    network.txt["padua.lit"] = "pubsub.montague.lit"
    assert await discovery(network, clock).channel_server("padua.lit") is None
    network.txt["mantua.lit"] = "nothing.mantua.lit"  # does not answer at all
    assert await discovery(network, clock).channel_server("mantua.lit") is None


async def test_disco_wins_over_dns_when_both_answer(network: FakeNetwork, clock: FakeTime) -> None:
    network.txt["montague.lit"] = "bc.verona-hosting.lit"
    found = await discovery(network, clock).channel_server("montague.lit")
    assert found == Jid.parse("channels.montague.lit")


async def test_disco_and_dns_are_asked_at_once(network: FakeNetwork, clock: FakeTime) -> None:
    """The TXT lookup is under way while disco#items has not answered yet."""
    network.disco_gate = asyncio.Event()
    network.txt["verona.lit"] = "bc.verona-hosting.lit"
    finding = asyncio.ensure_future(discovery(network, clock).channel_server("verona.lit"))
    async with asyncio.timeout(5):
        while network.asked[("verona.lit", "TXT")] == 0:
            await asyncio.sleep(0)
    assert not finding.done()
    network.disco_gate.set()
    assert await finding == Jid.parse("bc.verona-hosting.lit")


async def test_an_answer_is_cached_for_the_ttl(network: FakeNetwork, clock: FakeTime) -> None:
    finder = discovery(network, clock)
    await finder.channel_server("montague.lit")
    clock.now += 599
    await finder.channel_server("montague.lit")
    assert network.asked[("montague.lit", qname(NS_DISCO_ITEMS, "query"))] == 1
    clock.now += 2
    await finder.channel_server("montague.lit")
    assert network.asked[("montague.lit", qname(NS_DISCO_ITEMS, "query"))] == 2


async def test_a_failure_is_cached_briefly(network: FakeNetwork, clock: FakeTime) -> None:
    finder = discovery(network, clock)
    assert await finder.channel_server("verona.lit") is None
    network.items["verona.lit"] = ["channels.montague.lit"]
    clock.now += 29
    assert await finder.channel_server("verona.lit") is None
    clock.now += 2
    assert await finder.channel_server("verona.lit") == Jid.parse("channels.montague.lit")


async def test_concurrent_lookups_of_one_domain_share_one_walk(
    network: FakeNetwork, clock: FakeTime
) -> None:
    finder = discovery(network, clock)
    found = await asyncio.gather(*(finder.channel_server("montague.lit") for _ in range(10)))
    assert set(found) == {Jid.parse("channels.montague.lit")}
    assert network.asked[("montague.lit", qname(NS_DISCO_ITEMS, "query"))] == 1


async def test_this_server_serves_its_own_domain_without_asking(
    network: FakeNetwork, clock: FakeTime
) -> None:
    assert await discovery(network, clock).channel_server("capulet.lit") == OWN
    assert not network.asked


async def test_a_remote_domain_naming_this_server_has_no_channel_server(
    network: FakeNetwork, clock: FakeTime
) -> None:
    """Requests for its channels would otherwise come back here in a loop."""
    network.items["verona.lit"] = [str(OWN)]
    network.identities[str(OWN)] = [("pubsub", "channels")]
    assert await discovery(network, clock).channel_server("verona.lit") is None


async def test_only_the_discovered_server_is_trusted_for_a_domain(
    network: FakeNetwork, clock: FakeTime
) -> None:
    """ProtoXEP 10.1: not any component of the domain, not a user, not a full JID."""
    finder = discovery(network, clock)
    assert await finder.is_channel_server("montague.lit", Jid.parse("channels.montague.lit"))
    for impostor in (
        "pubsub.montague.lit",
        "montague.lit",
        "romeo@montague.lit",
        "channels.montague.lit/x",
        "bc.verona-hosting.lit",
    ):
        assert not await finder.is_channel_server("montague.lit", Jid.parse(impostor))
