"""Federation through two real XMPP servers: capulet.lit and montague.lit over s2s.

Each domain runs a private Prosody and its own channel server (tests/e2e/federation.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from e2e.conftest import FederatedConnect
from e2e.federation import CAPULET, MONTAGUE, PADUA, PROBE, VERONA, TwoDomains, service_of
from e2e.harness import NS_DISCO_INFO, NS_DISCO_ITEMS, TIMEOUT

from buddycloud.domain.jid import Jid
from buddycloud.federation.discovery import ServerDiscovery
from buddycloud.federation.dns import DnsTxtLookup
from buddycloud.services.config import EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.factory import open_storage
from buddycloud.util.clock import SystemClock
from buddycloud.xmpp.component import ChannelComponent


async def test_a_user_of_one_domain_sees_the_other_domains_channel_server(
    federated: FederatedConnect,
) -> None:
    """Romeo, through montague.lit and s2s, finds capulet.lit's channel server (ProtoXEP 2.2)."""
    romeo = await federated(f"romeo@{MONTAGUE}")

    items = await romeo.ok("get", f"<query xmlns='{NS_DISCO_ITEMS}'/>", to=CAPULET)
    assert service_of(CAPULET) in [i.get("jid") for i in items.findall("items:query/items:item")]

    info = await romeo.ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=service_of(CAPULET))
    assert info.element.get("from") == service_of(CAPULET)
    identities = {
        (identity.get("category"), identity.get("type"))
        for identity in info.findall("info:query/info:identity")
    }
    assert ("pubsub", "channels") in identities


async def test_both_directions_federate(federated: FederatedConnect) -> None:
    """Juliet reaches montague.lit's channel server as Romeo reaches capulet.lit's."""
    juliet = await federated(f"juliet@{CAPULET}")
    info = await juliet.ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=service_of(MONTAGUE))
    identities = {
        (i.get("category"), i.get("type")) for i in info.findall("info:query/info:identity")
    }
    assert ("pubsub", "channels") in identities


# --- discovery (ProtoXEP 2) ----------------------------------------------------------------


@pytest.fixture
async def probe(two_domains: TwoDomains, tmp_path: Path) -> AsyncIterator[ChannelComponent]:
    """This project's XMPP component, connected in this process as probe.lit to capulet.lit's
    Prosody: its queries travel over s2s like the channel servers' own."""
    storage = await open_storage(f"sqlite:///{tmp_path / 'probe.db'}", migrate=True)
    engine = Engine(
        storage, SystemClock(), EngineConfig(domain=PROBE, service_jid=Jid.parse(PROBE))
    )
    settings = two_domains.capulet.prosody.settings
    component = ChannelComponent(
        engine,
        PROBE,
        two_domains.probe_secret,
        settings.interface,
        settings.component_port,
        multicast=False,
    )
    await component.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await component.connected.wait()
        yield component
    finally:
        await component.stop()
        await storage.close()


async def test_discovery_finds_channel_servers_through_disco_over_s2s_and_through_dns(
    two_domains: TwoDomains, probe: ChannelComponent
) -> None:
    discovery = ServerDiscovery(
        probe.query,
        DnsTxtLookup([two_domains.nameserver], timeout=3),
        own_domain=PROBE,
        own_jid=Jid.parse(PROBE),
    )
    montague_server = Jid.parse(service_of(MONTAGUE))
    # disco#items on montague.lit lists it, disco#info shows pubsub/channels.
    assert await discovery.channel_server(MONTAGUE) == montague_server
    assert await discovery.channel_server(CAPULET) == Jid.parse(service_of(CAPULET))
    # verona.lit has no XMPP service at all: its TXT record names montague's server,
    # which disco#info confirms.
    assert await discovery.channel_server(VERONA) == montague_server
    # padua.lit's record names a server that is no channel server; nowhere.lit has nothing.
    assert await discovery.channel_server(PADUA) is None
    assert await discovery.channel_server("nowhere.lit") is None
