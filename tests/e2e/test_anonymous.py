"""Anonymous guests through a real XMPP server (reference section 5.3): a web visitor logs
in with SASL ANONYMOUS on anon.capulet.lit, reads what anyone may read, follows while it is
online, and changes nothing."""

from __future__ import annotations

from e2e.harness import (
    ANON_DOMAIN,
    NS_OWNER,
    REGISTER,
    Client,
    configure_set,
    create,
    entry,
    has_item,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
    subscribe,
    subscription_event,
    temporary_subscribe,
    topic,
)


async def test_a_guest_reads_an_open_channel_and_writes_nothing(
    juliet: Client, guest: Client, unique: str
) -> None:
    assert guest.bare.endswith("@" + ANON_DOMAIN)  # the XMPP server named the guest
    published = await juliet.ok("set", publish(posts(juliet.bare), entry(f"hello all {unique}")))
    items = await guest.ok("get", items_request(posts(juliet.bare)))
    assert local_id(published_id(published)) in {
        item.get("id") for item in items.findall("pubsub:pubsub/pubsub:items/pubsub:item")
    }

    refused = await guest.iq("set", publish(posts(juliet.bare), entry("graffiti")))
    assert refused.condition == "forbidden", refused
    for_good = await guest.iq("set", subscribe(posts(juliet.bare), guest.bare))
    assert for_good.condition == "forbidden", for_good
    assert "pubsub#expire=presence" in for_good.text
    assert (await guest.iq("set", REGISTER)).condition == "not-allowed"
    assert (await guest.iq("set", create(topic(f"guest-{unique}")))).condition == "not-allowed"


async def test_a_guest_follows_while_online_and_is_gone_when_it_leaves(
    juliet: Client, guest: Client, unique: str
) -> None:
    node = posts(juliet.bare)
    reply = await guest.ok("set", temporary_subscribe(node, guest.bare))
    subscription = reply.find("pubsub:pubsub/pubsub:subscription")
    assert subscription is not None and subscription.get("temporary") == "1", reply
    published = await juliet.ok("set", publish(node, entry(f"live for guests {unique}")))
    await guest.wait_for(has_item(node, local_id(published_id(published))))

    await guest.disconnect()  # the XMPP server tells the service the guest is unavailable
    await juliet.wait_for(subscription_event(node, guest.bare, "none"))
    followers = await juliet.ok(
        "get", f"<pubsub xmlns='{NS_OWNER}'><subscriptions node='{node}'/></pubsub>"
    )
    jids = {s.get("jid") for s in followers.findall("owner:pubsub/owner:subscriptions/*")}
    assert guest.bare not in jids


async def test_a_local_channel_is_closed_to_guests_of_its_domain(
    juliet: Client, romeo: Client, guest: Client, unique: str
) -> None:
    node = topic(f"household-{unique}")
    await juliet.ok("set", create(node))
    await juliet.ok("set", configure_set(node, {"pubsub#access_model": "local"}))
    await romeo.ok("get", items_request(node))  # a user of capulet.lit reads it
    closed = await guest.iq("get", items_request(node))
    assert (closed.condition, closed.app_conditions) == ("forbidden", {"closed-node"}), closed
    visit = await guest.iq("set", temporary_subscribe(node, guest.bare))
    assert visit.condition == "forbidden", visit
