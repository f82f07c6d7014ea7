"""Other domains' channel servers acting for their users (`<actor>`, reference 5.2).

The component believes an actor only when discovery names the sender as the channel
server of the actor's domain (ProtoXEP 10.1); then the actor is the requester, and the
permission tables apply to them like to anyone.
"""

from __future__ import annotations

import pytest
from xmpp.support import Client, Harness

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId, PageRequest
from buddycloud.services.engine import Engine

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
