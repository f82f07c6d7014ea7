"""Federation through two real XMPP servers: capulet.lit and montague.lit over s2s.

Each domain runs a private Prosody and its own channel server (tests/e2e/federation.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element
from xml.sax.saxutils import quoteattr

import pytest
from e2e.conftest import FederatedConnect
from e2e.federation import (
    CAPULET,
    MANTUA,
    MONTAGUE,
    PADUA,
    PROBE,
    VERONA,
    Domain,
    TwoDomains,
    service_of,
)
from e2e.harness import (
    NS_BC,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_OWNER,
    NS_PUBSUB,
    NS_STANZAS,
    TIMEOUT,
    configure_get,
    configure_set,
    entry,
    form_values,
    has_item,
    item_ids,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
    retract,
    set_affiliation,
    set_subscription,
    subscribe,
    unsubscribe,
)

from buddycloud.domain.jid import Jid
from buddycloud.federation.discovery import ServerDiscovery
from buddycloud.federation.dns import DnsTxtLookup
from buddycloud.federation.wire import pubsub_request
from buddycloud.services.config import EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.factory import open_storage
from buddycloud.util.clock import SystemClock
from buddycloud.xmpp.component import ChannelComponent
from buddycloud.xmpp.namespaces import NS_COMPONENT, NS_INBOX, NS_PUBSUB_EVENT
from buddycloud.xmpp.xml import parse_xml, serialize


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


# --- acting for local users on other domains' channels (reference 5.2) ---------------------


async def test_a_user_follows_reads_posts_and_retracts_on_another_domains_channel(
    federated: FederatedConnect, unique: str
) -> None:
    """Romeo asks only his home server, channels.montague.lit; it acts for him on
    capulet.lit's channel server, which applies Juliet's channel's rules to him."""
    juliet = await federated(f"juliet@{CAPULET}")
    romeo = await federated(f"romeo@{MONTAGUE}")
    node = posts(juliet.bare)
    first = local_id(
        published_id(await juliet.ok("set", publish(node, entry(f"from the balcony {unique}"))))
    )

    # Reading: the answer comes from Romeo's home server, with Juliet's post in it.
    reply = await romeo.ok("get", items_request(node, max_items=10))
    assert reply.element.get("from") == service_of(MONTAGUE)
    assert first in item_ids(reply, node)
    assert f"from the balcony {unique}" in reply.text

    # Posting needs a role: a stranger is refused, re-mapped, not relayed.
    refused = await romeo.iq("set", publish(node, entry("too soon")))
    assert refused.condition == "forbidden"
    assert refused.element.get("from") == service_of(MONTAGUE)

    # Following the open channel makes him a follower+post at once.
    followed = await romeo.ok("set", subscribe(node, romeo.bare))
    subscription = followed.find("pubsub:pubsub/pubsub:subscription")
    assert subscription is not None and subscription.get("subscription") == "subscribed"

    answer = await romeo.ok("set", publish(node, entry(f"with love's light wings {unique}")))
    his = local_id(published_id(answer))
    # Juliet, on her own server, sees Romeo's post, by romeo@montague.lit.
    seen = await juliet.ok("get", items_request(node, item_id=his))
    assert f"with love's light wings {unique}" in seen.text
    assert f"romeo@{MONTAGUE}" in seen.text

    # He may retract his own post, not hers.
    await romeo.ok("set", retract(node, his))
    gone = await juliet.ok("get", items_request(node, item_id=his))
    assert gone.find("pubsub:pubsub/pubsub:items/pubsub:item/ts:deleted-entry") is not None
    not_his = await romeo.iq("set", retract(node, first))
    assert not_his.condition == "forbidden"

    await romeo.ok("set", unsubscribe(node, romeo.bare))
    again = await romeo.iq("set", unsubscribe(node, romeo.bare))
    assert again.condition == "unexpected-request"


async def test_errors_of_other_domains_come_back_as_this_servers_own(
    federated: FederatedConnect, unique: str
) -> None:
    romeo = await federated(f"romeo@{MONTAGUE}")
    missing = await romeo.iq("get", items_request(posts(f"nobody-{unique}@{CAPULET}")))
    assert missing.condition == "item-not-found"
    assert missing.element.get("from") == service_of(MONTAGUE)
    # nowhere.lit has no XMPP service and no DNS record.
    unknown = await romeo.iq("get", items_request(posts("someone@nowhere.lit")))
    assert unknown.condition == "remote-server-not-found"


async def test_a_server_that_is_not_the_actors_channel_server_is_refused(
    federated: FederatedConnect, probe: ChannelComponent, unique: str
) -> None:
    """probe.lit claims to act for Romeo, who may post to Juliet's channel: capulet.lit's
    server asks who serves montague.lit and refuses the claim; nothing is published."""
    juliet = await federated(f"juliet@{CAPULET}")
    benvolio = await federated(f"benvolio@{MONTAGUE}")
    node = posts(juliet.bare)
    await benvolio.ok("set", subscribe(node, benvolio.bare))
    forged = pubsub_request(
        Jid.parse(benvolio.bare),
        parse_xml(
            f"<publish xmlns='{NS_PUBSUB}' node='{node}'><item id='forged-{unique}'>"
            f"{entry('forged')}</item></publish>"
        ),
    )
    answer = await probe.request("set", service_of(CAPULET), forged, timeout=TIMEOUT)
    assert answer.get("type") == "error"
    assert answer.find(f"{{{NS_COMPONENT}}}error/{{{NS_STANZAS}}}forbidden") is not None
    fetched = await juliet.iq("get", items_request(node, item_id=f"forged-{unique}"))
    assert fetched.condition == "item-not-found"
    # The same request through Benvolio's own server is accepted.
    await benvolio.ok("set", publish(node, entry("genuine"), item_id=f"genuine-{unique}"))
    await juliet.ok("get", items_request(node, item_id=f"genuine-{unique}"))


# --- the outbox: events for other domains, durable and in order -----------------------------


class InboxReceiver:
    """A component in this process standing in for a domain's channel server: it answers
    every inbox IQ with `result` and keeps the item ids each held, in arrival order; other
    stanzas go to its own router (so it answers disco#info as a channel server)."""

    def __init__(self, component: ChannelComponent) -> None:
        self.component = component
        self.received: list[tuple[str, list[str]]] = []
        self.arrived = asyncio.Event()
        route = component._on_stanza

        def on_stanza(stanza: Element, refusal: str | None = None) -> None:
            inbox = stanza.find(f"{{{NS_INBOX}}}inbox")
            if stanza.get("type") != "set" or inbox is None:
                route(stanza, refusal)
                return
            ids = [
                local_id(item.get("id", ""))
                for item in inbox.iter(f"{{{NS_PUBSUB_EVENT}}}item")
                if item.get("id")
            ]
            self.received.append((stanza.get("from", ""), ids))
            self.arrived.set()
            component.send_text(
                f"<iq type='result' from={quoteattr(str(component.jid))} "
                f"to={quoteattr(stanza.get('from', ''))} id={quoteattr(stanza.get('id', ''))}/>"
            )

        component._on_stanza = on_stanza  # type: ignore[method-assign]

    def items(self, among: list[str]) -> list[str]:
        """The ids of `among` received, in the order they arrived."""
        return [i for _, ids in self.received for i in ids if i in among]

    async def wait_for(self, ids: list[str], timeout: float = TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while self.items(ids) != ids and len(self.items(ids)) < len(ids):
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def inbox_receiver(
    jid: str, secret: str, domain: Domain, database: Path
) -> AsyncIterator[InboxReceiver]:
    """`jid`, connected to `domain`'s Prosody with `secret`, standing in as a receiver."""
    storage = await open_storage(f"sqlite:///{database}", migrate=True)
    engine = Engine(storage, SystemClock(), EngineConfig(domain=jid, service_jid=Jid.parse(jid)))
    settings = domain.prosody.settings
    component = ChannelComponent(
        engine, jid, secret, settings.interface, settings.component_port, multicast=False
    )
    receiver = InboxReceiver(component)
    await component.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await component.connected.wait()
        yield receiver
    finally:
        await component.stop()
        await storage.close()


async def test_a_domain_back_from_an_outage_gets_every_post_in_order_and_no_other_waits(
    two_domains: TwoDomains, federated: FederatedConnect, tmp_path: Path, unique: str
) -> None:
    """montague.lit's channel server is down while Juliet posts, and capulet.lit's own
    server restarts meanwhile: when montague.lit's server is back (here a stand-in that
    acknowledges inbox IQs), it gets every post, in order, at once. mantua.lit's server
    (the probe, found through DNS) gets each post while montague.lit's is down."""
    capulet, montague = two_domains.capulet, two_domains.montague
    juliet = await federated(f"juliet@{CAPULET}")
    romeo = await federated(f"romeo@{MONTAGUE}")
    node = posts(juliet.bare)
    await romeo.ok("set", subscribe(node, romeo.bare))

    async with inbox_receiver(
        PROBE, two_domains.probe_secret, capulet, tmp_path / "m.db"
    ) as mantua:
        # A user of mantua.lit follows Juliet through mantua.lit's channel server.
        friar = Jid.parse(f"friar-{unique}@{MANTUA}")
        follow = parse_xml(f"<subscribe xmlns='{NS_PUBSUB}' node='{node}' jid='{friar}'/>")
        answer = await mantua.component.request(
            "set", service_of(CAPULET), pubsub_request(friar, follow), timeout=TIMEOUT
        )
        assert answer.get("type") == "result", serialize(answer)

        montague.stop_server()
        try:
            ids = []
            for n in range(5):
                reply = await juliet.ok("set", publish(node, entry(f"post {n} {unique}")))
                ids.append(local_id(published_id(reply)))
            # Not delayed by montague.lit: mantua.lit has every post while it is down.
            await mantua.wait_for(ids)
            assert mantua.items(ids) == ids
            assert {sender for sender, _ in mantua.received} == {service_of(CAPULET)}

            # capulet.lit's server restarts with the posts still queued for montague.lit.
            assert capulet.stop_server() == 0
            capulet.start_server()

            async with inbox_receiver(
                service_of(MONTAGUE),
                montague.prosody.settings.component_secret,
                montague,
                tmp_path / "montague.db",
            ) as standin:
                # Any stanza from montague.lit's channel server: capulet.lit retries at once.
                disco = Element(f"{{{NS_DISCO_INFO}}}query")
                async with asyncio.timeout(3 * TIMEOUT):
                    while len(standin.items(ids)) < len(ids):
                        await standin.component.query(service_of(CAPULET), disco)
                        with contextlib.suppress(TimeoutError):
                            await standin.wait_for(ids, timeout=2)
                assert standin.items(ids) == ids
        finally:
            if montague.server is None:
                montague.start_server()


async def test_a_remote_moderator_reads_configures_approves_and_changes_roles(
    federated: FederatedConnect, unique: str
) -> None:
    """Tybalt of capulet.lit owns an authorize channel; Romeo of montague.lit, asking only
    his own server, reads its configuration and followers, and once Tybalt makes him a
    moderator approves a pending follower, changes a role and reads replies."""
    tybalt = await federated(f"tybalt@{CAPULET}")
    nurse = await federated(f"nurse@{CAPULET}")
    romeo = await federated(f"romeo@{MONTAGUE}")
    node = posts(tybalt.bare)
    await tybalt.ok(
        "set",
        configure_set(node, {"pubsub#access_model": "authorize", "pubsub#title": unique}),
    )
    followed = await romeo.ok("set", subscribe(node, romeo.bare))
    state = followed.find("pubsub:pubsub/pubsub:subscription")
    assert state is not None and state.get("subscription") == "pending"
    closed = await romeo.iq("get", node_list("subscriptions", node))
    assert closed.condition == "not-authorized"  # pending: the channel's rules, re-mapped
    await tybalt.ok("set", set_subscription(node, romeo.bare, "subscribed"))

    # Configuration and followers, from Romeo's home server.
    form = await romeo.ok("get", configure_get(node))
    assert form.element.get("from") == service_of(MONTAGUE)
    fields = form_values(form.find("owner:pubsub/owner:configure/data:x"))  # type: ignore[arg-type]
    assert fields["pubsub#access_model"] == ["authorize"]
    assert fields["pubsub#title"] == [unique]
    info = await romeo.ok("get", f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>")
    meta = form_values(info.find("info:query/data:x"))  # type: ignore[arg-type]
    assert meta["pubsub#num_subscribers"] == ["2"]
    followers = await romeo.ok("get", node_list("subscriptions", node))
    assert {
        (row.get("jid"), row.get("subscription"))
        for row in followers.findall("owner:pubsub/owner:subscriptions/owner:subscription")
    } == {(tybalt.bare, "subscribed"), (romeo.bare, "subscribed")}
    refused = await romeo.iq("set", set_affiliation(node, romeo.bare, "moderator"))
    assert refused.condition == "not-allowed"  # nobody changes their own role

    # Tybalt makes Romeo a moderator; the Nurse asks to follow.
    await tybalt.ok("set", set_affiliation(node, romeo.bare, "moderator"))
    asked = await nurse.ok("set", subscribe(node, nurse.bare))
    state = asked.find("pubsub:pubsub/pubsub:subscription")
    assert state is not None and state.get("subscription") == "pending"
    pending = await romeo.ok("get", node_list("subscriptions", node))
    assert (nurse.bare, "pending") in {
        (row.get("jid"), row.get("subscription"))
        for row in pending.findall("owner:pubsub/owner:subscriptions/owner:subscription")
    }
    await romeo.ok("set", set_subscription(node, nurse.bare, "subscribed"))
    await romeo.ok("set", set_affiliation(node, nurse.bare, "publisher"))
    roles = await tybalt.ok("get", node_list("affiliations", node))
    assert {
        (row.get("jid"), row.get("affiliation"))
        for row in roles.findall("owner:pubsub/owner:affiliations/owner:affiliation")
    } == {(tybalt.bare, "owner"), (romeo.bare, "moderator"), (nurse.bare, "publisher")}
    await romeo.ok("set", configure_set(node, {"pubsub#title": f"{unique} nights"}))
    denied = await romeo.iq("set", configure_set(node, {"pubsub#access_model": "open"}))
    assert denied.condition == "forbidden"  # moderators do not change the access model

    # The Nurse, now a publisher, replies to Tybalt; Romeo, a follower, is told by his home
    # server, whose cache then answers his reads of the thread.
    parent = local_id(published_id(await tybalt.ok("set", publish(node, entry("a plague")))))
    answer = await nurse.ok("set", publish(node, entry("on both", in_reply_to=parent)))
    reply = local_id(published_id(answer))
    told = await romeo.wait_for(has_item(node, reply))
    assert told.get("from") == service_of(MONTAGUE)
    replies = await romeo.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><replies xmlns='{NS_BC}' node='{node}' "
        f"item_id='{parent}'/></pubsub>",
    )
    assert replies.element.get("from") == service_of(MONTAGUE)
    assert item_ids(replies, node) == [reply]
    assert "on both" in replies.text
    threads = await romeo.ok(
        "get", f"<pubsub xmlns='{NS_PUBSUB}'><threads node='{node}'/></pubsub>"
    )
    thread = threads.find("pubsub:pubsub/pubsub:thread")
    assert thread is not None and thread.get("id") == parent
    # Deleting the channel is its owner's alone.
    gone = await romeo.iq("set", f"<pubsub xmlns='{NS_OWNER}'><delete node='{node}'/></pubsub>")
    assert gone.condition == "forbidden"


def node_list(name: str, node: str) -> str:
    """An owner `<subscriptions node/>` or `<affiliations node/>` request."""
    return f"<pubsub xmlns='{NS_OWNER}'><{name} node='{node}'/></pubsub>"
