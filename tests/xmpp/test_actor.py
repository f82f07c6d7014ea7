"""Other domains' channel servers acting for their users (`<actor>`, reference 5.2).

The component believes an actor only when discovery names the sender as the channel
server of the actor's domain (ProtoXEP 10.1); then the actor is the requester, and the
permission tables apply to them like to anyone.
"""

from __future__ import annotations

import asyncio
from xml.etree.ElementTree import Element

import pytest
from engine_support import FakeClock, text
from xmpp.support import SERVICE, Client, Harness

from buddycloud.domain.errors import Forbidden, OwnAffiliation, SubscriptionPending
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId, PageRequest, Role, SubscriptionState
from buddycloud.federation.client import RemoteServers
from buddycloud.services.config import ConfigUpdate
from buddycloud.services.engine import Engine
from buddycloud.xmpp.xml import serialize

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_BC = "http://buddycloud.org/v1"
NODE = "/user/juliet@capulet.lit/posts"


class Directory:
    servers = {"montague.lit": Jid.parse("channels.montague.lit")}

    async def is_channel_server(self, domain: str, sender: Jid) -> bool:
        return self.servers.get(domain) == sender


@pytest.fixture
def federating(engine: Engine) -> Engine:
    engine.use_remote(Directory())  # type: ignore[arg-type]
    return engine


def acting(operation: str, actor: str) -> str:
    return f"<pubsub xmlns='{NS_PUBSUB}'>{operation}<actor xmlns='{NS_BC}'>{actor}</actor></pubsub>"


SUBSCRIBE = f"<subscribe node='{NODE}' jid='romeo@montague.lit'/>"
PUBLISH = (
    f"<publish node='{NODE}'><item><entry xmlns='http://www.w3.org/2005/Atom'>"
    "<content>from montague</content></entry></item></publish>"
)


@pytest.mark.usefixtures("federating")
async def test_the_actors_channel_server_acts_for_them(harness: Harness, juliet: Client) -> None:
    await juliet.presence()  # registers her channel
    montague = harness.client("channels.montague.lit")
    reply = await montague.ok("set", acting(SUBSCRIBE, "romeo@montague.lit"))
    subscription = reply.find(f".//{{{NS_PUBSUB}}}subscription")
    assert subscription is not None
    assert subscription.get("jid") == "romeo@montague.lit"
    assert subscription.get("subscription") == "subscribed"
    published = await montague.ok("set", acting(PUBLISH, "romeo@montague.lit"))
    item = published.find(f".//{{{NS_PUBSUB}}}item")
    assert item is not None
    stored = await harness.engine.get_item(
        Jid.parse("juliet@capulet.lit"), _node(), item.get("id", "")
    )
    assert stored.author == Jid.parse("romeo@montague.lit")


@pytest.mark.usefixtures("federating")
async def test_the_permission_tables_apply_to_the_actor(harness: Harness, juliet: Client) -> None:
    await juliet.presence()
    montague = harness.client("channels.montague.lit")
    # Not following: Romeo may not post, whoever carries his request.
    assert (await montague.error("set", acting(PUBLISH, "romeo@montague.lit")))[0] == "forbidden"


@pytest.mark.usefixtures("federating")
@pytest.mark.parametrize(
    ("sender", "actor"),
    [
        ("pubsub.montague.lit", "romeo@montague.lit"),  # another component of the domain
        ("montague.lit", "romeo@montague.lit"),
        ("benvolio@montague.lit/x", "romeo@montague.lit"),  # a user claiming another
        ("channels.verona.lit", "romeo@montague.lit"),
        ("channels.montague.lit", "nurse@capulet.lit"),  # never for this domain's users
    ],
)
async def test_any_other_sender_is_refused_and_nothing_changes(
    harness: Harness, juliet: Client, sender: str, actor: str
) -> None:
    await juliet.presence()
    impostor = harness.client(sender)
    condition, type_, _ = await impostor.error("set", acting(SUBSCRIBE, actor))
    assert (condition, type_) == ("forbidden", "auth")
    members = await harness.engine.node_subscriptions(
        Jid.parse("juliet@capulet.lit"), _node(), _page()
    )
    assert [m.jid for m in members.items] == [Jid.parse("juliet@capulet.lit")]


async def test_a_server_that_does_not_federate_believes_no_actor(
    harness: Harness, juliet: Client
) -> None:
    await juliet.presence()
    montague = harness.client("channels.montague.lit")
    assert (await montague.error("set", acting(SUBSCRIBE, "romeo@montague.lit")))[0] == "forbidden"


@pytest.mark.usefixtures("federating")
async def test_a_malformed_actor_is_a_bad_request(harness: Harness) -> None:
    montague = harness.client("channels.montague.lit")
    assert (await montague.error("set", acting(SUBSCRIBE, "not a jid")))[0] == "bad-request"
    twice = acting(SUBSCRIBE, "romeo@montague.lit").replace(
        "</pubsub>", f"<actor xmlns='{NS_BC}'>benvolio@montague.lit</actor></pubsub>"
    )
    assert (await montague.error("set", twice))[0] == "bad-request"


def _node() -> NodeId:
    return NodeId.parse(NODE)


def _page() -> PageRequest:
    return PageRequest(max=10)


# --- every request the home server forwards, as the component serves it ------------------


class Montague:
    """montague.lit's own client of other domains (`RemoteServers`), its requests handed
    to this component as coming from channels.montague.lit: both ends of the wire."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.ids = 0
        self.lock = asyncio.Lock()  # the harness hands back what one stanza caused

    async def request(self, type_: str, to: str, payload: Element, *, timeout: float) -> Element:
        assert to == SERVICE
        self.ids += 1
        stanza_id = f"m{self.ids}"
        async with self.lock:
            replies = await self.harness.feed(
                f"<iq xmlns='jabber:component:accept' type='{type_}' id='{stanza_id}' "
                f"from='channels.montague.lit' to='{to}'>{serialize(payload)}</iq>"
            )
        [reply] = [s for s in replies if s.tag == "iq" and s.get("id") == stanza_id]
        return reply

    async def channel_server(self, domain: str) -> Jid | None:
        return Jid.parse(SERVICE) if domain == "capulet.lit" else None


@pytest.fixture
def montague_client(harness: Harness) -> RemoteServers:
    montague = Montague(harness)
    return RemoteServers(montague, montague.request, FakeClock())  # type: ignore[arg-type]


@pytest.mark.usefixtures("federating")
async def test_every_forwarded_operation_is_served_for_a_trusted_actor(
    harness: Harness, juliet: Client, nurse: Client, montague_client: RemoteServers
) -> None:
    """Metadata, followers and roles, approvals, role changes, configuration, replies,
    thread and threads, for Romeo whom Juliet made a moderator; deletion is the owner's."""
    await juliet.presence()
    engine = harness.engine
    node, julie = _node(), Jid.parse("juliet@capulet.lit")
    romeo, nurse_jid = Jid.parse("romeo@montague.lit"), Jid.parse("nurse@capulet.lit")
    await engine.configure(julie, node, ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    remote = montague_client

    assert (await remote.subscribe(romeo, node)).subscription is SubscriptionState.PENDING
    with pytest.raises(SubscriptionPending):
        await remote.get_replies(romeo, node, "nothing", _page())
    view = await remote.get_node_view(romeo, node)  # metadata is for everyone
    assert view.channel.config.access_model is AccessModel.AUTHORIZE
    assert view.num_subscribers == 1
    await engine.set_subscription(julie, node, romeo, SubscriptionState.SUBSCRIBED)
    await engine.set_role(julie, node, romeo, Role.MODERATOR)
    await nurse.ok(
        "set", f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{NODE}' jid='{nurse_jid}'/></pubsub>"
    )

    pending = await remote.node_subscriptions(romeo, node, _page())
    assert (nurse_jid, SubscriptionState.PENDING) in [
        (m.jid, m.subscription) for m in pending.items
    ]
    await remote.set_subscriptions(romeo, node, [(nurse_jid, SubscriptionState.SUBSCRIBED)])
    await remote.set_roles(romeo, node, [(nurse_jid, Role.PUBLISHER)])
    roles = await remote.node_affiliations(romeo, node, _page())
    assert {(m.jid, m.role) for m in roles.items} == {
        (julie, Role.OWNER),
        (romeo, Role.MODERATOR),
        (nurse_jid, Role.PUBLISHER),
    }
    with pytest.raises(OwnAffiliation):
        await remote.set_roles(romeo, node, [(romeo, Role.OWNER)])

    changed = await remote.configure(romeo, node, ConfigUpdate(title="Verona nights"))
    assert changed.channel.config.title == "Verona nights"
    assert changed.num_subscribers == 3

    parent = await engine.publish(julie, node, text("wherefore"))
    reply = await engine.publish(julie, node, text("art thou", in_reply_to=parent.id))
    replies = await remote.get_replies(romeo, node, parent.id, _page())
    assert [i.id for i in replies.items] == [reply.id]
    thread = await remote.get_thread(romeo, node, reply.id, _page())
    assert [i.id for i in thread.items] == [parent.id, reply.id]
    threads = await remote.get_threads(romeo, node, _page())
    assert [(t.id, len(t.items)) for t in threads.items] == [(parent.id, 2)]

    with pytest.raises(Forbidden):
        await remote.delete_node(romeo, node)
    assert (await engine.get_node_view(julie, node)).channel.config.title == "Verona nights"
