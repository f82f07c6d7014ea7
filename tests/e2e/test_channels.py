"""Channels through the wire: create, configure, publish, retract, follow, notifications."""

from __future__ import annotations

from e2e.conftest import Connect
from e2e.harness import (
    NS,
    NS_EVENT,
    NS_OWNER,
    NS_TOMBSTONES,
    Client,
    authorization_form,
    configure_get,
    configure_set,
    create,
    entry,
    event_items,
    form_values,
    has_item,
    has_retract,
    item_ids,
    items_request,
    local_id,
    mentions,
    posts,
    publish,
    published_id,
    retract,
    subscribe,
    subscription_event,
    temporary_subscribe,
    topic,
    unsubscribe,
    xml_text,
)


async def test_a_topic_channel_is_created_configured_and_shown_to_others(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"balcony-{unique}")
    await juliet.ok("set", create(node, {"pubsub#title": "Balcony scenes"}))

    await juliet.ok(
        "set",
        configure_set(
            node, {"pubsub#title": "Balcony", "pubsub#description": "Wherefore art thou"}
        ),
    )
    reply = await romeo.ok("get", configure_get(node))
    form = reply.find("owner:pubsub/owner:configure/data:x")
    assert form is not None, reply
    values = form_values(form)
    assert values["pubsub#title"] == ["Balcony"]
    assert values["pubsub#description"] == ["Wherefore art thou"]
    assert values["buddycloud#channel_type"] == ["topic"]


async def test_only_the_owner_configures_and_followers_see_the_change(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"config-{unique}")
    await juliet.ok("set", create(node))
    await romeo.ok("set", subscribe(node, romeo.bare))

    refused = await romeo.iq("set", configure_set(node, {"pubsub#title": "Mine now"}))
    assert refused.condition == "forbidden", refused

    await juliet.ok("set", configure_set(node, {"pubsub#title": "Still Juliet's"}))
    notification = await romeo.wait_for(
        lambda m: any(
            c.get("node") == node
            for c in m.findall(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}configuration")
        )
    )
    assert "Still Juliet" in xml_text(notification)


async def test_creating_an_existing_channel_is_a_conflict(juliet: Client, unique: str) -> None:
    node = topic(f"twice-{unique}")
    await juliet.ok("set", create(node))
    reply = await juliet.iq("set", create(node))
    assert reply.condition == "conflict", reply


async def test_publish_retrieve_and_retract_leave_a_tombstone(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = posts(juliet.bare)
    await romeo.ok("set", subscribe(node, romeo.bare))

    reply = await juliet.ok("set", publish(node, entry(f"O Romeo {unique}")))
    item_id = local_id(published_id(reply))
    notification = await romeo.wait_for(has_item(node, item_id))
    (item,) = event_items(notification, node)
    assert f"O Romeo {unique}" in xml_text(item)

    single = await romeo.ok("get", items_request(node, item_id=item_id))
    (fetched,) = single.findall("pubsub:pubsub/pubsub:items/pubsub:item")
    author = fetched.find("atom:entry/atom:author", NS)
    assert author is not None and juliet.bare in xml_text(author), single
    assert f"O Romeo {unique}" in xml_text(fetched)

    await juliet.ok("set", retract(node, item_id))
    gone = await romeo.wait_for(has_retract(node, item_id))
    tombstones = gone.findall(f".//{{{NS_TOMBSTONES}}}deleted-entry")
    assert len(tombstones) == 1, xml_text(gone)

    after = await romeo.iq("get", items_request(node, item_id=item_id))
    if after.ok:
        # Kept as a tombstone (ProtoXEP example 11): no content any more.
        assert f"O Romeo {unique}" not in after.text
        assert after.find(
            f"pubsub:pubsub/pubsub:items/pubsub:item/{{{NS_TOMBSTONES}}}deleted-entry"
        )
    else:
        assert after.condition == "item-not-found", after


async def test_only_the_author_or_a_moderator_retracts(
    juliet: Client, romeo: Client, benvolio: Client, unique: str
) -> None:
    node = posts(juliet.bare)
    await romeo.ok("set", subscribe(node, romeo.bare))
    await benvolio.ok("set", subscribe(node, benvolio.bare))
    reply = await romeo.ok("set", publish(node, entry(f"romeo writes {unique}")))
    item_id = local_id(published_id(reply))

    refused = await benvolio.iq("set", retract(node, item_id))
    assert refused.condition == "forbidden", refused
    await juliet.ok("set", retract(node, item_id))  # the owner moderates her channel


async def test_subscribing_to_an_open_channel_is_immediate(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"open-{unique}")
    await juliet.ok("set", create(node))
    reply = await romeo.ok("set", subscribe(node, romeo.bare))
    subscription = reply.find("pubsub:pubsub/pubsub:subscription")
    assert subscription is not None and subscription.get("subscription") == "subscribed", reply

    listed = await romeo.ok(
        "get", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions/></pubsub>"
    )
    nodes = {
        (s.get("node"), s.get("subscription"))
        for s in listed.findall("pubsub:pubsub/pubsub:subscriptions/pubsub:subscription")
    }
    assert (node, "subscribed") in nodes


async def test_an_authorize_channel_asks_the_owner_and_tells_the_follower(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"closed-{unique}")
    await juliet.ok("set", create(node, {"pubsub#access_model": "authorize"}))

    reply = await romeo.ok("set", subscribe(node, romeo.bare))
    subscription = reply.find("pubsub:pubsub/pubsub:subscription")
    assert subscription is not None and subscription.get("subscription") == "pending", reply

    # Pending followers cannot read yet.
    blocked = await romeo.iq("get", items_request(node))
    assert blocked.condition == "not-authorized", blocked
    assert "pending-subscription" in blocked.app_conditions, blocked

    prompt = await juliet.wait_for(authorization_form(node, romeo.bare))
    # The owner answers the prompt by submitting the form back (XEP-0060 §8.6).
    answer = (
        f"<message to='{prompt.get('from')}'>"
        "<x xmlns='jabber:x:data' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'>"
        "<value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field>"
        f"<field var='pubsub#node'><value>{node}</value></field>"
        f"<field var='pubsub#subscriber_jid'><value>{romeo.bare}</value></field>"
        "<field var='pubsub#allow'><value>true</value></field>"
        "</x></message>"
    )
    await juliet.send_raw(answer)
    await romeo.wait_for(subscription_event(node, romeo.bare, "subscribed"))
    await romeo.ok("get", items_request(node))


async def test_the_owner_approves_through_the_subscriptions_list(
    juliet: Client, romeo: Client, unique: str
) -> None:
    """Reference row 25: pubsub#owner subscriptions set approves a pending follower."""
    node = topic(f"closed2-{unique}")
    await juliet.ok("set", create(node, {"pubsub#access_model": "authorize"}))
    await romeo.ok("set", subscribe(node, romeo.bare))
    pending = await juliet.ok(
        "get",
        f"<pubsub xmlns='{NS_OWNER}'><subscriptions node='{node}'/></pubsub>",
    )
    states = {
        s.get("jid"): s.get("subscription")
        for s in pending.findall("owner:pubsub/owner:subscriptions/owner:subscription")
    }
    assert states.get(romeo.bare) == "pending", pending

    await juliet.ok(
        "set",
        "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>"
        f"<subscriptions node='{node}'><subscription jid='{romeo.bare}' subscription='subscribed'/>"
        "</subscriptions></pubsub>",
    )
    await romeo.wait_for(subscription_event(node, romeo.bare, "subscribed"))


async def test_notifications_reach_online_followers_only(
    connect: Connect, juliet: Client, romeo: Client, benvolio: Client, tybalt: Client, unique: str
) -> None:
    """Romeo follows and is online; Benvolio follows but is offline; Tybalt does not follow."""
    node = topic(f"news-{unique}")
    await juliet.ok("set", create(node))
    await romeo.ok("set", subscribe(node, romeo.bare))
    await benvolio.ok("set", subscribe(node, benvolio.bare))
    await benvolio.disconnect()  # Prosody tells the service he is unavailable

    # Make sure the service has seen Benvolio go before publishing: a fresh round trip by
    # another user is ordered after his unavailable presence on the component stream.
    await tybalt.sync()
    marker = f"news for followers {unique}"
    reply = await juliet.ok("set", publish(node, entry(marker)))
    item_id = local_id(published_id(reply))

    await romeo.wait_for(has_item(node, item_id))
    await tybalt.sync()
    assert tybalt.received(mentions(marker)) == []

    benvolio_again = await connect("benvolio", resource="later")
    await benvolio_again.sync()
    assert benvolio_again.received(mentions(marker)) == []
    # ...but what he missed is there for him to fetch.
    fetched = await benvolio_again.ok("get", items_request(node))
    assert item_id in item_ids(fetched)


async def test_unsubscribing_stops_notifications(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"leave-{unique}")
    await juliet.ok("set", create(node))
    await romeo.ok("set", subscribe(node, romeo.bare))
    await romeo.ok("set", unsubscribe(node, romeo.bare))
    marker = f"after leaving {unique}"
    await juliet.ok("set", publish(node, entry(marker)))
    await romeo.sync()
    assert romeo.received(mentions(marker)) == []


async def test_every_online_resource_of_a_follower_is_notified(
    connect: Connect, juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"resources-{unique}")
    await juliet.ok("set", create(node))
    await romeo.ok("set", subscribe(node, romeo.bare))
    romeo_phone = await connect("romeo", resource="phone")
    reply = await juliet.ok("set", publish(node, entry(f"to both {unique}")))
    item_id = local_id(published_id(reply))
    await romeo.wait_for(has_item(node, item_id))
    await romeo_phone.wait_for(has_item(node, item_id))


async def test_an_offline_owner_finds_the_authorization_prompt_on_login(
    connect: Connect, juliet: Client, romeo: Client, unique: str
) -> None:
    """The prompt goes to the owner's bare JID, which the XMPP server stores while offline."""
    node = topic(f"offline-owner-{unique}")
    await juliet.ok("set", create(node, {"pubsub#access_model": "authorize"}))
    await juliet.disconnect()
    await romeo.sync()
    await romeo.ok("set", subscribe(node, romeo.bare))

    juliet_again = await connect("juliet", resource="later")
    await juliet_again.wait_for(authorization_form(node, romeo.bare))


async def test_a_temporary_subscription_lasts_while_the_follower_is_online(
    connect: Connect, juliet: Client, unique: str
) -> None:
    """Reference row 29 (`pubsub#expire=presence`) through a real XMPP server."""
    node = topic(f"visit-{unique}")
    await juliet.ok("set", create(node))
    visitor = await connect("laurence", resource=f"visit-{unique}")
    reply = await visitor.ok("set", temporary_subscribe(node, visitor.bare))
    subscription = reply.find("pubsub:pubsub/pubsub:subscription")
    assert subscription is not None and subscription.get("temporary") == "1", reply
    published = await juliet.ok("set", publish(node, entry(f"while here {unique}")))
    await visitor.wait_for(has_item(node, local_id(published_id(published))))

    await visitor.disconnect()  # the XMPP server tells the service he is unavailable
    # The owner is told the follow ended; the XMPP server handles the visitor's
    # disconnection on its own schedule, so wait for that rather than for a round trip.
    await juliet.wait_for(subscription_event(node, visitor.bare, "none"))
    followers = await juliet.ok(
        "get", f"<pubsub xmlns='{NS_OWNER}'><subscriptions node='{node}'/></pubsub>"
    )
    jids = {s.get("jid") for s in followers.findall("owner:pubsub/owner:subscriptions/*")}
    assert visitor.bare not in jids and juliet.bare in jids
