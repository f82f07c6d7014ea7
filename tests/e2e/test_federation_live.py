"""Both halves of federation at once, through real servers: capulet.lit's channel server
sends the events of its channels to montague.lit's inbox over s2s, and montague.lit's server
tells its own online users, from its own JID.

Every user here asks only their own home server. A notification about a capulet.lit channel
that reaches a montague.lit user must come from channels.montague.lit, never from
channels.capulet.lit (which leaves them to their home server).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from e2e.conftest import FederatedConnect
from e2e.federation import CAPULET, MONTAGUE, TwoDomains, service_of
from e2e.harness import (
    Client,
    affiliation_event,
    authorization_form,
    configure_set,
    entry,
    event_items,
    event_retracts,
    item_ids,
    items_request,
    local_id,
    mentions,
    posts,
    publish,
    published_id,
    rating_entry,
    retract,
    set_affiliation,
    set_subscription,
    subscribe,
    subscription_event,
    unsubscribe,
    xml_text,
)


def from_home(client: Client) -> Callable[[ET.Element], bool]:
    """Only messages from the client's own channel server."""
    home = service_of(client.bare.partition("@")[2])
    return lambda message: message.get("from") == home


def both(*predicates: Callable[[ET.Element], bool]) -> Callable[[ET.Element], bool]:
    return lambda message: all(predicate(message) for predicate in predicates)


async def follow(client: Client, node: str, state: str = "subscribed") -> None:
    # A test before this one may have left the follow in place.
    await client.iq("set", unsubscribe(node, client.bare))
    answer = await client.ok("set", subscribe(node, client.bare))
    subscription = answer.find("pubsub:pubsub/pubsub:subscription")
    assert subscription is not None and subscription.get("subscription") == state


async def test_posts_replies_ratings_and_retractions_reach_the_other_domain_from_its_server(
    federated: FederatedConnect, unique: str
) -> None:
    juliet = await federated(f"juliet@{CAPULET}")
    romeo = await federated(f"romeo@{MONTAGUE}")
    balthasar = await federated(f"balthasar@{MONTAGUE}")
    node = posts(juliet.bare)
    earlier = local_id(
        published_id(await juliet.ok("set", publish(node, entry(f"before you came {unique}"))))
    )

    await follow(romeo, node)
    await follow(balthasar, node)
    # What Juliet posted before they followed is there, answered by their own server.
    page = await romeo.ok("get", items_request(node, max_items=20))
    assert page.element.get("from") == service_of(MONTAGUE)
    assert earlier in item_ids(page, node)

    # A new post reaches both, once each, from montague.lit's server.
    post = f"wherefore art thou {unique}"
    first = local_id(published_id(await juliet.ok("set", publish(node, entry(post)))))
    for follower in (romeo, balthasar):
        told = await follower.wait_for(mentions(post))
        assert told.get("from") == service_of(MONTAGUE)
        assert [local_id(i.get("id", "")) for i in event_items(told, node)] == [first]
    # Romeo's home server now serves the post from its cache.
    page = await romeo.ok("get", items_request(node, max_items=20))
    assert item_ids(page, node)[:1] == [first]

    # Romeo's reply, posted through his own server, reaches Juliet from hers and
    # Balthasar from his.
    answer = f"by a name I know not {unique}"
    await romeo.ok("set", publish(node, entry(answer, in_reply_to=first)))
    assert (await juliet.wait_for(mentions(answer))).get("from") == service_of(CAPULET)
    assert (await balthasar.wait_for(mentions(answer))).get("from") == service_of(MONTAGUE)

    # Balthasar's rating of the post too.
    await balthasar.ok("set", publish(node, rating_entry(first, "5")))
    rated = await romeo.wait_for(both(from_home(romeo), mentions("rated")))
    assert first in ET.tostring(rated, encoding="unicode")

    # Juliet retracts the post: both are told, and it is gone from the cache.
    await juliet.ok("set", retract(node, first))
    for follower in (romeo, balthasar):
        gone = await follower.wait_for(lambda m: first in map(local_id, event_retracts(m, node)))
        assert gone.get("from") == service_of(MONTAGUE)
    tombstone = await romeo.ok("get", items_request(node, item_id=first))
    assert tombstone.element.get("from") == service_of(MONTAGUE)
    assert tombstone.find("pubsub:pubsub/pubsub:items/pubsub:item/ts:deleted-entry") is not None

    # Nothing about Juliet's channel reached them from capulet.lit's server itself.
    for follower in (romeo, balthasar):
        assert not follower.received(lambda m: m.get("from") == service_of(CAPULET))

    for follower in (romeo, balthasar):
        await follower.ok("set", unsubscribe(node, follower.bare))


async def test_an_authorize_channel_of_another_domain_and_its_moderation(
    federated: FederatedConnect, unique: str
) -> None:
    nurse = await federated(f"nurse@{CAPULET}")
    romeo = await federated(f"romeo@{MONTAGUE}")
    node = posts(nurse.bare)
    await nurse.ok("set", configure_set(node, {"pubsub#access_model": "authorize"}))
    try:
        secret = f"a message from the nurse {unique}"
        await nurse.ok("set", publish(node, entry(secret)))

        # Romeo's follow waits for the Nurse, who is asked on her own server.
        await follow(romeo, node, "pending")
        await nurse.wait_for(authorization_form(node, romeo.bare))
        refused = await romeo.iq("get", items_request(node, max_items=10))
        assert refused.condition == "not-authorized"

        # She lets him in: his home server learns it through its inbox and tells him.
        await nurse.ok("set", set_subscription(node, romeo.bare, "subscribed"))
        told = await romeo.wait_for(subscription_event(node, romeo.bare, "subscribed"))
        assert told.get("from") == service_of(MONTAGUE)
        page = await romeo.ok("get", items_request(node, max_items=10))
        assert secret in page.text

        # She bans him: told from his home server, and he can no longer read.
        await nurse.ok("set", set_affiliation(node, romeo.bare, "outcast"))
        banned = await romeo.wait_for(affiliation_event(node, romeo.bare, "outcast"))
        assert banned.get("from") == service_of(MONTAGUE)
        shut = await romeo.iq("get", items_request(node, max_items=10))
        assert shut.condition in {"forbidden", "not-authorized"}
        assert secret not in shut.text
    finally:
        await nurse.ok("set", set_affiliation(node, romeo.bare, "none"))
        await nurse.ok("set", configure_set(node, {"pubsub#access_model": "open"}))
        await romeo.iq("set", unsubscribe(node, romeo.bare))


async def test_a_local_channel_stays_closed_to_another_domain(
    federated: FederatedConnect, unique: str
) -> None:
    tybalt = await federated(f"tybalt@{CAPULET}")
    balthasar = await federated(f"balthasar@{MONTAGUE}")
    node = posts(tybalt.bare)
    await tybalt.ok("set", configure_set(node, {"pubsub#access_model": "local"}))
    try:
        inside = f"for capulets only {unique}"
        await tybalt.ok("set", publish(node, entry(inside)))
        read = await balthasar.iq("get", items_request(node, max_items=10))
        assert read.condition in {"forbidden", "not-authorized"}
        assert inside not in read.text
        posted = await balthasar.iq("set", publish(node, entry("a montague was here")))
        assert posted.condition in {"forbidden", "not-authorized"}
    finally:
        await tybalt.ok("set", configure_set(node, {"pubsub#access_model": "open"}))


async def test_a_home_server_down_while_posts_are_made_gets_them_all_in_order_once_back(
    two_domains: TwoDomains, federated: FederatedConnect, unique: str
) -> None:
    """montague.lit's channel server is stopped while Juliet posts; capulet.lit keeps the
    posts queued, and when montague.lit's server is back and heard from (here: it forwards
    a request of Romeo's), they arrive in order and Romeo is told of each."""
    montague = two_domains.montague
    juliet = await federated(f"juliet@{CAPULET}")
    romeo = await federated(f"romeo@{MONTAGUE}")
    node = posts(juliet.bare)
    await follow(romeo, node)
    texts = [f"while you slept {n} {unique}" for n in range(4)]
    montague.stop_server()
    try:
        ids = [
            local_id(published_id(await juliet.ok("set", publish(node, entry(text)))))
            for text in texts
        ]
    finally:
        montague.start_server()

    back = await federated(f"romeo@{MONTAGUE}", resource="back")
    # Any request that montague.lit's server forwards to capulet.lit's is heard from there.
    await back.iq("get", items_request(posts(f"tybalt@{CAPULET}"), max_items=1))
    await back.wait_for(mentions(texts[-1]))
    arrived = [t for m in back.received(mentions(unique)) for t in texts if t in xml_text(m)]
    assert arrived == texts[:-1]
    page = await back.ok("get", items_request(node, max_items=10))
    assert page.element.get("from") == service_of(MONTAGUE)
    assert item_ids(page, node)[:4] == ids[::-1]
    await back.ok("set", unsubscribe(node, back.bare))
