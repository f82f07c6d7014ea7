"""RemoteServers beyond items: metadata and configuration, followers and roles, approvals,
replies and threads. Requests are read back with the XMPP edge's own parsers (what the
channel's server will make of them), answers written with its own renderers (what the
channel's server sends), so both sides of the wire are this project's one copy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

import pytest
from federation.test_client import (
    CAPULET_SERVER,
    NODE,
    ROMEO,
    FakeServer,
    error,
    remote,
    result,
)

from buddycloud.domain.errors import (
    Forbidden,
    InvalidConfiguration,
    ItemNotFound,
    NotSubscribed,
    OwnAffiliation,
    OwnerRequired,
    OwnSubscription,
    RemoteError,
    RemoteTimeout,
    Unsupported,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Channel,
    ChannelConfig,
    ChannelType,
    Item,
    Membership,
    Node,
    NodeId,
    Page,
    PageRequest,
    RawPayload,
    Role,
    SubscriptionState,
    Thread,
)
from buddycloud.services.config import ConfigUpdate, NodeView
from buddycloud.xmpp.multicast import QueryFailed, QueryTimeout
from buddycloud.xmpp.namespaces import NS_BUDDYCLOUD, NS_PUBSUB_OWNER, qname
from buddycloud.xmpp.router import route_key
from buddycloud.xmpp.stanzas import (
    parse_actor,
    parse_affiliations,
    parse_affiliations_set,
    parse_configure_get,
    parse_configure_set,
    parse_delete,
    parse_disco_info,
    parse_replies,
    parse_subscriptions,
    parse_subscriptions_set,
    parse_thread,
    parse_threads,
    render_configure,
    render_disco_info,
    render_items,
    render_node_affiliations,
    render_node_subscriptions,
    render_threads,
)
from buddycloud.xmpp.xml import parse_xml, serialize

JULIET = Jid.parse("juliet@capulet.lit")
NURSE = Jid.parse("nurse@capulet.lit")
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROOM = 60_000
SERVICE = CAPULET_SERVER


def answer(element: Element) -> str:
    return result(serialize(element))


def view(title: str = "The balcony", followers: int = 3) -> NodeView:
    config = ChannelConfig(
        title=title,
        description="two lines\nof description",
        access_model=AccessModel.AUTHORIZE,
        default_role=Role.MEMBER,
        creator=JULIET,
        channel_type=ChannelType.PERSONAL,
        created=WHEN,
        updated=WHEN,
        advertised=False,
    )
    node = Node(NODE, "http://www.w3.org/2005/Atom", 20, WHEN)
    return NodeView(Channel(JULIET, config), node, followers)


def sent_operation(server: FakeServer, index: int = 0) -> tuple[tuple[str, str, str], Element]:
    """The route the channel's server will give the request, and its payload, after
    checking it goes to the channel's server acting for Romeo."""
    type_, to, payload = server.sent[index]
    assert to == CAPULET_SERVER
    assert parse_actor(payload) == ROMEO
    return route_key(type_, payload), payload


async def test_metadata_is_the_configuration_asked_for_the_actor_and_the_follower_count() -> None:
    expected = view()
    server = FakeServer(answer(render_configure(expected)), answer(render_disco_info(expected)))
    got = await remote(server).get_node_view(ROMEO, NODE)
    assert got == expected
    key, payload = sent_operation(server)
    assert key == ("get", NS_PUBSUB_OWNER, "configure")
    assert parse_configure_get(payload).node == NODE
    type_, _, meta = server.sent[1]
    assert (type_, parse_disco_info(meta).node) == ("get", NODE)
    assert meta.find(qname(NS_BUDDYCLOUD, "actor")) is None


async def test_a_configuration_change_is_the_submitted_form_the_server_parses() -> None:
    update = ConfigUpdate(
        title="Verona",
        description="two\nlines",
        access_model=AccessModel.LOCAL,
        default_role=Role.PUBLISHER,
        payload_type="urn:example:mood",
        max_items=0,
        advertised=False,
    )
    after = view("Verona")
    server = FakeServer(result(), answer(render_configure(after)), answer(render_disco_info(after)))
    got = await remote(server).configure(ROMEO, NODE, update)
    assert got.channel.config.title == "Verona"
    key, payload = sent_operation(server)
    assert key == ("set", NS_PUBSUB_OWNER, "configure")
    parsed = parse_configure_set(payload)
    assert (parsed.node, parsed.update) == (NODE, update)


async def test_a_node_deletion_is_an_owner_delete() -> None:
    server = FakeServer(result())
    await remote(server).delete_node(ROMEO, NODE)
    key, payload = sent_operation(server)
    assert key == ("set", NS_PUBSUB_OWNER, "delete")
    assert parse_delete(payload).node == NODE


def members() -> Page[Membership]:
    rows = [
        Membership(JULIET, JULIET, Role.OWNER, SubscriptionState.SUBSCRIBED, WHEN),
        Membership(JULIET, NURSE, Role.NONE, SubscriptionState.INVITED, WHEN, invited_by=JULIET),
    ]
    return Page(rows, 9, str(JULIET), str(NURSE))


async def test_followers_are_read_with_their_states_and_paging() -> None:
    rendered = render_node_subscriptions(NS_PUBSUB_OWNER, NODE, members(), room=ROOM)
    server = FakeServer(answer(rendered))
    page = await remote(server).node_subscriptions(ROMEO, NODE, PageRequest(max=2, after="a@b"))
    assert [(m.jid, m.subscription, m.invited_by) for m in page.items] == [
        (JULIET, SubscriptionState.SUBSCRIBED, None),
        (NURSE, SubscriptionState.INVITED, JULIET),
    ]
    assert (page.count, page.first, page.last) == (9, str(JULIET), str(NURSE))
    assert page.keep(1).last == str(JULIET)  # the edge may cut it to fit its stanza
    key, payload = sent_operation(server)
    assert key == ("get", NS_PUBSUB_OWNER, "subscriptions")
    query = parse_subscriptions(payload)
    assert (query.node, query.page) == (NODE, PageRequest(max=2, after="a@b"))


async def test_roles_are_read_with_paging() -> None:
    rendered = render_node_affiliations(NS_PUBSUB_OWNER, NODE, members(), room=ROOM)
    server = FakeServer(answer(rendered))
    page = await remote(server).node_affiliations(ROMEO, NODE, PageRequest(max=5))
    assert [(m.jid, m.role) for m in page.items] == [(JULIET, Role.OWNER), (NURSE, Role.NONE)]
    assert page.count == 9
    key, payload = sent_operation(server)
    assert key == ("get", NS_PUBSUB_OWNER, "affiliations")
    assert parse_affiliations(payload).node == NODE


async def test_approvals_and_role_changes_are_the_owner_sets_the_server_parses() -> None:
    server = FakeServer(result(), result())
    changes = [(NURSE, SubscriptionState.SUBSCRIBED), (ROMEO, SubscriptionState.NONE)]
    done = await remote(server).set_subscriptions(ROMEO, NODE, changes)
    assert [(m.jid, m.subscription) for m in done] == changes
    key, payload = sent_operation(server)
    assert key == ("set", NS_PUBSUB_OWNER, "subscriptions")
    assert parse_subscriptions_set(payload).changes == tuple(changes)

    roles = [(NURSE, Role.MODERATOR), (Jid.parse("tybalt@capulet.lit"), Role.OUTCAST)]
    done = await remote(server).set_roles(ROMEO, NODE, roles)
    assert [(m.jid, m.role) for m in done] == roles
    key, payload = sent_operation(server, 1)
    assert key == ("set", NS_PUBSUB_OWNER, "affiliations")
    assert parse_affiliations_set(payload).changes == tuple(roles)


def entry_item(item_id: str, reply_to: str | None = None) -> Item:
    ref = f"<thr:in-reply-to xmlns:thr='http://purl.org/syndication/thread/1.0' ref='{reply_to}'/>"
    xml = (
        "<entry xmlns='http://www.w3.org/2005/Atom'><content>words</content>"
        "<author><uri>acct:juliet@capulet.lit</uri></author>"
        "<published>2026-03-01T12:00:00Z</published><updated>2026-03-01T12:00:00Z</updated>"
        f"{ref if reply_to else ''}</entry>"
    )
    return Item(NODE, item_id, JULIET, WHEN, WHEN, RawPayload(xml, "http://www.w3.org/2005/Atom"))


async def test_replies_and_a_thread_are_read_as_items() -> None:
    replies = Page([entry_item("r1", "p1"), entry_item("r2", "p1")], 4, "r1", "r2")
    server = FakeServer(
        answer(render_items(NODE, replies, service=SERVICE, room=ROOM)),
        answer(render_items(NODE, replies, service=SERVICE, room=ROOM)),
    )
    page = await remote(server).get_replies(ROMEO, NODE, "p1", PageRequest(max=2))
    assert [(i.id, i.in_reply_to, i.author) for i in page.items] == [
        ("r1", "p1", JULIET),
        ("r2", "p1", JULIET),
    ]
    assert (page.count, page.last) == (4, "r2")
    key, payload = sent_operation(server)
    assert key == ("get", NS_BUDDYCLOUD, "replies")
    query = parse_replies(payload)
    assert (query.node, query.item_id, query.page.max) == (NODE, "p1", 2)

    await remote(server).get_thread(ROMEO, NODE, "r2", PageRequest(max=5))
    key, payload = sent_operation(server, 1)
    assert key == ("get", NS_BUDDYCLOUD, "thread")
    assert parse_thread(payload).item_id == "r2"


async def test_threads_are_read_with_their_items() -> None:
    thread = Thread(NODE, "p1", WHEN, (entry_item("p1"), entry_item("r1", "p1")))
    rendered = render_threads(Page([thread], 1, "p1", "p1"), service=SERVICE, room=ROOM)
    server = FakeServer(answer(rendered))
    page = await remote(server).get_threads(ROMEO, NODE, PageRequest(max=5))
    [got] = page.items
    assert (got.id, got.updated, [i.id for i in got.items]) == ("p1", WHEN, ["p1", "r1"])
    key, payload = sent_operation(server)
    assert key == ("get", "http://jabber.org/protocol/pubsub", "threads")
    assert parse_threads(payload).node == NODE


OWNER = "http://jabber.org/protocol/pubsub#owner"
GARBAGE_CONFIGURE = [
    "type='result'>",
    f"type='result'><pubsub xmlns='{OWNER}'><configure node='{NODE}'/></pubsub>",
    f"type='result'><pubsub xmlns='{OWNER}'><configure node='{NODE}'>"
    "<x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'>"
    "<value>http://jabber.org/protocol/pubsub#node_config</value></field>"
    "<field var='pubsub#access_model'><value>everyone-but-romeo</value></field>"
    "</x></configure></pubsub>",
    f"type='result'><pubsub xmlns='{OWNER}'><configure node='{NODE}'>"
    "<x xmlns='jabber:x:data' type='nonsense'/></configure></pubsub>",
]


@pytest.mark.parametrize("reply", GARBAGE_CONFIGURE)
async def test_a_configuration_answer_that_makes_no_sense_is_garbage(reply: str) -> None:
    server = FakeServer(reply, answer(render_disco_info(view())))
    with pytest.raises(RemoteError):
        await remote(server).get_node_view(ROMEO, NODE)


async def test_meta_data_without_a_follower_count_is_garbage() -> None:
    meta = "type='result'><query xmlns='http://jabber.org/protocol/disco#info'/>"
    server = FakeServer(answer(render_configure(view())), meta)
    with pytest.raises(RemoteError):
        await remote(server).get_node_view(ROMEO, NODE)


async def test_the_configuration_answers_error_wins_over_the_meta_data() -> None:
    server = FakeServer(error("forbidden"), error("item-not-found"))
    with pytest.raises(Forbidden):
        await remote(server).get_node_view(ROMEO, NODE)


@pytest.mark.parametrize(
    "row",
    [
        "<subscription jid='not a jid' subscription='subscribed'/>",
        "<subscription jid='nurse@capulet.lit' subscription='adored'/>",
        "<subscription jid='nurse@capulet.lit'/>",
    ],
)
async def test_a_follower_row_that_makes_no_sense_is_garbage(row: str) -> None:
    reply = f"type='result'><pubsub xmlns='{OWNER}'><subscriptions node='{NODE}'>{row}"
    reply += "</subscriptions></pubsub>"
    with pytest.raises(RemoteError):
        await remote(FakeServer(reply)).node_subscriptions(ROMEO, NODE, PageRequest(max=5))


@pytest.mark.parametrize(
    "reply",
    [
        f"type='result'><pubsub xmlns='{OWNER}'/>",
        "type='result'><pubsub xmlns='http://jabber.org/protocol/pubsub'><affiliations/></pubsub>",
        f"type='result'><pubsub xmlns='{OWNER}'><affiliations node='{NODE}'>"
        "<affiliation jid='nurse@capulet.lit' affiliation='queen'/></affiliations></pubsub>",
    ],
)
async def test_a_roles_answer_that_makes_no_sense_is_garbage(reply: str) -> None:
    with pytest.raises(RemoteError):
        await remote(FakeServer(reply)).node_affiliations(ROMEO, NODE, PageRequest(max=5))


async def test_a_thread_without_an_id_is_garbage() -> None:
    reply = "type='result'><pubsub xmlns='http://jabber.org/protocol/pubsub'><thread/></pubsub>"
    with pytest.raises(RemoteError):
        await remote(FakeServer(reply)).get_threads(ROMEO, NODE, PageRequest(max=5))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (error("not-allowed", "can-not-modify-own-affiliation"), OwnAffiliation),
        (error("not-allowed", "can-not-modify-own-subscription"), OwnSubscription),
        (error("not-allowed", "node-must-have-owner"), OwnerRequired),
        (error("not-allowed"), Forbidden),
        (error("unexpected-request", "not-subscribed"), NotSubscribed),
        (error("not-acceptable", text="secret"), InvalidConfiguration),
        (error("feature-not-implemented", "unsupported"), Unsupported),
    ],
)
async def test_owner_errors_become_domain_errors_without_their_text(
    reply: str, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as caught:
        await remote(FakeServer(reply)).set_roles(ROMEO, NODE, [(NURSE, Role.MEMBER)])
    assert "secret" not in str(caught.value)


async def test_replies_to_a_missing_item_name_the_item() -> None:
    with pytest.raises(ItemNotFound):
        await remote(FakeServer(error("item-not-found"))).get_replies(
            ROMEO, NODE, "p9", PageRequest(max=5)
        )


async def test_metadata_from_a_remote_that_never_answers_times_out_within_the_limit() -> None:
    server = FakeServer()
    server.hang = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RemoteTimeout):
        await remote(server, timeout=0.2).get_node_view(ROMEO, NODE)
    assert loop.time() - started < 2
    assert len(server.sent) == 2


async def test_other_domains_nodes_keep_their_own_node_id() -> None:
    other = NodeId.parse("/user/juliet@capulet.lit/status")
    rendered = render_node_subscriptions(NS_PUBSUB_OWNER, other, members(), room=ROOM)
    page = await remote(FakeServer(answer(rendered))).node_subscriptions(
        ROMEO, other, PageRequest(max=5)
    )
    assert {m.channel for m in page.items} == {JULIET}


class Unreachable(FakeServer):
    """The configuration request fails at once (`failure`); the meta-data one is answered
    after a while."""

    def __init__(self, failure: Exception) -> None:
        super().__init__()
        self.failure = failure
        self.finished = 0

    async def request(self, type_: str, to: str, payload: Element, *, timeout: float) -> Element:
        self.sent.append((type_, to, payload))
        if len(self.sent) == 1:
            raise self.failure
        await asyncio.sleep(0.05)
        self.finished += 1
        return parse_xml(f"<iq xmlns='jabber:component:accept' {result()}</iq>")


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (QueryFailed("no route"), RemoteError),
        (QueryTimeout("no answer"), RemoteTimeout),
    ],
)
async def test_a_failed_request_of_two_waits_for_the_other_and_is_named(
    failure: Exception, expected: type[Exception]
) -> None:
    server = Unreachable(failure)
    with pytest.raises(expected):
        await remote(server).get_node_view(ROMEO, NODE)
    assert server.finished == 1  # not left running behind the error
