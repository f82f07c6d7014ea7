"""RemoteServers: requests for local users, sent to the channel's server with <actor>, and
what comes back read into domain values and domain errors (never the remote's text)."""

from __future__ import annotations

import asyncio
from xml.etree.ElementTree import Element

import pytest
from engine_support import FakeClock
from engine_support import text as draft

from buddycloud.domain.errors import (
    BadRequest,
    ClosedNode,
    Forbidden,
    InvalidPayload,
    ItemNotFound,
    NodeNotFound,
    NotSubscribed,
    RemoteError,
    RemoteServerNotFound,
    RemoteTimeout,
    SubscriptionPending,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId, PageRequest, Role, SubscriptionState
from buddycloud.federation.client import RemoteServers
from buddycloud.federation.discovery import ServerDiscovery
from buddycloud.xmpp.multicast import QueryFailed
from buddycloud.xmpp.namespaces import NS_BUDDYCLOUD, NS_PUBSUB, NS_PUBSUB_OWNER, qname
from buddycloud.xmpp.xml import parse_xml, serialize

ROMEO = Jid.parse("romeo@montague.lit")
NODE = NodeId.parse("/user/juliet@capulet.lit/posts")
CAPULET_SERVER = "channels.capulet.lit"


class FakeServer:
    """Answers each request with the next canned reply; records what was sent."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str, Element]] = []
        self.hang = False

    async def request(self, type_: str, to: str, payload: Element, *, timeout: float) -> Element:
        self.sent.append((type_, to, payload))
        if self.hang:
            await asyncio.sleep(3600)
        reply = self.replies.pop(0)
        return parse_xml(f"<iq xmlns='jabber:component:accept' from='{to}' id='x' {reply}</iq>")

    async def query(self, to: str, payload: Element) -> Element:
        if to == "capulet.lit":
            return parse_xml(
                "<query xmlns='http://jabber.org/protocol/disco#items'>"
                f"<item jid='{CAPULET_SERVER}'/></query>"
            )
        if to == CAPULET_SERVER:
            return parse_xml(
                "<query xmlns='http://jabber.org/protocol/disco#info'>"
                "<identity category='pubsub' type='channels'/></query>"
            )
        raise QueryFailed(f"{to} answered with an error")


async def no_txt(domain: str) -> Jid | None:
    return None


def remote(server: FakeServer, *, timeout: float = 5) -> RemoteServers:
    discovery = ServerDiscovery(
        server.query,
        no_txt,
        own_domain="montague.lit",
        own_jid=Jid.parse("channels.montague.lit"),
    )
    return RemoteServers(discovery, server.request, FakeClock(), timeout=timeout)


def result(payload: str = "") -> str:
    return f"type='result'>{payload}"


def error(condition: str, app: str = "", text: str = "") -> str:
    app_element = f"<{app} xmlns='http://jabber.org/protocol/pubsub#errors'/>" if app else ""
    text_element = (
        f"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>{text}</text>" if text else ""
    )
    return (
        f"type='error'><error type='cancel'><{condition} "
        f"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>{text_element}{app_element}</error>"
    )


ITEMS = (
    f"<pubsub xmlns='{NS_PUBSUB}'><items node='{NODE}'>"
    "<item id='p1'><entry xmlns='http://www.w3.org/2005/Atom'><content>hello</content>"
    "<author><name>juliet@capulet.lit</name><uri>acct:juliet@capulet.lit</uri></author>"
    "<published>2026-01-01T10:00:00Z</published><updated>2026-01-01T11:00:00Z</updated>"
    "</entry></item></items><set xmlns='http://jabber.org/protocol/rsm'>"
    "<first>p1</first><last>p1</last><count>7</count></set></pubsub>"
)


async def test_a_read_goes_to_the_discovered_server_with_the_actor() -> None:
    server = FakeServer(result(ITEMS))
    page = await remote(server).get_items(ROMEO, NODE, PageRequest(max=5))
    [(type_, to, payload)] = server.sent
    assert (type_, to) == ("get", CAPULET_SERVER)
    actor = payload.find(qname(NS_BUDDYCLOUD, "actor"))
    assert actor is not None and actor.text == str(ROMEO)
    assert payload.find(qname(NS_PUBSUB, "items")).get("node") == str(NODE)  # type: ignore[union-attr]
    assert [item.id for item in page.items] == ["p1"]
    assert page.count == 7 and page.first == "p1"
    item = page.items[0]
    assert item.author == Jid.parse("juliet@capulet.lit")
    assert item.updated.hour == 11
    # An Atom entry is read into the entry it holds.
    assert item.entry is not None and item.entry.content == "hello"


async def test_a_publish_carries_the_entry_and_returns_the_given_id() -> None:
    answer = f"<publish node='{NODE}'><item id='new1'/></publish>"
    server = FakeServer(result(f"<pubsub xmlns='{NS_PUBSUB}'>{answer}</pubsub>"))
    given = await remote(server).publish(ROMEO, NODE, draft("a rose", title="Names"), None)
    assert given == "new1"
    sent = serialize(server.sent[0][2])
    assert "a rose" in sent and "Names" in sent and str(ROMEO) in sent


async def test_a_subscribe_reads_the_state_and_role() -> None:
    server = FakeServer(
        result(
            f"<pubsub xmlns='{NS_PUBSUB}'><subscription node='{NODE}' jid='{ROMEO}' "
            f"subscription='pending'/><affiliation node='{NODE}' jid='{ROMEO}' "
            "affiliation='none'/></pubsub>"
        )
    )
    membership = await remote(server).subscribe(ROMEO, NODE)
    assert membership.subscription is SubscriptionState.PENDING
    assert membership.role is Role.NONE and membership.jid == ROMEO


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (error("item-not-found"), NodeNotFound),
        (error("forbidden"), Forbidden),
        (error("forbidden", "closed-node"), ClosedNode),
        (error("not-authorized", "pending-subscription"), SubscriptionPending),
        (error("unexpected-request", "not-subscribed"), NotSubscribed),
        (error("bad-request", "invalid-payload"), InvalidPayload),
        (error("bad-request"), BadRequest),
        (error("internal-server-error", text="secret stack trace"), RemoteError),
        (error("made-up-condition"), RemoteError),
        ("type='error'>", RemoteError),
        ("type='result'><garbage/>", RemoteError),
        ("type='what'>", RemoteError),
    ],
)
async def test_remote_errors_become_domain_errors_without_their_text(
    reply: str, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as caught:
        await remote(FakeServer(reply)).get_items(ROMEO, NODE, PageRequest(max=5))
    assert "secret" not in str(caught.value)


async def test_an_item_request_maps_item_not_found_to_the_item() -> None:
    with pytest.raises(ItemNotFound):
        await remote(FakeServer(error("item-not-found"))).get_item(ROMEO, NODE, "p9")


async def test_a_remote_that_never_answers_times_out_within_the_limit() -> None:
    server = FakeServer()
    server.hang = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RemoteTimeout):
        await remote(server, timeout=0.2).get_items(ROMEO, NODE, PageRequest(max=5))
    assert loop.time() - started < 2


async def test_a_domain_without_a_channel_server_is_named() -> None:
    other = NodeId.parse("/user/paris@verona.lit/posts")
    with pytest.raises(RemoteServerNotFound) as caught:
        await remote(FakeServer()).get_items(ROMEO, other, PageRequest(max=5))
    assert "verona.lit" in str(caught.value)


async def test_a_remote_item_without_an_id_is_garbage() -> None:
    reply = result(f"<pubsub xmlns='{NS_PUBSUB}'><items node='{NODE}'><item/></items></pubsub>")
    with pytest.raises(RemoteError):
        await remote(FakeServer(reply)).get_items(ROMEO, NODE, PageRequest(max=5))


def _configure(fields: str) -> str:
    return (
        f"<pubsub xmlns='{NS_PUBSUB_OWNER}'><configure node='{NODE}'>"
        "<x xmlns='jabber:x:data' type='form'>"
        "<field var='FORM_TYPE' type='hidden'>"
        "<value>http://jabber.org/protocol/pubsub#node_config</value></field>"
        f"{fields}</x></configure></pubsub>"
    )


def _field(var: str, value: str) -> str:
    return f"<field var='{var}'><value>{value}</value></field>"


async def test_the_configuration_is_asked_as_the_owner_form_with_the_actor() -> None:
    form = _configure(
        _field("pubsub#title", "The balcony")
        + _field("pubsub#description", "Where she speaks")
        + _field("pubsub#access_model", "authorize")
        + _field("pubsub#creator", "juliet@capulet.lit")
        + _field("buddycloud#default_affiliation", "publisher")
        + _field("buddycloud#channel_type", "personal")
        + _field("pubsub#creation_date", "2026-01-01T10:00:00Z")
        + _field("buddycloud#advertise_node", "true")
    )
    server = FakeServer(result(form))
    config = await remote(server).get_configuration(ROMEO, NODE)
    [(type_, _, payload)] = server.sent
    assert type_ == "get"
    assert payload.tag == qname(NS_PUBSUB_OWNER, "pubsub")
    assert payload.findtext(qname(NS_BUDDYCLOUD, "actor")) == str(ROMEO)
    assert (config.title, config.description) == ("The balcony", "Where she speaks")
    assert config.access_model is AccessModel.AUTHORIZE
    assert config.default_role is Role.PUBLISHER
    assert config.creator == Jid.parse("juliet@capulet.lit")
    assert config.advertised  # as its server says; the cache never lists it (test_inbox)


async def test_an_unknown_configuration_takes_new_channel_values_but_stays_closed() -> None:
    form = _configure(
        _field("pubsub#access_model", "presence")
        + _field("buddycloud#default_affiliation", "owner")
        + _field("pubsub#creator", "not a jid@@")
    )
    config = await remote(FakeServer(result(form))).get_configuration(ROMEO, NODE)
    # An access model unknown here is never read as more open than its server meant: the
    # cache would otherwise show its posts to every local user (search, recent items).
    assert config.access_model is AccessModel.AUTHORIZE
    assert config.default_role is Role.MEMBER
    assert config.creator == NODE.channel


async def test_a_configuration_without_its_form_is_garbage() -> None:
    empty = f"<pubsub xmlns='{NS_PUBSUB_OWNER}'><configure node='{NODE}'/></pubsub>"
    with pytest.raises(RemoteError):
        await remote(FakeServer(result(empty))).get_configuration(ROMEO, NODE)
