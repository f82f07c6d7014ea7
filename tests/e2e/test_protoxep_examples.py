"""ProtoXEP examples 1-20 through a real XMPP server, one domain.

Each test sends the example request (adapted to this suite's JIDs and nodes) and checks the
reply or notification has the shape the example shows. Example 5 (DNS TXT record) is about
federation and has no request to send.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from e2e.conftest import Connect
from e2e.harness import (
    DOMAIN,
    NS,
    NS_ACTIVITY,
    NS_ATOM,
    NS_BC,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PUBSUB,
    NS_REVIEW,
    NS_THREAD,
    REGISTER,
    SERVICE,
    TOPICS_DOMAIN,
    Client,
    configure_set,
    create,
    event_items,
    form_values,
    has_item,
    has_retract,
    item_ids,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
    subscribe,
)

NS_ATOM_BC = "http://buddycloud.com/atom-elements-0"
NS_NODE_CONFIG = f"{NS_PUBSUB}#node_config"
# Example 13: `2014-01-01T00:00:00.000Z`.
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def global_id(node: str, item_id: str) -> str:
    """ProtoXEP 6.3.2: the global form `tag:<service>,<node>,<id>`."""
    return f"tag:{SERVICE},{node},{item_id}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def text_of(parent: ET.Element, path: str) -> str:
    element = parent.find(path, NS)
    assert element is not None, f"no {path} in {ET.tostring(parent, encoding='unicode')}"
    return (element.text or "").strip()


def fetched_entry(reply_items: list[ET.Element]) -> ET.Element:
    (item,) = reply_items
    entry = item.find("atom:entry", NS)
    assert entry is not None, ET.tostring(item, encoding="unicode")
    return entry


async def fetch_entry(client: Client, node: str, item_id: str) -> ET.Element:
    reply = await client.ok("get", items_request(node, item_id=item_id))
    return fetched_entry(reply.findall("pubsub:pubsub/pubsub:items/pubsub:item"))


async def post(client: Client, node: str, payload: str) -> str:
    return local_id(published_id(await client.ok("set", publish(node, payload))))


def full_entry(
    content: str,
    *,
    author: str = "forger@montague.lit",
    in_reply_to: str | None = None,
    target: str | None = None,
    rating: str | None = None,
    verb: str = "post",
) -> str:
    """An entry as examples 14-16 write it, client-set id, dates and author included."""
    reply = f'<thr:in-reply-to ref="{in_reply_to}"/>' if in_reply_to else ""
    target_el = f"<activity:target><id>{target}</id></activity:target>" if target else ""
    rating_el = f"<review:rating>{rating}</review:rating>" if rating else ""
    return (
        f'<entry xmlns="{NS_ATOM}" xmlns:thr="{NS_THREAD}" xmlns:activity="{NS_ACTIVITY}" '
        f'xmlns:review="{NS_REVIEW}">'
        "<id>96da02ee1baef61e767742844207bec4</id><title>Post title</title>"
        "<published>2014-01-01T00:00:00.000Z</published>"
        "<updated>2014-01-01T00:00:00.000Z</updated>"
        f'<author><name>{author}</name><jid xmlns="{NS_ATOM_BC}">{author}</jid></author>'
        f'<content type="text">{content}</content>'
        f"<activity:verb>{verb}</activity:verb>"
        "<activity:object><activity:object-type>comment</activity:object-type></activity:object>"
        f"{reply}{target_el}{rating_el}</entry>"
    )


# --- 2.2 discovery: examples 1-4 --------------------------------------------------------


async def test_examples_1_to_4_discovery_finds_the_channel_service(juliet: Client) -> None:
    # Example 1 -> 2: the domain lists its components, each with a jid.
    items = await juliet.ok("get", f"<query xmlns='{NS_DISCO_ITEMS}'/>", to=DOMAIN)
    listed = items.findall("items:query/items:item")
    assert all(item.get("jid") for item in listed), items
    assert SERVICE in {item.get("jid") for item in listed}, items

    # Example 3 -> 4: the component answers with both identities and the three features.
    info = await juliet.ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=SERVICE)
    assert info.element.get("from") == SERVICE
    query = info.find("info:query")
    assert query is not None and query.get("node") is None, info
    identities = [
        (identity.get("category"), identity.get("type"))
        for identity in query.findall("info:identity", NS)
    ]
    assert ("pubsub", "channels") in identities
    assert ("pubsub", "inbox") in identities
    # "A domain MUST only host one component with an identity of category 'pubsub' and
    # type 'channels'": this one declares it once.
    assert identities.count(("pubsub", "channels")) == 1
    features = {feature.get("var") for feature in query.findall("info:feature", NS)}
    assert {"jabber:iq:register", NS_DISCO_INFO, "jabber:iq:search"} <= features


# --- 3 register: example 6 --------------------------------------------------------------


async def test_example_6_register_creates_the_personal_channel(connect: Connect) -> None:
    """Without presence the service has not seen Laurence; the register set creates his
    channel with its well-known nodes, and repeating it is harmless."""
    laurence = await connect("laurence", presence=False)
    node = posts(laurence.bare)
    reply = await laurence.iq("set", REGISTER)
    assert reply.ok, reply
    assert list(reply.element) == [], reply  # an empty result, as for any XEP-0077 set

    info = await laurence.ok("get", f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>")
    form = info.find("info:query/data:x")
    assert form is not None, info
    values = form_values(form)
    assert values["buddycloud#channel_type"] == ["personal"]
    assert values["pubsub#creator"] == [laurence.bare]
    # "creating additional new channel nodes as they become available" (ProtoXEP 3).
    status = await laurence.ok(
        "get", f"<query xmlns='{NS_DISCO_INFO}' node='/user/{laurence.bare}/status'/>"
    )
    assert status.find("info:query/info:identity") is not None, status
    await laurence.ok("set", REGISTER)


# --- 6.1.1 recent items: examples 7-8 ---------------------------------------------------


async def test_examples_7_and_8_recent_items_grouped_per_node(
    juliet: Client, romeo: Client, benvolio: Client, unique: str
) -> None:
    since = iso(datetime.now(UTC) - timedelta(seconds=1))
    romeo_node, benvolio_node = posts(romeo.bare), posts(benvolio.bare)
    await juliet.ok("set", subscribe(romeo_node, juliet.bare))
    await juliet.ok("set", subscribe(benvolio_node, juliet.bare))
    romeo_first = await post(romeo, romeo_node, full_entry(f"first {unique}"))
    romeo_second = await post(romeo, romeo_node, full_entry(f"second {unique}"))
    from_benvolio = await post(benvolio, benvolio_node, full_entry(f"benvolio {unique}"))
    comment = await post(
        juliet,
        romeo_node,
        full_entry(f"comment {unique}", in_reply_to=global_id(romeo_node, romeo_second)),
    )

    reply = await juliet.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><recent-items xmlns='{NS_BC}' since='{since}' "
        "max='50' parent-only='true'/></pubsub>",
    )
    blocks = reply.findall("pubsub:pubsub/pubsub:items")
    assert blocks, reply
    for block in blocks:
        node = block.get("node")
        assert node, reply
        for item in block.findall("pubsub:item", NS):
            # Every item of a block belongs to that block's node, and carries its entry.
            entry = item.find("atom:entry", NS)
            assert entry is not None, reply
            assert text_of(entry, "atom:id") == global_id(node, local_id(item.get("id", "")))
    assert set(item_ids(reply, romeo_node)) >= {romeo_first, romeo_second}
    assert comment not in item_ids(reply, romeo_node)  # parent-only
    assert from_benvolio in item_ids(reply, benvolio_node)

    # Without parent-only the comment is there too.
    with_comments = await juliet.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><recent-items xmlns='{NS_BC}' since='{since}' "
        "max='50'/></pubsub>",
    )
    assert comment in item_ids(with_comments, romeo_node), with_comments
    # `max` bounds each node separately. (A reply is activity on its thread, so Romeo's
    # newest may be the comment or the parent it moved up: ProtoXEP 6.3.2.)
    one_each = await juliet.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><recent-items xmlns='{NS_BC}' since='{since}' "
        "max='1'/></pubsub>",
    )
    assert len(item_ids(one_each, romeo_node)) == 1, one_each
    assert set(item_ids(one_each, romeo_node)) <= {comment, romeo_second}, one_each
    assert item_ids(one_each, benvolio_node) == [from_benvolio], one_each


# --- 6.2 deleting items: examples 9-11 --------------------------------------------------


async def test_examples_9_to_11_retract_notifies_with_a_tombstone(
    juliet: Client, benvolio: Client, unique: str
) -> None:
    node = posts(juliet.bare)
    await benvolio.ok("set", subscribe(node, benvolio.bare))
    parent = await post(juliet, node, full_entry(f"parent {unique}"))
    comment = await post(
        juliet, node, full_entry(f"to be deleted {unique}", in_reply_to=global_id(node, parent))
    )
    await benvolio.wait_for(has_item(node, comment))

    # Example 9 -> 10: an empty result.
    reply = await juliet.iq(
        "set",
        f"<pubsub xmlns='{NS_PUBSUB}'><retract node='{node}' notify='1'>"
        f"<item id='{comment}'/></retract></pubsub>",
    )
    assert reply.ok and list(reply.element) == [], reply

    # Example 11: the retraction and the tombstone, in one <items> of one message.
    message = await benvolio.wait_for(has_retract(node, comment))
    assert message.get("from") == SERVICE
    (block,) = message.findall("event:event/event:items", NS)
    assert block.get("node") == node
    assert [r.get("id") for r in block.findall("event:retract", NS)] == [comment]
    (item,) = event_items(message, node)
    assert item.get("id") == comment
    tombstone = item.find("ts:deleted-entry", NS)
    assert tombstone is not None, ET.tostring(message, encoding="unicode")
    link = f"xmpp:{SERVICE}?pubsub;action=retrieve;node={node};item={comment}"
    assert tombstone.get("ref") == link
    assert DATE.match(tombstone.get("when", "")), tombstone.get("when")
    assert text_of(tombstone, "ts:updated") == tombstone.get("when")
    assert text_of(tombstone, "atom:id") == global_id(node, comment)
    self_links = [
        (link_el.get("rel"), link_el.get("href")) for link_el in tombstone.findall("atom:link", NS)
    ]
    assert self_links == [("self", link)]
    assert DATE.match(text_of(tombstone, "atom:published"))
    assert text_of(tombstone, "activity:object/activity:object-type") == "comment"
    assert text_of(tombstone, "activity:verb") == "post"
    assert f"to be deleted {unique}" not in ET.tostring(message, encoding="unicode")


async def test_example_9_with_notify_false_retracts_silently(
    juliet: Client, benvolio: Client, unique: str
) -> None:
    node = posts(juliet.bare)
    await benvolio.ok("set", subscribe(node, benvolio.bare))
    quiet = await post(juliet, node, full_entry(f"quiet {unique}"))
    await benvolio.wait_for(has_item(node, quiet))
    await juliet.ok(
        "set",
        f"<pubsub xmlns='{NS_PUBSUB}'><retract node='{node}' notify='false'>"
        f"<item id='{quiet}'/></retract></pubsub>",
    )
    await benvolio.sync()
    assert benvolio.received(has_retract(node, quiet)) == []
    # Retracted all the same: what is left has no content.
    after = await benvolio.iq("get", items_request(node, item_id=quiet))
    assert f"quiet {unique}" not in after.text


# --- 6.3.1 publishing: examples 12-13 ---------------------------------------------------


def assert_completed_entry(entry: ET.Element, *, node: str, item_id: str, author: str) -> None:
    """Example 13: what the server adds to a minimal entry."""
    assert text_of(entry, "atom:id") == global_id(node, item_id)
    assert text_of(entry, "atom:title")
    published = text_of(entry, "atom:published")
    assert DATE.match(published), published
    assert DATE.match(text_of(entry, "atom:updated"))
    assert text_of(entry, "atom:author/atom:name") == author
    jid = entry.find(f"atom:author/{{{NS_ATOM_BC}}}jid", NS)
    assert jid is not None and jid.text == author, ET.tostring(entry, encoding="unicode")


async def test_examples_12_and_13_a_minimal_entry_is_completed_by_the_server(
    juliet: Client, romeo: Client, unique: str
) -> None:
    """Juliet publishes to Romeo's channel as in example 12 (followers may post, table 6)."""
    node = posts(romeo.bare)
    await juliet.ok("set", subscribe(node, juliet.bare))
    text = f"O Romeo, Romeo! wherefore art thou Romeo? {unique}"
    reply = await juliet.ok(
        "set",
        f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'><item>"
        f'<entry xmlns="{NS_ATOM}"><content type="text">{text}</content></entry>'
        "</item></publish></pubsub>",
    )
    published = reply.find("pubsub:pubsub/pubsub:publish")
    assert published is not None and published.get("node") == node, reply
    item_id = local_id(published_id(reply))

    for entry in (
        fetched_entry(event_items(await romeo.wait_for(has_item(node, item_id)), node)),
        await fetch_entry(romeo, node, item_id),
    ):
        assert_completed_entry(entry, node=node, item_id=item_id, author=juliet.bare)
        content = entry.find("atom:content", NS)
        assert content is not None and content.get("type") == "text"
        assert content.text == text
        assert text_of(entry, "activity:verb") == "post"
        assert text_of(entry, "activity:object/activity:object-type") == "post"


async def test_example_13_server_set_elements_replace_the_clients(
    juliet: Client, unique: str
) -> None:
    """A client's id, dates and author are overwritten: nobody posts as someone else."""
    node = posts(juliet.bare)
    item_id = await post(juliet, node, full_entry(f"forged {unique}", author="romeo@capulet.lit"))
    entry = await fetch_entry(juliet, node, item_id)
    assert_completed_entry(entry, node=node, item_id=item_id, author=juliet.bare)
    assert "2014-01-01T00:00:00.000Z" not in ET.tostring(entry, encoding="unicode")


# --- 6.3.2-6.3.4 threading, referencing, rating: examples 14-16 -------------------------


async def test_example_14_a_reply_joins_the_thread_of_its_parent(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = posts(romeo.bare)
    parent = await post(romeo, node, full_entry(f"parent {unique}"))
    reply_id = await post(
        juliet,
        node,
        full_entry(
            f"Shall I hear more, or shall I speak at this? {unique}",
            in_reply_to=global_id(node, parent),
        ),
    )
    entry = await fetch_entry(romeo, node, reply_id)
    assert_completed_entry(entry, node=node, item_id=reply_id, author=juliet.bare)
    in_reply_to = entry.find("thr:in-reply-to", NS)
    assert in_reply_to is not None and in_reply_to.get("ref") == global_id(node, parent)
    assert text_of(entry, "activity:object/activity:object-type") == "comment"
    assert text_of(entry, "activity:verb") == "post"

    thread = await romeo.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><thread xmlns='{NS_BC}' node='{node}' "
        f"item_id='{parent}'/></pubsub>",
    )
    assert item_ids(thread) == [parent, reply_id], thread


async def test_example_15_a_comment_references_another_in_its_thread(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = posts(romeo.bare)
    parent = await post(romeo, node, full_entry(f"parent {unique}"))
    first = await post(
        romeo, node, full_entry(f"first {unique}", in_reply_to=global_id(node, parent))
    )
    referencing = await post(
        juliet,
        node,
        full_entry(
            f"about the first comment {unique}",
            in_reply_to=global_id(node, parent),
            target=global_id(node, first),
        ),
    )
    entry = await fetch_entry(romeo, node, referencing)
    assert text_of(entry, "activity:target/atom:id") == global_id(node, first)
    in_reply_to = entry.find("thr:in-reply-to", NS)
    assert in_reply_to is not None and in_reply_to.get("ref") == global_id(node, parent)

    # A reference must stay inside its thread (6.3.3).
    other = await post(romeo, node, full_entry(f"other thread {unique}"))
    outside = await juliet.iq(
        "set",
        publish(
            node,
            full_entry(
                f"wrong thread {unique}",
                in_reply_to=global_id(node, parent),
                target=global_id(node, other),
            ),
        ),
    )
    assert outside.condition == "bad-request", outside


async def test_example_16_a_rating_is_rewritten_as_rating_5_0(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = posts(romeo.bare)
    target = await post(romeo, node, full_entry(f"rate me {unique}"))
    rating = await post(
        juliet,
        node,
        full_entry(
            f"Any post content is discarded {unique}",
            in_reply_to=global_id(node, target),
            target=global_id(node, target),
            rating="5.0",
            verb="post",
        ),
    )
    entry = await fetch_entry(romeo, node, rating)
    assert text_of(entry, "atom:content") == "rating:5.0"
    assert text_of(entry, "activity:verb") == "rated"
    assert text_of(entry, "review:rating") == "5.0"
    assert text_of(entry, "activity:target/atom:id") == global_id(node, target)
    assert text_of(entry, "activity:object/activity:object-type") == "comment"
    assert f"discarded {unique}" not in ET.tostring(entry, encoding="unicode")


# --- 7.1 subscriptions with configuration: examples 17-20 -------------------------------


def configurations(reply_element: ET.Element) -> dict[str, tuple[ET.Element, dict[str, list[str]]]]:
    """node -> (subscription-with-configuration row, its configuration form values)."""
    found = {}
    rows = reply_element.findall(
        "pubsub:pubsub/bc:subscriptions-with-configuration/bc:subscription-with-configuration",
        NS,
    )
    for row in rows:
        node = row.get("node", "")
        configure = row.find("bc:configure", NS)
        assert configure is not None and configure.get("node") == node
        form = configure.find("data:x", NS)
        assert form is not None and form.get("type") == "result"
        found[node] = (row, form_values(form))
    return found


def field(values: dict[str, list[str]], name: str) -> list[str] | None:
    """A field by its bare name (example 18: `title`) or its XEP-0060 var (`pubsub#title`)."""
    return values.get(name, values.get(f"pubsub#{name}"))


async def test_examples_17_and_18_subscriptions_with_their_configuration(
    juliet: Client, romeo: Client, unique: str
) -> None:
    topic = posts(f"romeo-{unique}@{TOPICS_DOMAIN}")
    await romeo.ok("set", create(topic, {"pubsub#title": f"Romeo {unique}"}))
    await romeo.ok("set", configure_set(topic, {"pubsub#description": "Romeo's node description"}))
    await juliet.ok("set", subscribe(topic, juliet.bare))

    reply = await juliet.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions-with-configuration xmlns='{NS_BC}'/></pubsub>",
    )
    found = configurations(reply.element)
    assert {topic, posts(juliet.bare)} <= set(found), reply
    row, values = found[topic]
    assert row.get("subscription") == "subscribed" and row.get("jid") == juliet.bare
    assert values["FORM_TYPE"] == [NS_NODE_CONFIG]
    assert field(values, "title") == [f"Romeo {unique}"]
    assert field(values, "description") == ["Romeo's node description"]


async def test_examples_19_and_20_subscription_and_configuration_filters(
    juliet: Client, romeo: Client, unique: str
) -> None:
    title = f"Romeo {unique}"
    topic = posts(f"filtered-{unique}@{TOPICS_DOMAIN}")
    other = posts(f"unfiltered-{unique}@{TOPICS_DOMAIN}")
    await romeo.ok("set", create(topic, {"pubsub#title": title}))
    await romeo.ok(
        "set",
        configure_set(topic, {"pubsub#description": "A description of Romeo's channel-node."}),
    )
    await romeo.ok("set", create(other, {"pubsub#title": f"Not Romeo {unique}"}))
    await juliet.ok("set", subscribe(topic, juliet.bare))
    await juliet.ok("set", subscribe(other, juliet.bare))

    reply = await juliet.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions-with-configuration xmlns='{NS_BC}'>"
        f"<subscription-filter><allow field='title' value='{title}'/></subscription-filter>"
        "<configuration-filter><allow field='description'/></configuration-filter>"
        "</subscriptions-with-configuration></pubsub>",
    )
    found = configurations(reply.element)
    assert set(found) == {topic}, reply
    row, values = found[topic]
    assert row.get("subscription") == "subscribed" and row.get("jid") == juliet.bare
    assert values.pop("FORM_TYPE") == [NS_NODE_CONFIG]
    assert [field(values, "description")] == [["A description of Romeo's channel-node."]]
    assert len(values) == 1, values  # only the allowed field

    # The subscription filter alone keeps every configuration field.
    only_subscriptions = await juliet.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions-with-configuration xmlns='{NS_BC}'>"
        f"<subscription-filter><allow field='title' value='{title}'/></subscription-filter>"
        "</subscriptions-with-configuration></pubsub>",
    )
    (values_all,) = [v for _, v in configurations(only_subscriptions.element).values()]
    assert field(values_all, "title") == [title]
    assert field(values_all, "access_model") == ["open"]

    # The configuration filter alone keeps every subscription.
    only_fields = await juliet.ok(
        "get",
        f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions-with-configuration xmlns='{NS_BC}'>"
        "<configuration-filter><allow field='title'/></configuration-filter>"
        "</subscriptions-with-configuration></pubsub>",
    )
    everything = configurations(only_fields.element)
    assert {topic, other} <= set(everything)
    assert all(
        set(v) == {"FORM_TYPE", "pubsub#title"} or set(v) == {"FORM_TYPE", "title"}
        for _, v in everything.values()
    )
