"""Following through a real XMPP server, as clients of the original servers see it:
ProtoXEP 5.4 in the follower's own lists, and subscription events (reference section 4).

Each test uses a fresh topic channel of Juliet's with a second node, `status`, so that
what a request names and what the channel holds can be told apart.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from e2e.harness import (
    NS,
    NS_BC,
    NS_OWNER,
    NS_PUBSUB,
    Client,
    create,
    entry,
    has_item,
    local_id,
    publish,
    published_id,
    set_affiliation,
    subscribe,
    subscription_event,
    topic,
    unsubscribe,
)


def node_of(posts_node: str, name: str) -> str:
    return posts_node.rpartition("/")[0] + f"/{name}"


async def channel_with_status(juliet: Client, posts_node: str, access_model: str) -> str:
    """A topic channel with posts and status nodes; returns the status node."""
    await juliet.ok("set", create(posts_node, {"pubsub#access_model": access_model}))
    status = node_of(posts_node, "status")
    await juliet.ok("set", create(status))
    return status


def shape(message: ET.Element) -> list[tuple[str, dict[str, str]]]:
    """The children of a message's `<event>` and their children, as (name, attributes)."""
    event = message.find("event:event", NS)
    assert event is not None
    rows = []
    for child in event:
        rows.append((child.tag.partition("}")[2], dict(child.attrib)))
        rows.extend((inner.tag.partition("}")[2], dict(inner.attrib)) for inner in child)
    return rows


def about(jid: str) -> object:
    """Any notification about `jid`'s subscription or role."""

    def predicate(message: ET.Element) -> bool:
        return any(
            element.get("jid") == jid
            for element in message.iter()
            if element.tag.endswith("}subscription") or element.tag.endswith("}affiliation")
        )

    return predicate


async def test_the_followers_lists_name_every_node_of_the_channel(
    juliet: Client, romeo: Client, unique: str
) -> None:
    """Romeo follows through the status node; his subscriptions, affiliations and
    subscriptions-with-configuration each show the posts node and the status node."""
    posts_node = topic(f"nodes-{unique}")
    status = await channel_with_status(juliet, posts_node, "open")
    await romeo.ok("set", subscribe(status, romeo.bare))

    mine = await romeo.ok("get", f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions/></pubsub>")
    rows = {
        s.get("node"): (s.get("jid"), s.get("subscription"))
        for s in mine.findall("pubsub:pubsub/pubsub:subscriptions/pubsub:subscription")
        if s.get("node", "").startswith(posts_node.rpartition("/")[0] + "/")
    }
    assert rows == {
        posts_node: (romeo.bare, "subscribed"),
        status: (romeo.bare, "subscribed"),
    }, mine
    roles = await romeo.ok("get", f"<pubsub xmlns='{NS_PUBSUB}'><affiliations/></pubsub>")
    affiliations = {
        a.get("node"): a.get("affiliation")
        for a in roles.findall("pubsub:pubsub/pubsub:affiliations/pubsub:affiliation")
        if a.get("node") in (posts_node, status)
    }
    assert affiliations == {posts_node: "member", status: "member"}, roles

    configured = await romeo.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions-with-configuration xmlns='{NS_BC}'>"
        f"<subscription-filter><allow field='pubsub#creator' value='{juliet.bare}'/>"
        "</subscription-filter></subscriptions-with-configuration></pubsub>",
    )
    types = {}
    for row in configured.findall(
        "pubsub:pubsub/bc:subscriptions-with-configuration/bc:subscription-with-configuration"
    ):
        fields = {
            field.get("var"): [value.text for value in field.findall("data:value", NS)]
            for field in row.findall("bc:configure/data:x/data:field", NS)
        }
        assert fields["pubsub#creator"] == [juliet.bare]
        if row.get("node") in (posts_node, status):
            types[row.get("node")] = (row.get("subscription"), fields["pubsub#type"])
    atom = ["http://www.w3.org/2005/Atom"]
    assert types == {posts_node: ("subscribed", atom), status: ("subscribed", atom)}, configured

    # The followers of the status node are the channel's followers.
    followers = await romeo.ok(
        "get", f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions node='{status}'/></pubsub>"
    )
    assert {
        s.get("jid")
        for s in followers.findall("pubsub:pubsub/pubsub:subscriptions/pubsub:subscription")
    } == {juliet.bare, romeo.bare}


async def test_a_subscribe_event_names_the_requested_node_and_carries_the_role(
    juliet: Client, romeo: Client, unique: str
) -> None:
    posts_node = topic(f"event-{unique}")
    status = await channel_with_status(juliet, posts_node, "open")
    await romeo.ok("set", subscribe(status, romeo.bare))
    event = await juliet.wait_for(subscription_event(status, romeo.bare, "subscribed"))
    assert shape(event) == [
        ("subscription", {"node": status, "jid": romeo.bare, "subscription": "subscribed"}),
        ("affiliations", {"node": status}),
        ("affiliation", {"jid": romeo.bare, "affiliation": "member"}),
    ]
    own = await romeo.wait_for(subscription_event(status, romeo.bare, "subscribed"))
    assert shape(own) == shape(event)


async def test_a_plain_follower_hears_no_request_and_no_ban(
    juliet: Client, romeo: Client, tybalt: Client, unique: str
) -> None:
    """Tybalt follows Juliet's closed channel. Romeo asks to follow, then is banned: Juliet
    hears both, Tybalt neither; the post Juliet publishes next reaches Tybalt, so anything
    sent to him before it has arrived too."""
    posts_node = topic(f"quiet-{unique}")
    status = await channel_with_status(juliet, posts_node, "authorize")
    await tybalt.ok("set", subscribe(posts_node, tybalt.bare))
    await juliet.ok(
        "set",
        f"<pubsub xmlns='{NS_OWNER}'><subscriptions node='{posts_node}'>"
        f"<subscription jid='{tybalt.bare}' subscription='subscribed'/>"
        "</subscriptions></pubsub>",
    )

    await romeo.ok("set", subscribe(status, romeo.bare))
    pending = await juliet.wait_for(subscription_event(status, romeo.bare, "pending"))
    assert shape(pending) == [
        ("subscription", {"node": status, "jid": romeo.bare, "subscription": "pending"})
    ]
    await juliet.ok("set", set_affiliation(posts_node, romeo.bare, "outcast"))
    ban = await juliet.wait_for(subscription_event(posts_node, romeo.bare, "none"))
    assert shape(ban) == [
        ("subscription", {"node": posts_node, "jid": romeo.bare, "subscription": "none"}),
        ("affiliations", {"node": posts_node}),
        ("affiliation", {"jid": romeo.bare, "affiliation": "outcast"}),
    ]
    await romeo.wait_for(subscription_event(posts_node, romeo.bare, "none"))

    marker = published_id(await juliet.ok("set", publish(posts_node, entry(f"after {unique}"))))
    await tybalt.wait_for(has_item(posts_node, local_id(marker)))
    assert tybalt.received(about(romeo.bare)) == []  # type: ignore[arg-type]


async def test_unsubscribing_shows_none_and_the_new_role_in_one_event(
    juliet: Client, romeo: Client, unique: str
) -> None:
    posts_node = topic(f"leave-{unique}")
    status = await channel_with_status(juliet, posts_node, "open")
    await romeo.ok("set", subscribe(posts_node, romeo.bare))
    await juliet.wait_for(subscription_event(posts_node, romeo.bare, "subscribed"))
    await romeo.ok("set", unsubscribe(status, romeo.bare))
    event = await juliet.wait_for(subscription_event(status, romeo.bare, "none"))
    assert shape(event) == [
        ("subscription", {"node": status, "jid": romeo.bare, "subscription": "none"}),
        ("affiliations", {"node": status}),
        ("affiliation", {"jid": romeo.bare, "affiliation": "none"}),
    ]
    own = await romeo.wait_for(subscription_event(status, romeo.bare, "none"))
    assert shape(own) == shape(event)
