"""Routing: the IQ table, RFC 6120 errors for what nobody handles, presence, messages."""

from __future__ import annotations

import asyncio
import logging

import pytest
from xmpp.support import NS, SERVICE, Client, Harness, condition_of

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId
from buddycloud.xmpp.xml import parse_xml, serialize

PUBSUB = f"<pubsub xmlns='{NS['pubsub']}'>"


async def test_disco_info_names_the_channel_service(juliet: Client) -> None:
    """ProtoXEP example 4: identities pubsub/channels and pubsub/inbox, and the features."""
    reply = await juliet.ok("get", f"<query xmlns='{NS['disco']}'/>")
    identities = {
        (i.get("category"), i.get("type")) for i in reply.findall("disco:query/disco:identity", NS)
    }
    assert identities == {("pubsub", "channels"), ("pubsub", "inbox")}
    features = {f.get("var") for f in reply.findall("disco:query/disco:feature", NS)}
    assert {
        "jabber:iq:register",
        "http://jabber.org/protocol/disco#info",
        "jabber:iq:search",
        NS["pubsub"],
    } <= features


async def test_disco_items_lists_channels_with_rsm(juliet: Client, romeo: Client) -> None:
    await juliet.ok("set", f"<query xmlns='{NS['register']}'/>")
    await romeo.ok("set", f"<query xmlns='{NS['register']}'/>")
    reply = await juliet.ok(
        "get", f"<query xmlns='{NS['items']}'><set xmlns='{NS['rsm']}'><max>1</max></set></query>"
    )
    items = reply.findall("items:query/items:item", NS)
    assert len(items) == 1 and items[0].get("jid") == SERVICE
    assert reply.findtext("items:query/rsm:set/rsm:count", namespaces=NS) == "2"


async def test_an_unadvertised_channel_is_left_out_of_disco_items(
    juliet: Client, romeo: Client
) -> None:
    """`buddycloud#advertise_node` (reference table 2.3): in the configuration form, set by
    the owner, honoured by disco#items."""
    await juliet.ok("set", f"<query xmlns='{NS['register']}'/>")
    await romeo.ok("set", f"<query xmlns='{NS['register']}'/>")
    node = "/user/romeo@capulet.lit/posts"
    owner = f"<pubsub xmlns='{NS['owner']}'>"
    form = await romeo.ok("get", f"{owner}<configure node='{node}'/></pubsub>")
    advertise = [
        f.findtext("x:value", namespaces=NS)
        for f in form.iterfind("owner:pubsub/owner:configure/x:x/x:field", NS)
        if f.get("var") == "buddycloud#advertise_node"
    ]
    assert advertise == ["true"]
    await romeo.ok(
        "set",
        f"{owner}<configure node='{node}'><x xmlns='{NS['x']}' type='submit'>"
        "<field var='buddycloud#advertise_node'><value>0</value></field></x></configure></pubsub>",
    )
    reply = await juliet.ok("get", f"<query xmlns='{NS['items']}'/>")
    listed = {i.get("node") for i in reply.iterfind("items:query/items:item", NS)}
    assert node not in listed and "/user/juliet@capulet.lit/posts" in listed
    assert reply.findtext("items:query/rsm:set/rsm:count", namespaces=NS) == "1"
    # Still there for whoever knows the name.
    info = await juliet.ok("get", f"<query xmlns='{NS['disco']}' node='{node}'/>")
    assert info.find("disco:query/x:x", NS) is not None
    wrong = await romeo.error(
        "set",
        f"{owner}<configure node='{node}'><x xmlns='{NS['x']}' type='submit'>"
        "<field var='buddycloud#advertise_node'><value>perhaps</value></field></x>"
        "</configure></pubsub>",
    )
    assert wrong[:2] == ("not-acceptable", "modify")


async def test_top_published_and_followed_nodes(juliet: Client, romeo: Client) -> None:
    """Reference row 6: disco#items on the two pseudo-nodes."""
    await juliet.ok("set", f"<query xmlns='{NS['register']}'/>")
    await romeo.ok("set", f"<query xmlns='{NS['register']}'/>")
    for content in ("one", "two"):
        await romeo.ok(
            "set",
            f"{PUBSUB}<publish node='/user/romeo@capulet.lit/posts'><item>"
            f"<entry xmlns='{NS['atom']}'><content>{content}</content></entry>"
            "</item></publish></pubsub>",
        )
    await juliet.ok(
        "set",
        f"{PUBSUB}<publish node='/user/juliet@capulet.lit/posts'><item>"
        f"<entry xmlns='{NS['atom']}'><content>three</content></entry></item></publish></pubsub>",
    )
    await romeo.ok(
        "set",
        f"{PUBSUB}<subscribe node='/user/juliet@capulet.lit/posts' jid='romeo@capulet.lit'/>"
        "</pubsub>",
    )
    published = await juliet.ok(
        "get", f"<query xmlns='{NS['items']}' node='/top-published-nodes'/>"
    )
    query = published.find("items:query", NS)
    assert query is not None and query.get("node") == "/top-published-nodes"
    assert [(i.get("jid"), i.get("node")) for i in query.iterfind("items:item", NS)] == [
        (SERVICE, "/user/romeo@capulet.lit/posts"),
        (SERVICE, "/user/juliet@capulet.lit/posts"),
    ]
    followed = await juliet.ok(
        "get",
        f"<query xmlns='{NS['items']}' node='/top-followed-nodes'>"
        f"<set xmlns='{NS['rsm']}'><max>5</max></set></query>",
    )
    nodes = [i.get("node") for i in followed.iterfind("items:query/items:item", NS)]
    assert nodes == ["/user/juliet@capulet.lit/posts"]


async def test_registering_from_another_domain_is_not_allowed(harness: Harness) -> None:
    benvolio = harness.client("benvolio@montague.lit/home")
    condition = await benvolio.error("set", f"<query xmlns='{NS['register']}'/>")
    assert condition[:2] == ("not-allowed", "cancel")


async def test_unregistering_deletes_the_channel_and_tells_online_followers(
    harness: Harness, juliet: Client, romeo: Client
) -> None:
    await juliet.presence()  # online: her channel is made, and she is remembered as checked
    await romeo.ok("set", f"<query xmlns='{NS['register']}'/>")
    await romeo.ok(
        "set",
        f"{PUBSUB}<subscribe node='/user/juliet@capulet.lit/posts' jid='romeo@capulet.lit'/>"
        "</pubsub>",
    )
    await romeo.presence()
    reply = await juliet.ok("set", f"<query xmlns='{NS['register']}'><remove/></query>")
    assert len(reply) == 0  # an empty result
    deleted = {
        delete.get("node")
        for message in harness.extra
        if message.tag == "message" and message.get("to") == romeo.jid
        for delete in message.iterfind("event:event/event:delete", NS)
    }
    assert "/user/juliet@capulet.lit/posts" in deleted
    condition = await romeo.error(
        "get", f"{PUBSUB}<items node='/user/juliet@capulet.lit/posts'/></pubsub>"
    )
    assert condition[0] == "item-not-found"
    # Unregistering again is harmless; a user of another domain may not.
    await juliet.ok("set", f"<query xmlns='{NS['register']}'><remove/></query>")
    # Coming online again, like any local user without a channel, makes a new empty one.
    await juliet.presence()
    fresh = await romeo.ok(
        "get", f"{PUBSUB}<items node='/user/juliet@capulet.lit/posts'/></pubsub>"
    )
    assert fresh.findall("pubsub:pubsub/pubsub:items/pubsub:item", NS) == []
    benvolio = harness.client("benvolio@montague.lit/home")
    condition = await benvolio.error("set", f"<query xmlns='{NS['register']}'><remove/></query>")
    assert condition[:2] == ("not-allowed", "cancel")


@pytest.mark.parametrize(
    ("type_", "payload", "expected"),
    [
        # RFC 6120 §8.4: a namespace nobody here speaks.
        ("get", "<query xmlns='urn:example:unknown'/>", ("service-unavailable", "cancel", None)),
        # A known namespace, an operation this server does not implement (XEP-0060 purge).
        (
            "set",
            f"<pubsub xmlns='{NS['owner']}'><purge node='/user/juliet@capulet.lit/posts'/>"
            "</pubsub>",
            ("feature-not-implemented", "cancel", "unsupported"),
        ),
        # Publishing with an IQ get.
        (
            "get",
            f"{PUBSUB}<publish node='/user/juliet@capulet.lit/posts'/></pubsub>",
            ("bad-request", "modify", None),
        ),
        # An empty pubsub element.
        ("get", f"{PUBSUB}</pubsub>", ("bad-request", "modify", None)),
        # No node.
        ("get", f"{PUBSUB}<items/></pubsub>", ("bad-request", "modify", "nodeid-required")),
        # A node id that is not /user/<jid>/<name>.
        (
            "get",
            f"{PUBSUB}<items node='princes/posts'/></pubsub>",
            ("bad-request", "modify", "invalid-node-format"),
        ),
        (
            "set",
            f"{PUBSUB}<subscribe node='/user/juliet@capulet.lit/posts' jid='@@'/></pubsub>",
            ("bad-request", "modify", "invalid-jid"),
        ),
        (
            "get",
            f"{PUBSUB}<items node='/user/juliet@capulet.lit/posts' max_items='lots'/></pubsub>",
            ("bad-request", "modify", None),
        ),
        (
            "set",
            f"{PUBSUB}<publish node='/user/juliet@capulet.lit/posts'/></pubsub>",
            ("bad-request", "modify", "item-required"),
        ),
    ],
)
async def test_requests_nobody_can_serve_get_rfc_6120_errors(
    juliet: Client, type_: str, payload: str, expected: tuple[str, str, str | None]
) -> None:
    assert await juliet.error(type_, payload) == expected


OWNER = f"<pubsub xmlns='{NS['owner']}'>"
BC = f"xmlns='{NS['bc']}'"
ENTRY = f"<entry xmlns='{NS['atom']}'><content>hello</content></entry>"
FORM = f"<x xmlns='{NS['x']}' type='submit'/>"

# Every node operation but create, as (IQ type, payload with {node} where the node goes).
NODE_OPERATIONS = {
    "publish": ("set", f"{PUBSUB}<publish{{node}}><item>{ENTRY}</item></publish></pubsub>"),
    "items": ("get", f"{PUBSUB}<items{{node}}/></pubsub>"),
    "item by id": ("get", f"{PUBSUB}<items{{node}}><item id='a'/></items></pubsub>"),
    "retract": ("set", f"{PUBSUB}<retract{{node}}><item id='a'/></retract></pubsub>"),
    "subscribe": ("set", f"{PUBSUB}<subscribe{{node}} jid='juliet@capulet.lit'/></pubsub>"),
    "unsubscribe": ("set", f"{PUBSUB}<unsubscribe{{node}} jid='juliet@capulet.lit'/></pubsub>"),
    "configure get": ("get", f"{OWNER}<configure{{node}}/></pubsub>"),
    "configure set": ("set", f"{OWNER}<configure{{node}}>{FORM}</configure></pubsub>"),
    "delete": ("set", f"{OWNER}<delete{{node}}/></pubsub>"),
    "node subscriptions (owner)": ("get", f"{OWNER}<subscriptions{{node}}/></pubsub>"),
    "node affiliations (owner)": ("get", f"{OWNER}<affiliations{{node}}/></pubsub>"),
    "manage subscriptions": (
        "set",
        f"{OWNER}<subscriptions{{node}}><subscription jid='romeo@capulet.lit' "
        "subscription='none'/></subscriptions></pubsub>",
    ),
    "manage affiliations": (
        "set",
        f"{OWNER}<affiliations{{node}}><affiliation jid='romeo@capulet.lit' "
        "affiliation='member'/></affiliations></pubsub>",
    ),
    "threads": ("get", f"{PUBSUB}<threads{{node}}/></pubsub>"),
    "replies": ("get", f"{PUBSUB}<replies {BC}{{node}} item_id='a'/></pubsub>"),
    "thread": ("get", f"{PUBSUB}<thread {BC}{{node}} item_id='a'/></pubsub>"),
}


@pytest.mark.parametrize("node", ["", " node=''"], ids=["no node", "empty node"])
@pytest.mark.parametrize("operation", list(NODE_OPERATIONS))
async def test_every_node_operation_without_a_node_is_nodeid_required(
    juliet: Client, operation: str, node: str
) -> None:
    """XEP-0060 §7.2.3.3, §8.2.3.3 and their siblings: bad-request + nodeid-required."""
    await juliet.ok("set", f"<query xmlns='{NS['register']}'/>")
    type_, payload = NODE_OPERATIONS[operation]
    reply = await juliet.iq(type_, payload.format(node=node))
    assert condition_of(reply) == ("bad-request", "modify", "nodeid-required")
    assert reply.findtext("error/stanzas:text", namespaces=NS) == "the request must name a node"


async def test_a_create_without_a_node_is_an_instant_node_which_is_not_supported(
    juliet: Client,
) -> None:
    """XEP-0060 §8.1.2: not-acceptable + nodeid-required when instant nodes are not
    supported (Buddycloud node ids are chosen by the channel's owner)."""
    for create in ("<create/>", "<create node=''/>"):
        reply = await juliet.iq("set", f"{PUBSUB}{create}</pubsub>")
        assert condition_of(reply) == ("not-acceptable", "modify", "nodeid-required")


@pytest.mark.parametrize("name", ["subscriptions", "affiliations"])
async def test_the_users_own_lists_need_no_node(juliet: Client, romeo: Client, name: str) -> None:
    """Reference rows 23 and 26: without a node, `subscriptions` and `affiliations` in the
    pubsub namespace list the requester's own."""
    await juliet.ok("set", f"<query xmlns='{NS['register']}'/>")
    for payload in (f"{PUBSUB}<{name}/></pubsub>", f"{PUBSUB}<{name} node=''/></pubsub>"):
        reply = await juliet.ok("get", payload)
        rows = reply.findall(f"pubsub:pubsub/pubsub:{name}/pubsub:{name[:-1]}", NS)
        assert {row.get("node") for row in rows} >= {"/user/juliet@capulet.lit/posts"}


async def test_an_iq_with_two_payloads_is_a_bad_request(harness: Harness) -> None:
    sent = await harness.feed(
        f"<iq xmlns='jabber:component:accept' type='get' id='x' from='juliet@capulet.lit/b' "
        f"to='{SERVICE}'><query xmlns='{NS['disco']}'/><query xmlns='{NS['disco']}'/></iq>"
    )
    assert len(sent) == 1 and condition_of(sent[0])[0] == "bad-request"


async def test_results_and_errors_addressed_to_the_component_are_never_answered(
    harness: Harness,
) -> None:
    for type_ in ("result", "error"):
        sent = await harness.feed(
            f"<iq xmlns='jabber:component:accept' type='{type_}' id='x' "
            f"from='juliet@capulet.lit/b' to='{SERVICE}'>"
            f"<error type='cancel'><forbidden xmlns='{NS['stanzas']}'/></error></iq>"
        )
        assert sent == []


async def test_stanzas_from_invalid_senders_are_dropped(harness: Harness) -> None:
    sent = await harness.feed(
        f"<iq xmlns='jabber:component:accept' type='get' id='x' from='@bad' to='{SERVICE}'>"
        f"<query xmlns='{NS['disco']}'/></iq>"
    )
    assert sent == []


async def test_an_engine_failure_is_an_internal_error_without_detail(
    harness: Harness,
    juliet: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("connection to 10.0.0.7 refused")

    monkeypatch.setattr(harness.engine, "list_channels", broken)
    with caplog.at_level(logging.ERROR):
        reply = await juliet.iq("get", f"<query xmlns='{NS['items']}'/>")
    assert condition_of(reply) == ("internal-server-error", "cancel", None)
    assert reply.find("error/stanzas:text", NS) is None
    assert "10.0.0.7" not in "".join(reply.itertext())


async def test_available_presence_registers_a_local_user_and_tracks_resources(
    harness: Harness, juliet: Client
) -> None:
    """channel-api-2010: a local user coming online gets a channel; reference section 4."""
    await juliet.presence()
    assert harness.online.is_online(Jid.parse("juliet@capulet.lit/balcony"))
    view = await harness.engine.get_node_view(
        Jid.parse("juliet@capulet.lit"), NodeId.parse("/user/juliet@capulet.lit/posts")
    )
    assert view.channel.config.creator == Jid.parse("juliet@capulet.lit")
    await juliet.presence("unavailable")
    assert not harness.online.is_online(Jid.parse("juliet@capulet.lit/balcony"))


async def test_a_publish_sent_right_after_presence_finds_the_channel_presence_creates(
    harness: Harness,
) -> None:
    """The component handles each stanza in its own task, as they arrive: a client that
    sends presence and publishes at once must not race its own channel's creation."""
    sent = [
        "<presence xmlns='jabber:component:accept' from='juliet@capulet.lit/balcony' "
        f"to='{SERVICE}'/>",
        f"<iq xmlns='jabber:component:accept' type='set' id='p1' "
        f"from='juliet@capulet.lit/balcony' to='{SERVICE}'>{PUBSUB}"
        "<publish node='/user/juliet@capulet.lit/posts'><item>"
        "<entry xmlns='http://www.w3.org/2005/Atom'><content>first</content></entry>"
        "</item></publish></pubsub></iq>",
    ]
    tasks = [asyncio.create_task(harness.router.handle(parse_xml(text))) for text in sent]
    await asyncio.gather(*tasks)
    replies = [s for s in harness.stream.take() if s.tag == "iq"]
    assert [r.get("type") for r in replies] == ["result"], [serialize(r) for r in replies]


async def test_presence_from_a_remote_user_registers_nothing(harness: Harness) -> None:
    benvolio = harness.client("benvolio@montague.lit/home")
    await benvolio.presence()
    assert harness.online.is_online(Jid.parse("benvolio@montague.lit/home"))
    reply = await benvolio.iq(
        "get", f"<query xmlns='{NS['disco']}' node='/user/benvolio@montague.lit/posts'/>"
    )
    assert condition_of(reply)[0] == "item-not-found"


async def test_probes_and_subscription_requests_are_answered(juliet: Client) -> None:
    probe = await juliet.presence("probe")
    assert [(p.tag, p.get("type"), p.get("from")) for p in probe] == [("presence", None, SERVICE)]
    subscribe = await juliet.presence("subscribe")
    assert [p.get("type") for p in subscribe] == ["subscribed", None]
    assert all(p.get("to") == "juliet@capulet.lit/balcony" for p in subscribe)
    unsubscribe = await juliet.presence("unsubscribe")
    assert [p.get("type") for p in unsubscribe] == ["unsubscribed"]


async def test_a_bounced_message_marks_the_resource_offline(
    harness: Harness, romeo: Client
) -> None:
    await romeo.presence()
    await harness.feed(
        f"<message xmlns='jabber:component:accept' type='error' from='romeo@capulet.lit/orchard' "
        f"to='{SERVICE}'><error type='cancel'><service-unavailable xmlns='{NS['stanzas']}'/>"
        "</error></message>"
    )
    assert not harness.online.is_online(Jid.parse("romeo@capulet.lit/orchard"))


async def test_a_bad_authorization_answer_gets_an_error_message(juliet: Client) -> None:
    answer = (
        f"<x xmlns='{NS['x']}' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'>"
        "<value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field>"
        "<field var='pubsub#node'><value>/user/juliet@capulet.lit/posts</value></field>"
        "<field var='pubsub#subscriber_jid'><value>romeo@capulet.lit</value></field>"
        "<field var='pubsub#allow'><value>perhaps</value></field></x>"
    )
    sent = await juliet.message(answer)
    assert [(m.tag, m.get("type")) for m in sent] == [("message", "error")]
    assert condition_of(sent[0])[0] == "not-acceptable"


async def test_plain_chat_messages_are_ignored(juliet: Client) -> None:
    assert await juliet.message("<body>hello?</body>") == []


async def test_version_and_ping(juliet: Client) -> None:
    reply = await juliet.ok("get", "<query xmlns='jabber:iq:version'/>")
    assert reply.findtext("{jabber:iq:version}query/{jabber:iq:version}name") == "buddycloud-server"
    await juliet.ok("get", "<ping xmlns='urn:xmpp:ping'/>")
