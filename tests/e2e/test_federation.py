"""Federation through two real XMPP servers: capulet.lit and montague.lit over s2s.

Each domain runs a private Prosody and its own channel server (tests/e2e/federation.py).
"""

from __future__ import annotations

from e2e.conftest import FederatedConnect
from e2e.federation import CAPULET, MONTAGUE, service_of
from e2e.harness import NS_DISCO_INFO, NS_DISCO_ITEMS


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
