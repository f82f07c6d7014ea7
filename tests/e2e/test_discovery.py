"""Discovery through a real XMPP server: what a client learns before it uses channels."""

from __future__ import annotations

from e2e.harness import (
    DOMAIN,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_RSM,
    REGISTER,
    SERVICE,
    Client,
    create,
    entry,
    form_values,
    item_ids,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
    topic,
)


async def test_the_domain_lists_the_channel_service_and_it_identifies_as_channels(
    juliet: Client,
) -> None:
    """ProtoXEP 2.2: disco#items on the domain, then disco#info shows pubsub/channels."""
    items = await juliet.ok("get", f"<query xmlns='{NS_DISCO_ITEMS}'/>", to=DOMAIN)
    assert SERVICE in [item.get("jid") for item in items.findall("items:query/items:item")]

    info = await juliet.ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>")
    identities = {
        (identity.get("category"), identity.get("type"))
        for identity in info.findall("info:query/info:identity")
    }
    assert ("pubsub", "channels") in identities
    assert ("pubsub", "inbox") in identities
    features = {feature.get("var") for feature in info.findall("info:query/info:feature")}
    assert {"jabber:iq:register", NS_DISCO_INFO, "jabber:iq:search"} <= features


async def test_node_meta_data_describes_the_registered_channel(juliet: Client) -> None:
    """ProtoXEP 4.1: disco#info on a node carries its pubsub#meta-data form."""
    node = posts(juliet.bare)
    info = await juliet.ok("get", f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>")
    forms = info.findall("info:query/data:x")
    assert len(forms) == 1
    values = form_values(forms[0])
    assert values["FORM_TYPE"] == ["http://jabber.org/protocol/pubsub#meta-data"]
    assert values["buddycloud#channel_type"] == ["personal"]
    assert values["pubsub#access_model"] == ["open"]
    assert values["pubsub#creator"] == [juliet.bare] or values.get("pubsub#owner") == [juliet.bare]


async def test_disco_items_of_the_service_lists_registered_channels(juliet: Client) -> None:
    reply = await juliet.ok("get", f"<query xmlns='{NS_DISCO_ITEMS}'/>")
    nodes = {item.get("node") for item in reply.findall("items:query/items:item")}
    assert posts(juliet.bare) in nodes


async def test_a_busy_open_channel_is_among_the_top_published(juliet: Client) -> None:
    """Reference row 6. The session's server holds other tests' posts too: Juliet posts
    more than anyone else does in one test, and asks for every ranked channel."""
    for n in range(30):
        await juliet.ok("set", publish(posts(juliet.bare), entry(f"busy {n}")))
    reply = await juliet.ok(
        "get",
        f"<query xmlns='{NS_DISCO_ITEMS}' node='/top-published-nodes'>"
        f"<set xmlns='{NS_RSM}'><max>1000</max></set></query>",
    )
    nodes = [item.get("node") for item in reply.findall("items:query/items:item")]
    assert posts(juliet.bare) in nodes


async def test_unknown_node_is_item_not_found(juliet: Client) -> None:
    reply = await juliet.iq(
        "get", f"<query xmlns='{NS_DISCO_INFO}' node='/user/nobody-here@capulet.lit/posts'/>"
    )
    assert reply.condition == "item-not-found", reply


async def test_registering_twice_is_harmless(juliet: Client) -> None:
    """Reference §3 row 8: already registered answers a plain result."""
    await juliet.ok("set", REGISTER)
    await juliet.ok("set", REGISTER)


async def test_a_channel_not_advertised_is_out_of_the_lists_but_readable(
    juliet: Client, benvolio: Client, unique: str
) -> None:
    """`buddycloud#advertise_node` false: not in disco#items nor in the firehose; its posts
    are read by name as the access model allows."""
    hidden = topic(f"hidden-{unique}")
    await juliet.ok("set", create(hidden, {"buddycloud#advertise_node": "false"}))
    reply = await juliet.ok("set", publish(hidden, entry(f"between us {unique}")))
    item_id = local_id(published_id(reply))

    listed = await benvolio.ok(
        "get",
        f"<query xmlns='{NS_DISCO_ITEMS}'><set xmlns='{NS_RSM}'><max>1000</max></set></query>",
    )
    assert hidden not in {item.get("node") for item in listed.findall("items:query/items:item")}
    firehose = await benvolio.ok("get", items_request("/firehose", max_items=50))
    assert hidden not in {b.get("node") for b in firehose.findall("pubsub:pubsub/pubsub:items")}
    assert item_id in item_ids(await benvolio.ok("get", items_request(hidden)))
    info = await benvolio.ok("get", f"<query xmlns='{NS_DISCO_INFO}' node='{hidden}'/>")
    assert form_values(info.findall("info:query/data:x")[0])["buddycloud#advertise_node"] == [
        "false"
    ]
