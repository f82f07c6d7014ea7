"""The channel protocol end to end through the router: XML in, XML out, real engine."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import Element

from xmpp.support import NS, SERVICE, Client, Harness, condition_of

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import WELL_KNOWN_NODES, Entry, Item, NodeId
from buddycloud.storage.base import Storage
from buddycloud.xmpp.multicast import MulticastService
from buddycloud.xmpp.namespaces import NS_ADDRESS
from buddycloud.xmpp.xml import serialize

PUBSUB = f"<pubsub xmlns='{NS['pubsub']}'>"
OWNER = f"<pubsub xmlns='{NS['owner']}'>"
JULIET_POSTS = "/user/juliet@capulet.lit/posts"


def publish_xml(node: str, content: str, *, item_id: str | None = None, extra: str = "") -> str:
    id_attr = f" id='{item_id}'" if item_id else ""
    return (
        f"{PUBSUB}<publish node='{node}'><item{id_attr}>"
        f"<entry xmlns='{NS['atom']}' xmlns:thr='{NS['thr']}'>"
        f"<content type='text'>{content}</content>{extra}</entry>"
        f"</item></publish></pubsub>"
    )


async def register(client: Client) -> None:
    await client.ok("set", f"<query xmlns='{NS['register']}'/>")


JULIET = Jid.parse("juliet@capulet.lit")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored_post(item_id: str, seconds: int, content: str, author: Jid = JULIET) -> Item:
    """A post in Juliet's channel as storage holds it, written `seconds` after T0."""
    when = T0 + timedelta(seconds=seconds)
    tag = f"tag:{SERVICE},{JULIET_POSTS},{item_id}"
    entry = Entry(tag, "", content, "text", author, when, when)
    return Item(NodeId(JULIET, "posts"), item_id, author, when, when, entry)


def mam_query(
    fields: str, *, node: str | None = None, max_: int | None = None, query_id: str = "q"
) -> str:
    """A MAM query with the form `fields` (FORM_TYPE added), on `node` if given."""
    node_attr = f" node='{node}'" if node else ""
    rsm = f"<set xmlns='{NS['rsm']}'><max>{max_}</max></set>" if max_ is not None else ""
    return (
        f"<query xmlns='{NS['mam']}' queryid='{query_id}'{node_attr}>"
        f"<x xmlns='{NS['x']}' type='submit'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{NS['mam']}</value></field>{fields}</x>"
        f"{rsm}</query>"
    )


async def test_registering_creates_the_personal_channel_and_publishing_returns_the_id(
    juliet: Client,
) -> None:
    """ProtoXEP 3 and example 12: register, publish the minimal entry, get the item id."""
    await register(juliet)
    reply = await juliet.ok("set", publish_xml(JULIET_POSTS, "O Romeo, Romeo!"))
    item = reply.find("pubsub:pubsub/pubsub:publish/pubsub:item", NS)
    assert item is not None and item.get("id")
    assert reply.find("pubsub:pubsub/pubsub:publish", NS).get("node") == JULIET_POSTS  # type: ignore[union-attr]


async def test_items_come_back_as_completed_atom_entries(juliet: Client) -> None:
    """Example 13: the server adds id, title, dates, author (name, jid, acct: uri), verb."""
    await register(juliet)
    published = await juliet.ok("set", publish_xml(JULIET_POSTS, "wherefore art thou"))
    item_id = published.find(".//pubsub:item", NS).get("id")  # type: ignore[union-attr]
    reply = await juliet.ok("get", f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>")
    entry = reply.find("pubsub:pubsub/pubsub:items/pubsub:item/atom:entry", NS)
    assert entry is not None
    assert entry.findtext("atom:id", namespaces=NS) == (f"tag:{SERVICE},{JULIET_POSTS},{item_id}")
    assert entry.findtext("atom:content", namespaces=NS) == "wherefore art thou"
    assert entry.findtext("atom:title", namespaces=NS) == "Post"
    assert entry.findtext("atom:author/atom:name", namespaces=NS) == "juliet@capulet.lit"
    assert entry.findtext("atom:author/atom:uri", namespaces=NS) == "acct:juliet@capulet.lit"
    assert (
        entry.findtext("atom:author/{http://buddycloud.com/atom-elements-0}jid", namespaces=NS)
        == "juliet@capulet.lit"
    )
    assert entry.findtext("activity:verb", namespaces=NS) == "post"
    published_at = entry.findtext("atom:published", namespaces=NS)
    assert published_at is not None and published_at.endswith("Z") and "." in published_at
    count = reply.findtext("pubsub:pubsub/rsm:set/rsm:count", namespaces=NS)
    assert count == "1"


async def test_replies_reference_their_parent_by_global_id(juliet: Client) -> None:
    """ProtoXEP 6.3.2: thr:in-reply-to carries the parent's global id; replies are listed."""
    await register(juliet)
    parent = await juliet.ok("set", publish_xml(JULIET_POSTS, "parent"))
    parent_id = parent.find(".//pubsub:item", NS).get("id")  # type: ignore[union-attr]
    ref = f"tag:{SERVICE},{JULIET_POSTS},{parent_id}"
    await juliet.ok(
        "set", publish_xml(JULIET_POSTS, "a reply", extra=f"<thr:in-reply-to ref='{ref}'/>")
    )
    replies = await juliet.ok(
        "get",
        f"{PUBSUB}<replies xmlns='{NS['bc']}' node='{JULIET_POSTS}' item_id='{parent_id}'/>"
        "</pubsub>",
    )
    entries = replies.findall(".//atom:entry", NS)
    assert [e.findtext("atom:content", namespaces=NS) for e in entries] == ["a reply"]
    assert entries[0].find("thr:in-reply-to", NS).get("ref") == ref  # type: ignore[union-attr]
    parents_only = await juliet.ok(
        "get", f"{PUBSUB}<items node='{JULIET_POSTS}' parent-only='true'/></pubsub>"
    )
    contents = [
        e.findtext("atom:content", namespaces=NS)
        for e in parents_only.iter(f"{{{NS['atom']}}}entry")
    ]
    assert contents == ["parent"]


async def test_a_reply_to_a_reply_is_refused_with_the_thread_condition(juliet: Client) -> None:
    await register(juliet)
    parent = await juliet.ok("set", publish_xml(JULIET_POSTS, "parent"))
    parent_id = parent.find(".//pubsub:item", NS).get("id")  # type: ignore[union-attr]
    reply = await juliet.ok(
        "set", publish_xml(JULIET_POSTS, "r", extra=f"<thr:in-reply-to ref='{parent_id}'/>")
    )
    reply_id = reply.find(".//pubsub:item", NS).get("id")  # type: ignore[union-attr]
    condition = await juliet.error(
        "set", publish_xml(JULIET_POSTS, "rr", extra=f"<thr:in-reply-to ref='{reply_id}'/>")
    )
    assert condition == ("bad-request", "modify", "max-thread-depth-exceeded")


async def test_publishing_to_a_missing_node_is_item_not_found(juliet: Client) -> None:
    condition = await juliet.error("set", publish_xml("/user/nobody@capulet.lit/posts", "x"))
    assert condition == ("item-not-found", "cancel", None)


async def test_an_oversized_payload_is_refused_before_the_engine(juliet: Client) -> None:
    """XEP-0060 §7.1.3.4: not-acceptable + payload-too-big (limit 4096 in these tests)."""
    await register(juliet)
    condition = await juliet.error("set", publish_xml(JULIET_POSTS, "x" * 5000))
    assert condition == ("not-acceptable", "modify", "payload-too-big")


async def test_a_non_atom_payload_on_posts_is_refused(juliet: Client) -> None:
    await register(juliet)
    condition = await juliet.error(
        "set",
        f"{PUBSUB}<publish node='{JULIET_POSTS}'><item><geoloc xmlns='http://jabber.org/protocol/geoloc'/>"
        "</item></publish></pubsub>",
    )
    assert condition[0] == "bad-request"


async def test_geoloc_payloads_are_kept_verbatim(juliet: Client) -> None:
    await register(juliet)
    node = "/user/juliet@capulet.lit/geoloc"
    geoloc = (
        "<geoloc xmlns='http://jabber.org/protocol/geoloc'><locality>Verona</locality></geoloc>"
    )
    await juliet.ok(
        "set", f"{PUBSUB}<publish node='{node}'><item>{geoloc}</item></publish></pubsub>"
    )
    reply = await juliet.ok("get", f"{PUBSUB}<items node='{node}'/></pubsub>")
    locality = reply.findtext(
        ".//{http://jabber.org/protocol/geoloc}geoloc/{http://jabber.org/protocol/geoloc}locality"
    )
    assert locality == "Verona"


async def test_followers_online_receive_one_notification_per_resource(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    """Reference section 4: notifications go to every online full JID of each follower."""
    await register(juliet)
    await register(romeo)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await romeo.presence()
    phone = harness.client("romeo@capulet.lit/phone")
    await phone.presence()
    await juliet.ok("set", publish_xml(JULIET_POSTS, "hello followers"))
    messages = [m for m in harness.extra if m.tag == "message"]
    recipients = sorted(m.get("to", "") for m in messages)
    assert "romeo@capulet.lit/orchard" in recipients and "romeo@capulet.lit/phone" in recipients
    for message in messages:
        assert message.get("type") == "headline"
        assert message.get("from") == SERVICE
        content = message.findtext(
            "event:event/event:items/event:item/atom:entry/atom:content", namespaces=NS
        )
        assert content == "hello followers"
    # Going offline stops delivery to that resource.
    await phone.presence("unavailable")
    await juliet.ok("set", publish_xml(JULIET_POSTS, "again"))
    recipients = [m.get("to") for m in harness.extra if m.tag == "message"]
    assert "romeo@capulet.lit/phone" not in recipients
    assert "romeo@capulet.lit/orchard" in recipients


async def test_retraction_notifies_with_retract_and_tombstone(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    """ProtoXEP examples 9-11."""
    await register(juliet)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await romeo.presence()
    published = await juliet.ok("set", publish_xml(JULIET_POSTS, "regret"))
    item_id = published.find(".//pubsub:item", NS).get("id")  # type: ignore[union-attr]
    reply = await juliet.ok(
        "set",
        f"{PUBSUB}<retract node='{JULIET_POSTS}' notify='1'><item id='{item_id}'/></retract>"
        "</pubsub>",
    )
    assert list(reply) == []
    (message,) = [m for m in harness.extra if m.get("to") == "romeo@capulet.lit/orchard"]
    items = message.find("event:event/event:items", NS)
    assert items is not None and items.get("node") == JULIET_POSTS
    assert items.find("event:retract", NS).get("id") == item_id  # type: ignore[union-attr]
    tombstone = items.find("event:item/ts:deleted-entry", NS)
    assert tombstone is not None
    assert tombstone.get("ref") == (
        f"xmpp:{SERVICE}?pubsub;action=retrieve;node={JULIET_POSTS};item={item_id}"
    )
    assert tombstone.findtext("atom:content", namespaces=NS) is None


async def test_retract_with_notify_false_sends_nothing(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    await register(juliet)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await romeo.presence()
    published = await juliet.ok("set", publish_xml(JULIET_POSTS, "quiet"))
    item_id = published.find(".//pubsub:item", NS).get("id")  # type: ignore[union-attr]
    await juliet.ok(
        "set",
        f"{PUBSUB}<retract node='{JULIET_POSTS}' notify='false'><item id='{item_id}'/>"
        "</retract></pubsub>",
    )
    assert [m for m in harness.extra if m.tag == "message"] == []


async def test_someone_else_may_not_retract_a_post(juliet: Client, romeo: Client) -> None:
    await register(juliet)
    published = await juliet.ok("set", publish_xml(JULIET_POSTS, "mine"))
    item_id = published.find(".//pubsub:item", NS).get("id")  # type: ignore[union-attr]
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    condition = await romeo.error(
        "set", f"{PUBSUB}<retract node='{JULIET_POSTS}'><item id='{item_id}'/></retract></pubsub>"
    )
    assert condition[:2] == ("forbidden", "auth")


async def test_subscribe_answers_subscription_and_affiliation(
    juliet: Client, romeo: Client
) -> None:
    await register(juliet)
    reply = await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    subscription = reply.find("pubsub:pubsub/pubsub:subscription", NS)
    assert subscription is not None
    assert subscription.attrib == {
        "node": JULIET_POSTS,
        "jid": "romeo@capulet.lit",
        "subscription": "subscribed",
    }
    affiliation = reply.find("pubsub:pubsub/pubsub:affiliation", NS)
    assert affiliation is not None and affiliation.get("affiliation") == "publisher"


INVALID_JID = ("bad-request", "modify", "invalid-jid")


async def test_subscribing_or_unsubscribing_someone_else_is_an_invalid_jid(
    juliet: Client, romeo: Client
) -> None:
    """XEP-0060 §6.1.3.1 (and, for unsubscribe, the same answer; docs/errors.md): the jid
    names the subscriber, and the only subscriber a user may name is themselves."""
    await register(juliet)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    for operation in ("subscribe", "unsubscribe"):
        for jid in ("tybalt@capulet.lit", "tybalt@capulet.lit/orchard", "capulet.lit"):
            reply = await romeo.iq(
                "set", f"{PUBSUB}<{operation} node='{JULIET_POSTS}' jid='{jid}'/></pubsub>"
            )
            assert condition_of(reply) == INVALID_JID, (operation, jid)
            assert jid in (reply.findtext("error/stanzas:text", namespaces=NS) or "")
    # Romeo still follows: the refused unsubscribe changed nothing.
    followers = await juliet.ok("get", f"{OWNER}<subscriptions node='{JULIET_POSTS}'/></pubsub>")
    jids = {s.get("jid") for s in followers.iterfind(".//owner:subscription", NS)}
    assert "romeo@capulet.lit" in jids


async def test_a_malformed_subscriber_jid_is_an_invalid_jid(juliet: Client, romeo: Client) -> None:
    await register(juliet)
    for operation in ("subscribe", "unsubscribe"):
        for jid in ("@@", "romeo@", "romeo@capulet.lit/", "ro meo@capulet.lit", "x" * 2000):
            condition = await romeo.error(
                "set", f"{PUBSUB}<{operation} node='{JULIET_POSTS}' jid='{jid}'/></pubsub>"
            )
            assert condition == INVALID_JID, (operation, jid)


async def test_the_requesters_own_jid_full_or_bare_is_theirs(juliet: Client, romeo: Client) -> None:
    """Bare JIDs are compared: any resource of the requester names the requester."""
    await register(juliet)
    for jid in ("romeo@capulet.lit/elsewhere", "romeo@capulet.lit"):
        await romeo.ok("set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='{jid}'/></pubsub>")
        await romeo.ok("set", f"{PUBSUB}<unsubscribe node='{JULIET_POSTS}' jid='{jid}'/></pubsub>")


async def test_a_subscribe_without_jid_is_jid_required_and_an_unsubscribe_means_oneself(
    juliet: Client, romeo: Client
) -> None:
    """XEP-0060's schema requires jid on subscribe (docs/errors.md); the original servers
    let unsubscribe leave it out (reference row 30)."""
    await register(juliet)
    condition = await romeo.error("set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}'/></pubsub>")
    assert condition == ("bad-request", "modify", "jid-required")
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await romeo.ok("set", f"{PUBSUB}<unsubscribe node='{JULIET_POSTS}'/></pubsub>")
    condition = await romeo.error("set", f"{PUBSUB}<unsubscribe node='{JULIET_POSTS}'/></pubsub>")
    assert condition == ("unexpected-request", "cancel", "not-subscribed")


async def online_owner_of_a_closed_channel(juliet: Client) -> None:
    """Juliet registers, comes online, and makes her posts channel ask her for followers."""
    await register(juliet)
    await juliet.presence()
    form = (
        f"<x xmlns='{NS['x']}' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>"
        "<field var='pubsub#access_model'><value>authorize</value></field></x>"
    )
    await juliet.ok("set", f"{OWNER}<configure node='{JULIET_POSTS}'>{form}</configure></pubsub>")


async def test_with_a_multicast_service_every_headline_takes_it_and_prompts_do_not(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    """A headline for one resource goes through the service too (one path per follower
    keeps them in order); an authorization prompt goes straight to the moderator."""
    harness.notifier.multicast = MulticastService("capulet.lit", 20)
    await online_owner_of_a_closed_channel(juliet)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    prompts = [m for m in harness.extra if m.find("x:x", NS) is not None]
    assert [(m.get("to"), m.get("type")) for m in prompts] == [("juliet@capulet.lit/balcony", None)]
    assert all(m.find(f"{{{NS_ADDRESS}}}addresses") is None for m in prompts)

    await juliet.ok("set", publish_xml(JULIET_POSTS, "through the service"))
    (headline,) = [m for m in harness.extra if m.get("type") == "headline"]
    assert headline.get("to") == "capulet.lit"
    assert [(a.get("type"), a.get("jid")) for a in headline.iter(f"{{{NS_ADDRESS}}}address")] == [
        ("bcc", "juliet@capulet.lit/balcony")
    ]
    assert "through the service" in serialize(headline)


async def test_a_closed_channel_asks_the_owner_and_the_owner_approves_by_form(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    """Reference row 29 + 35: pending, a subscribe_authorization form, then subscribed."""
    await online_owner_of_a_closed_channel(juliet)
    reply = await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    assert reply.find("pubsub:pubsub/pubsub:subscription", NS).get("subscription") == "pending"  # type: ignore[union-attr]
    prompts = [m for m in harness.extra if m.find("x:x", NS) is not None]
    assert [m.get("to") for m in prompts] == ["juliet@capulet.lit/balcony"]
    fields = {
        f.get("var"): f.findtext("x:value", namespaces=NS)
        for f in prompts[0].findall("x:x/x:field", NS)
    }
    assert fields["FORM_TYPE"] == "http://jabber.org/protocol/pubsub#subscribe_authorization"
    assert fields["pubsub#node"] == JULIET_POSTS
    assert fields["pubsub#subscriber_jid"] == "romeo@capulet.lit"
    # Pending followers may not read (not-authorized + pending-subscription).
    assert await romeo.error("get", f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>") == (
        "not-authorized",
        "auth",
        "pending-subscription",
    )
    answer = (
        f"<x xmlns='{NS['x']}' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field>"
        f"<field var='pubsub#node'><value>{JULIET_POSTS}</value></field>"
        "<field var='pubsub#subscriber_jid'><value>romeo@capulet.lit</value></field>"
        "<field var='pubsub#allow'><value>true</value></field></x>"
    )
    assert [m for m in await juliet.message(answer) if m.get("type") == "error"] == []
    await romeo.ok("get", f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>")


async def test_owner_approves_a_pending_subscription_with_the_owner_namespace(
    juliet: Client, romeo: Client
) -> None:
    await register(juliet)
    form = (
        f"<x xmlns='{NS['x']}' type='submit'>"
        "<field var='pubsub#access_model'><value>authorize</value></field></x>"
    )
    await juliet.ok("set", f"{OWNER}<configure node='{JULIET_POSTS}'>{form}</configure></pubsub>")
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    listed = await juliet.ok("get", f"{OWNER}<subscriptions node='{JULIET_POSTS}'/></pubsub>")
    states = {
        s.get("jid"): s.get("subscription")
        for s in listed.findall("owner:pubsub/owner:subscriptions/owner:subscription", NS)
    }
    assert states["romeo@capulet.lit"] == "pending"
    await juliet.ok(
        "set",
        f"{OWNER}<subscriptions node='{JULIET_POSTS}'>"
        "<subscription jid='romeo@capulet.lit' subscription='subscribed'/>"
        "</subscriptions></pubsub>",
    )
    await romeo.ok("get", f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>")


async def test_configuration_form_shows_table_1_fields(juliet: Client) -> None:
    await register(juliet)
    reply = await juliet.ok("get", f"{OWNER}<configure node='{JULIET_POSTS}'/></pubsub>")
    fields = {
        f.get("var"): f.findtext("x:value", namespaces=NS)
        for f in reply.findall("owner:pubsub/owner:configure/x:x/x:field", NS)
    }
    assert fields["FORM_TYPE"] == "http://jabber.org/protocol/pubsub#node_config"
    assert fields["pubsub#access_model"] == "open"
    assert fields["pubsub#creator"] == "juliet@capulet.lit"
    assert fields["buddycloud#channel_type"] == "personal"
    assert fields["buddycloud#default_affiliation"] == "publisher"
    assert fields["pubsub#type"] == "http://www.w3.org/2005/Atom"
    assert fields["pubsub#creation_date"] is not None


async def test_changing_the_configuration_notifies_followers(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    await register(juliet)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await romeo.presence()
    form = (
        f"<x xmlns='{NS['x']}' type='submit'>"
        "<field var='pubsub#title'><value>Balcony thoughts</value></field></x>"
    )
    await juliet.ok("set", f"{OWNER}<configure node='{JULIET_POSTS}'>{form}</configure></pubsub>")
    titles = [
        f.findtext("x:value", namespaces=NS)
        for m in harness.extra
        if m.get("to") == "romeo@capulet.lit/orchard"
        for f in m.findall("event:event/event:configuration/x:x/x:field", NS)
        if f.get("var") == "pubsub#title"
    ]
    assert titles and set(titles) == {"Balcony thoughts"}


async def test_only_the_owner_configures(juliet: Client, romeo: Client) -> None:
    await register(juliet)
    form = (
        f"<x xmlns='{NS['x']}' type='submit'>"
        "<field var='pubsub#access_model'><value>authorize</value></field></x>"
    )
    condition = await romeo.error(
        "set", f"{OWNER}<configure node='{JULIET_POSTS}'>{form}</configure></pubsub>"
    )
    assert condition[:2] == ("forbidden", "auth")


async def test_an_unknown_access_model_is_not_acceptable(juliet: Client) -> None:
    await register(juliet)
    form = (
        f"<x xmlns='{NS['x']}' type='submit'>"
        "<field var='pubsub#access_model'><value>roster</value></field></x>"
    )
    condition = await juliet.error(
        "set", f"{OWNER}<configure node='{JULIET_POSTS}'>{form}</configure></pubsub>"
    )
    assert condition[:2] == ("not-acceptable", "modify")


async def test_creating_a_topic_channel_and_deleting_it(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    node = "/user/balcony@topics.capulet.lit/posts"
    form = (
        f"<configure><x xmlns='{NS['x']}' type='submit'>"
        "<field var='pubsub#title'><value>Balcony scenes</value></field></x></configure>"
    )
    await juliet.ok("set", f"{PUBSUB}<create node='{node}'/>{form}</pubsub>")
    assert await juliet.error("set", f"{PUBSUB}<create node='{node}'/></pubsub>") == (
        "conflict",
        "cancel",
        None,
    )
    info = await romeo.ok("get", f"<query xmlns='{NS['disco']}' node='{node}'/>")
    fields = {
        f.get("var"): f.findtext("x:value", namespaces=NS)
        for f in info.findall("disco:query/x:x/x:field", NS)
    }
    assert fields["pubsub#title"] == "Balcony scenes"
    assert fields["buddycloud#channel_type"] == "topic"
    assert fields["pubsub#num_subscribers"] == "1"
    await romeo.ok("set", f"{PUBSUB}<subscribe node='{node}' jid='romeo@capulet.lit'/></pubsub>")
    await romeo.presence()
    assert (await romeo.error("set", f"{OWNER}<delete node='{node}'/></pubsub>"))[0] == "forbidden"
    await juliet.ok("set", f"{OWNER}<delete node='{node}'/></pubsub>")
    deletes = [
        m.find("event:event/event:delete", NS)
        for m in harness.extra
        if m.get("to") == "romeo@capulet.lit/orchard"
    ]
    assert [d.get("node") for d in deletes if d is not None] == [node]
    assert (await romeo.error("get", f"<query xmlns='{NS['disco']}' node='{node}'/>"))[0] == (
        "item-not-found"
    )


async def test_user_and_node_subscriptions_and_affiliations(juliet: Client, romeo: Client) -> None:
    await register(juliet)
    await register(romeo)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    mine = await romeo.ok("get", f"{PUBSUB}<subscriptions/></pubsub>")
    nodes = {
        s.get("node"): s.get("subscription")
        for s in mine.findall("pubsub:pubsub/pubsub:subscriptions/pubsub:subscription", NS)
    }
    assert nodes[JULIET_POSTS] == "subscribed"
    affiliations = await romeo.ok("get", f"{PUBSUB}<affiliations/></pubsub>")
    roles = {
        a.get("node"): a.get("affiliation")
        for a in affiliations.findall("pubsub:pubsub/pubsub:affiliations/pubsub:affiliation", NS)
    }
    assert roles[JULIET_POSTS] == "publisher"
    assert roles["/user/romeo@capulet.lit/posts"] == "owner"
    node_level = await romeo.ok("get", f"{PUBSUB}<affiliations node='{JULIET_POSTS}'/></pubsub>")
    jids = {
        a.get("jid"): a.get("affiliation")
        for a in node_level.findall("pubsub:pubsub/pubsub:affiliations/pubsub:affiliation", NS)
    }
    assert jids == {"juliet@capulet.lit": "owner", "romeo@capulet.lit": "publisher"}


async def test_own_lists_of_ephemeral_channels_are_asked_for_apart(
    juliet: Client, romeo: Client
) -> None:
    """Reference rows 23 and 26: `bc:ephemeral='true'` on the element lists only ephemeral
    channels; without it they are left out."""
    await register(juliet)
    room = "/user/4f1c9e@topics.capulet.lit/posts"
    form = (
        f"<configure><x xmlns='{NS['x']}' type='submit'>"
        "<field var='buddycloud#ephemeral'><value>true</value></field></x></configure>"
    )
    await juliet.ok("set", f"{PUBSUB}<create node='{room}'/>{form}</pubsub>")
    for node in (JULIET_POSTS, room):
        await romeo.ok(
            "set", f"{PUBSUB}<subscribe node='{node}' jid='romeo@capulet.lit'/></pubsub>"
        )

    def nodes(reply: Element, name: str) -> list[str | None]:
        return [e.get("node") for e in reply.findall(f"pubsub:pubsub/pubsub:{name}s/*", NS)]

    bc = f"xmlns:bc='{NS['bc']}'"
    for name in ("subscription", "affiliation"):
        lasting = await romeo.ok("get", f"{PUBSUB}<{name}s/></pubsub>")
        assert room not in nodes(lasting, name) and JULIET_POSTS in nodes(lasting, name)
        rooms = await romeo.ok("get", f"{PUBSUB}<{name}s {bc} bc:ephemeral='true'/></pubsub>")
        assert nodes(rooms, name) == [room]
        assert rooms.findtext("pubsub:pubsub/rsm:set/rsm:count", namespaces=NS) == "1"
        wrong = await romeo.error("get", f"{PUBSUB}<{name}s {bc} bc:ephemeral='maybe'/></pubsub>")
        assert wrong[:2] == ("bad-request", "modify")


async def test_owner_changes_a_role_and_followers_are_told(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    await register(juliet)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await romeo.presence()
    await juliet.ok(
        "set",
        f"{OWNER}<affiliations node='{JULIET_POSTS}'>"
        "<affiliation jid='romeo@capulet.lit' affiliation='moderator'/></affiliations></pubsub>",
    )
    changes = [
        a.attrib
        for m in harness.extra
        if m.get("to") == "romeo@capulet.lit/orchard"
        for a in m.findall("event:event/event:affiliations/event:affiliation", NS)
    ]
    assert {"jid": "romeo@capulet.lit", "affiliation": "moderator"} in changes
    own = await juliet.error(
        "set",
        f"{OWNER}<affiliations node='{JULIET_POSTS}'>"
        "<affiliation jid='juliet@capulet.lit' affiliation='member'/></affiliations></pubsub>",
    )
    assert own == ("not-allowed", "cancel", "can-not-modify-own-affiliation")


async def test_unsubscribe_ends_the_follow(juliet: Client, romeo: Client) -> None:
    await register(juliet)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await romeo.ok("set", f"{PUBSUB}<unsubscribe node='{JULIET_POSTS}'/></pubsub>")
    mine = await romeo.ok("get", f"{PUBSUB}<subscriptions/></pubsub>")
    assert mine.findall(".//pubsub:subscription", NS) == []


async def test_recent_items_are_grouped_by_node(juliet: Client, romeo: Client) -> None:
    """ProtoXEP example 7-8, and the 6.1.1.1 error conditions."""
    await register(juliet)
    await register(romeo)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await juliet.ok("set", publish_xml(JULIET_POSTS, "one"))
    await juliet.ok("set", publish_xml(JULIET_POSTS, "two"))
    reply = await romeo.ok(
        "get",
        f"{PUBSUB}<recent-items xmlns='{NS['bc']}' since='2000-01-01T00:00:00Z' max='50' "
        "parent-only='true'/></pubsub>",
    )
    blocks = reply.findall("pubsub:pubsub/pubsub:items", NS)
    assert [b.get("node") for b in blocks] == [JULIET_POSTS]
    contents = [
        e.findtext("atom:content", namespaces=NS) for e in blocks[0].iter(f"{{{NS['atom']}}}entry")
    ]
    assert contents == ["two", "one"]
    missing_max = await romeo.error(
        "get", f"{PUBSUB}<recent-items xmlns='{NS['bc']}' since='2000-01-01T00:00:00Z'/></pubsub>"
    )
    assert missing_max == ("bad-request", "modify", "max-required")
    bad_since = await romeo.error(
        "get", f"{PUBSUB}<recent-items xmlns='{NS['bc']}' since='yesterday' max='5'/></pubsub>"
    )
    assert bad_since == ("bad-request", "modify", "invalid-since-value-provided")


async def test_the_firehose_lists_public_items_grouped_by_node(
    juliet: Client, romeo: Client
) -> None:
    """Reference row 17: `/firehose`, newest first, with RSM."""
    await register(juliet)
    await register(romeo)
    await juliet.ok("set", publish_xml(JULIET_POSTS, "one", item_id="j1"))
    await romeo.ok("set", publish_xml("/user/romeo@capulet.lit/posts", "two", item_id="r1"))
    await juliet.ok("set", publish_xml(JULIET_POSTS, "three", item_id="j2"))
    reply = await romeo.ok(
        "get",
        f"{PUBSUB}<items node='/firehose'/><set xmlns='{NS['rsm']}'><max>2</max></set></pubsub>",
    )
    blocks = reply.findall("pubsub:pubsub/pubsub:items", NS)
    assert [(b.get("node"), [i.get("id") for i in b]) for b in blocks] == [
        (JULIET_POSTS, ["j2"]),
        ("/user/romeo@capulet.lit/posts", ["r1"]),
    ]
    assert reply.findtext("pubsub:pubsub/rsm:set/rsm:count", namespaces=NS) == "3"
    last = reply.findtext("pubsub:pubsub/rsm:set/rsm:last", namespaces=NS)
    rest = await romeo.ok(
        "get",
        f"{PUBSUB}<items node='/firehose'/><set xmlns='{NS['rsm']}'><after>{last}</after>"
        "</set></pubsub>",
    )
    ids = [i.get("id") for i in rest.iterfind("pubsub:pubsub/pubsub:items/pubsub:item", NS)]
    assert ids == ["j1"]
    single = await romeo.error(
        "get", f"{PUBSUB}<items node='/firehose'><item id='j1'/></items></pubsub>"
    )
    assert single[:2] == ("bad-request", "modify")
    unknown = await romeo.error(
        "get",
        f"{PUBSUB}<items node='/firehose'/><set xmlns='{NS['rsm']}'><after>nothing,here</after>"
        "</set></pubsub>",
    )
    assert unknown[0] == "item-not-found"


TEMPORARY = (
    "<options><x xmlns='jabber:x:data' type='submit'>"
    "<field var='FORM_TYPE' type='hidden'>"
    "<value>http://jabber.org/protocol/pubsub#subscribe_options</value></field>"
    "<field var='pubsub#expire'><value>presence</value></field></x></options>"
)


async def test_a_temporary_subscription_ends_when_the_user_goes_offline(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    """Reference row 29: `pubsub#expire=presence`."""
    await register(juliet)
    await romeo.presence()
    reply = await romeo.ok(
        "set",
        f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/>{TEMPORARY}</pubsub>",
    )
    subscription = reply.find("pubsub:pubsub/pubsub:subscription", NS)
    assert subscription is not None
    assert (subscription.get("subscription"), subscription.get("temporary")) == ("subscribed", "1")
    affiliation = reply.find("pubsub:pubsub/pubsub:affiliation", NS)
    assert affiliation is not None and affiliation.get("affiliation") == "none"
    sent = await harness.feed(
        f"<iq xmlns='jabber:component:accept' type='set' id='p1' from='{juliet.jid}' "
        f"to='{SERVICE}'>{publish_xml(JULIET_POSTS, 'hello visitor')}</iq>"
    )
    assert any(s.tag == "message" and s.get("to") == romeo.jid for s in sent)

    await romeo.presence("unavailable")
    followers = await juliet.ok("get", f"{PUBSUB}<subscriptions node='{JULIET_POSTS}'/></pubsub>")
    jids = {s.get("jid") for s in followers.iterfind("pubsub:pubsub/pubsub:subscriptions/*", NS)}
    assert "romeo@capulet.lit" not in jids
    # A permanent follow is left alone by going offline.
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await romeo.presence()
    await romeo.presence("unavailable")
    followers = await juliet.ok("get", f"{PUBSUB}<subscriptions node='{JULIET_POSTS}'/></pubsub>")
    jids = {s.get("jid") for s in followers.iterfind("pubsub:pubsub/pubsub:subscriptions/*", NS)}
    assert "romeo@capulet.lit" in jids


async def test_a_bounced_notification_ends_a_temporary_subscription(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    """A follower who left while the component was disconnected sends no unavailable
    presence; the XMPP server's bounce of the next notification is the news."""
    await register(juliet)
    await romeo.presence()
    await romeo.ok(
        "set",
        f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/>{TEMPORARY}</pubsub>",
    )
    await harness.feed(
        f"<message xmlns='jabber:component:accept' type='error' from='{romeo.jid}' "
        f"to='{SERVICE}'><error type='cancel'><service-unavailable "
        f"xmlns='{NS['stanzas']}'/></error></message>"
    )
    followers = await juliet.ok("get", f"{PUBSUB}<subscriptions node='{JULIET_POSTS}'/></pubsub>")
    jids = {s.get("jid") for s in followers.iterfind("pubsub:pubsub/pubsub:subscriptions/*", NS)}
    assert "romeo@capulet.lit" not in jids


async def test_a_temporary_subscription_needs_presence_first(juliet: Client, romeo: Client) -> None:
    """Reference row 29: temporary "only while sending presence"; without directed presence
    the component would never learn that the user left."""
    await register(juliet)
    subscribe = (
        f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/>{TEMPORARY}</pubsub>"
    )
    reply = await romeo.iq("set", subscribe)
    assert condition_of(reply) == ("not-acceptable", "modify", "invalid-options")
    assert "send presence" in (reply.findtext("error/stanzas:text", namespaces=NS) or "")
    followers = await juliet.ok("get", f"{PUBSUB}<subscriptions node='{JULIET_POSTS}'/></pubsub>")
    jids = {s.get("jid") for s in followers.iterfind("pubsub:pubsub/pubsub:subscriptions/*", NS)}
    assert "romeo@capulet.lit" not in jids
    await romeo.presence()
    await romeo.ok("set", subscribe)


async def test_an_anonymous_guest_reads_and_follows_while_online_but_writes_nothing(
    harness: Harness, juliet: Client
) -> None:
    """Reference section 5.3: a guest of anon.<domain> (a web client's anonymous login)."""
    guest = harness.client("5e1d2c@anon.capulet.lit/web")
    await register(juliet)
    await juliet.ok("set", publish_xml(JULIET_POSTS, "for everyone"))
    items = await guest.ok("get", f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>")
    assert [
        e.findtext("atom:content", namespaces=NS) for e in items.iterfind(".//atom:entry", NS)
    ] == ["for everyone"]
    for_good = await guest.iq(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='5e1d2c@anon.capulet.lit'/></pubsub>"
    )
    assert condition_of(for_good) == ("forbidden", "auth", None)
    assert "pubsub#expire=presence" in (
        for_good.findtext("error/stanzas:text", namespaces=NS) or ""
    )
    assert (await guest.error("set", publish_xml(JULIET_POSTS, "graffiti")))[0] == "forbidden"
    assert (await guest.error("set", f"<query xmlns='{NS['register']}'/>"))[0] == "not-allowed"

    await guest.presence()
    await guest.ok(
        "set",
        f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='5e1d2c@anon.capulet.lit'/>{TEMPORARY}"
        "</pubsub>",
    )
    sent = await harness.feed(
        f"<iq xmlns='jabber:component:accept' type='set' id='p2' from='{juliet.jid}' "
        f"to='{SERVICE}'>{publish_xml(JULIET_POSTS, 'live for the guest')}</iq>"
    )
    assert any(s.tag == "message" and s.get("to") == guest.jid for s in sent)


async def test_rsm_pages_through_items(juliet: Client) -> None:
    await register(juliet)
    for n in range(5):
        await juliet.ok("set", publish_xml(JULIET_POSTS, f"post {n}"))
    first = await juliet.ok(
        "get",
        f"{PUBSUB}<items node='{JULIET_POSTS}'/>"
        f"<set xmlns='{NS['rsm']}'><max>2</max></set></pubsub>",
    )
    assert len(first.findall(".//atom:entry", NS)) == 2
    assert first.findtext(".//rsm:count", namespaces=NS) == "5"
    last = first.findtext(".//rsm:last", namespaces=NS)
    second = await juliet.ok(
        "get",
        f"{PUBSUB}<items node='{JULIET_POSTS}'/><set xmlns='{NS['rsm']}'><max>2</max>"
        f"<after>{last}</after></set></pubsub>",
    )
    contents = [
        e.findtext("atom:content", namespaces=NS) for e in second.findall(".//atom:entry", NS)
    ]
    assert contents == ["post 2", "post 1"]


async def test_threads_and_thread(juliet: Client) -> None:
    await register(juliet)
    parent = await juliet.ok("set", publish_xml(JULIET_POSTS, "topic"))
    parent_id = parent.find(".//pubsub:item", NS).get("id")  # type: ignore[union-attr]
    await juliet.ok(
        "set", publish_xml(JULIET_POSTS, "answer", extra=f"<thr:in-reply-to ref='{parent_id}'/>")
    )
    threads = await juliet.ok("get", f"{PUBSUB}<threads node='{JULIET_POSTS}'/></pubsub>")
    (thread,) = threads.findall("pubsub:pubsub/pubsub:thread", NS)
    assert thread.get("id") == parent_id
    assert len(thread.findall("pubsub:item", NS)) == 2
    whole = await juliet.ok(
        "get",
        f"{PUBSUB}<thread xmlns='{NS['bc']}' node='{JULIET_POSTS}' item_id='{parent_id}'/>"
        "</pubsub>",
    )
    contents = [
        e.findtext("atom:content", namespaces=NS) for e in whole.findall(".//atom:entry", NS)
    ]
    assert contents == ["topic", "answer"]


async def test_single_items_by_id_and_a_missing_one(juliet: Client) -> None:
    await register(juliet)
    published = await juliet.ok("set", publish_xml(JULIET_POSTS, "only"))
    item_id = published.find(".//pubsub:item", NS).get("id")  # type: ignore[union-attr]
    reply = await juliet.ok(
        "get", f"{PUBSUB}<items node='{JULIET_POSTS}'><item id='{item_id}'/></items></pubsub>"
    )
    assert reply.findtext(".//atom:content", namespaces=NS) == "only"
    missing = await juliet.error(
        "get", f"{PUBSUB}<items node='{JULIET_POSTS}'><item id='nope'/></items></pubsub>"
    )
    assert missing == ("item-not-found", "cancel", None)


async def test_subscriptions_with_configuration_filters(juliet: Client, romeo: Client) -> None:
    """ProtoXEP examples 17-20."""
    await register(juliet)
    await register(romeo)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    everything = await romeo.ok(
        "get", f"{PUBSUB}<subscriptions-with-configuration xmlns='{NS['bc']}'/></pubsub>"
    )
    rows = everything.findall(
        "pubsub:pubsub/bc:subscriptions-with-configuration/bc:subscription-with-configuration", NS
    )
    # One row per node of each followed channel (ProtoXEP 5.4).
    juliet_nodes = [f"/user/juliet@capulet.lit/{name}" for name in sorted(WELL_KNOWN_NODES)]
    romeo_nodes = [f"/user/romeo@capulet.lit/{name}" for name in sorted(WELL_KNOWN_NODES)]
    assert [r.get("node") for r in rows] == juliet_nodes + romeo_nodes
    filtered = await romeo.ok(
        "get",
        f"{PUBSUB}<subscriptions-with-configuration xmlns='{NS['bc']}'>"
        "<subscription-filter><allow field='creator' value='juliet@capulet.lit'/>"
        "</subscription-filter>"
        "<configuration-filter><allow field='description'/></configuration-filter>"
        "</subscriptions-with-configuration></pubsub>",
    )
    rows = filtered.findall(".//bc:subscription-with-configuration", NS)
    assert [r.get("node") for r in rows] == juliet_nodes
    for row in rows:
        fields = [f.get("var") for f in row.findall("bc:configure/x:x/x:field", NS)]
        assert fields == ["FORM_TYPE", "pubsub#description"]


async def test_search_finds_posts_by_words(juliet: Client, romeo: Client) -> None:
    await register(juliet)
    await juliet.ok("set", publish_xml(JULIET_POSTS, "the nightingale sings"))
    await juliet.ok("set", publish_xml(JULIET_POSTS, "the lark"))
    form = await romeo.ok("get", f"<query xmlns='{NS['search']}'/>")
    assert {f.get("var") for f in form.findall(".//x:field", NS)} >= {
        "content",
        "author",
        "rpp",
        "page",
    }
    reply = await romeo.ok(
        "set",
        f"<query xmlns='{NS['search']}'><x xmlns='{NS['x']}' type='submit'>"
        "<field var='content'><value>nightingale</value></field></x></query>",
    )
    rows = reply.findall("search:query/x:x/x:item", NS)
    assert len(rows) == 1
    assert rows[0].findtext(".//atom:content", namespaces=NS) == "the nightingale sings"


async def test_search_pages_reach_past_the_thousandth_result(
    juliet: Client, romeo: Client, storage: Storage
) -> None:
    """rpp and page number any result: page 3 of 450 holds results 901-1,350."""
    await register(juliet)
    await asyncio.gather(
        *(storage.put_item(stored_post(f"p{k:04d}", k, f"a rose {k}")) for k in range(1_100))
    )
    reply = await romeo.ok(
        "set",
        f"<query xmlns='{NS['search']}'><x xmlns='{NS['x']}' type='submit'>"
        "<field var='content'><value>rose</value></field>"
        "<field var='rpp'><value>450</value></field>"
        "<field var='page'><value>3</value></field></x></query>",
    )
    rows = reply.findall("search:query/x:x/x:item", NS)
    ids = [row.findtext("x:field[@var='id']/x:value", namespaces=NS) for row in rows]
    # Newest first: results 901-1,100 are the 200 oldest posts.
    assert ids == [f"p{k:04d}" for k in range(199, -1, -1)]


async def test_mam_replays_a_node_as_forwarded_messages(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    """XEP-0313 on a node: one <result><forwarded> message per item, oldest first, the
    forwarded message in the client namespace (XEP-0297), then <fin>."""
    await register(juliet)
    await juliet.ok("set", publish_xml(JULIET_POSTS, "first"))
    await juliet.ok("set", publish_xml(JULIET_POSTS, "second"))
    start = "<field var='start'><value>2000-01-01T00:00:00Z</value></field>"
    reply = await romeo.ok("set", mam_query(start, node=JULIET_POSTS, query_id="sync1"))
    messages = [m for m in harness.extra if m.tag == "message"]
    assert [m.get("to") for m in messages] == ["romeo@capulet.lit/orchard"] * 2
    results = [m.find("mam:result", NS) for m in messages]
    assert all(r is not None and r.get("queryid") == "sync1" for r in results)
    contents = [
        m.findtext(
            "mam:result/fwd:forwarded/client:message/event:event/event:items/event:item/atom:entry/atom:content",
            namespaces=NS,
        )
        for m in messages
    ]
    assert contents == ["first", "second"]
    fin = reply.find("mam:fin", NS)
    assert fin is not None and fin.get("complete") == "true"
    assert fin.findtext("rsm:set/rsm:count", namespaces=NS) == "2"


async def test_mam_with_and_end_pick_the_page_from_the_matching_items(
    harness: Harness, juliet: Client, romeo: Client, storage: Storage
) -> None:
    """`with` and `end` narrow the archive before it is paged: a full page of the
    author's items even when other items come first, on a node and across the requester's
    followed nodes alike; pages are oldest first (XEP-0313 §4.2)."""
    await register(juliet)
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    nurse = Jid.parse("nurse@capulet.lit")
    for k in range(3):
        await storage.put_item(stored_post(f"nurse{k}", k, f"nurse{k}", author=nurse))
    for k in range(5):
        await storage.put_item(stored_post(f"juliet{k}", 10 + k, f"juliet{k}"))
    with_nurse = f"<field var='with'><value>{nurse}</value></field>"
    end = "<field var='end'><value>2026-01-01T00:00:01Z</value></field>"

    async def replayed(query: str) -> tuple[list[str | None], Element]:
        harness.extra.clear()
        reply = await romeo.ok("set", query)
        contents = [
            m.findtext(".//atom:content", namespaces=NS)
            for m in harness.extra
            if m.tag == "message"
        ]
        return contents, reply

    for where in (JULIET_POSTS, None):
        contents, reply = await replayed(mam_query(with_nurse, node=where, max_=2))
        assert contents == ["nurse0", "nurse1"], where
        fin = reply.find("mam:fin", NS)
        assert fin is not None and fin.get("complete") == "false", where
        contents, reply = await replayed(mam_query(with_nurse + end, node=where, max_=10))
        assert contents == ["nurse0", "nurse1"], where
        fin = reply.find("mam:fin", NS)
        assert fin is not None and fin.get("complete") == "true", where


async def test_dates_out_of_range_are_bad_requests_not_internal_errors(juliet: Client) -> None:
    """A date that overflows once moved to UTC is the client's mistake (InvalidDate)."""
    await register(juliet)
    out_of_range = "0001-01-01T00:00:00+01:00"
    mam = mam_query(f"<field var='start'><value>{out_of_range}</value></field>")
    assert (await juliet.error("set", mam))[:2] == ("bad-request", "modify")
    user_items = f"{PUBSUB}<user-items xmlns='{NS['bc']}' since='{out_of_range}'/></pubsub>"
    assert (await juliet.error("get", user_items))[:2] == ("bad-request", "modify")
    recent = f"{PUBSUB}<recent-items xmlns='{NS['bc']}' since='{out_of_range}' max='5'/></pubsub>"
    assert await juliet.error("get", recent) == (
        "bad-request",
        "modify",
        "invalid-since-value-provided",
    )


async def test_mam_pages_a_node_in_chronological_order_both_ways(
    harness: Harness, juliet: Client, romeo: Client, storage: Storage
) -> None:
    """XEP-0313 §4.2 with XEP-0059: five posts, max 2. Without `before` the first page is
    the oldest and `after` pages forward; `<before/>` is the newest page and `before`
    pages back. Each page is oldest first; `complete` marks the end of the direction."""
    await register(juliet)
    for k in range(5):
        await storage.put_item(stored_post(f"p{k}", k, f"post {k}"))

    async def page(rsm: str) -> tuple[list[str | None], Element]:
        harness.extra.clear()
        reply = await romeo.ok(
            "set",
            f"<query xmlns='{NS['mam']}' queryid='q' node='{JULIET_POSTS}'>"
            f"<set xmlns='{NS['rsm']}'><max>2</max>{rsm}</set></query>",
        )
        results = [m.find("mam:result", NS) for m in harness.extra if m.tag == "message"]
        return [r.get("id") for r in results if r is not None], reply

    def fin(reply: Element) -> tuple[str | None, str | None, str | None, str | None]:
        element = reply.find("mam:fin", NS)
        assert element is not None
        return (
            element.get("complete"),
            element.findtext("rsm:set/rsm:first", namespaces=NS),
            element.findtext("rsm:set/rsm:last", namespaces=NS),
            element.findtext("rsm:set/rsm:count", namespaces=NS),
        )

    forward = []
    ids, reply = await page("")
    forward.append((ids, fin(reply)))
    while fin(reply)[0] == "false":
        ids, reply = await page(f"<after>{fin(reply)[2]}</after>")
        forward.append((ids, fin(reply)))
    assert forward == [
        (["p0", "p1"], ("false", "p0", "p1", "5")),
        (["p2", "p3"], ("false", "p2", "p3", "5")),
        (["p4"], ("true", "p4", "p4", "5")),
    ]

    backward = []
    ids, reply = await page("<before/>")
    backward.append((ids, fin(reply)))
    while fin(reply)[0] == "false":
        ids, reply = await page(f"<before>{fin(reply)[1]}</before>")
        backward.append((ids, fin(reply)))
    assert backward == [
        (["p3", "p4"], ("false", "p3", "p4", "5")),
        (["p1", "p2"], ("false", "p1", "p2", "5")),
        (["p0"], ("true", "p0", "p0", "5")),
    ]
