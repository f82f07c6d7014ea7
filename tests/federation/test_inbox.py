"""The inbox: montague.lit caches the capulet.lit channels its users follow, from the
events capulet.lit's server sends it, and tells its own users from its own JID.

capulet.lit's events are rendered by its own notifier (what the contract puts in each
`<event>`), sent by `Mailman` in `<inbox>` IQs to montague.lit's router as its XMPP server
would route them, and answered as the sender expects: result, or an error of type cancel
or wait.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from engine_support import FakeClock
from engine_support import text as draft
from remote_support import (
    BENVOLIO,
    CAPULET_SERVICE,
    JULIET,
    JULIETS_POSTS,
    MONTAGUE_SERVICE,
    ROMEO,
    Directory,
    EngineLink,
)
from xmpp.support import FakeStream, condition_of, parse_stanza

from buddycloud.domain.errors import ClosedNode, Forbidden, SubscriptionPending
from buddycloud.domain.events import Event
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Entry,
    Item,
    NodeId,
    PageRequest,
    RawPayload,
    Role,
    SubscriptionState,
)
from buddycloud.federation.inbox import INBOX_ROUTE, handle_inbox
from buddycloud.services.config import ConfigUpdate, EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.factory import open_storage
from buddycloud.xmpp.namespaces import NS_INBOX
from buddycloud.xmpp.notifications import Notifier
from buddycloud.xmpp.presence import OnlineUsers
from buddycloud.xmpp.router import Router
from buddycloud.xmpp.xml import serialize

NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_ATOM = "http://www.w3.org/2005/Atom"
ROMEO_ONLINE = Jid.parse("romeo@montague.lit/orchard")
BENVOLIO_ONLINE = Jid.parse("benvolio@montague.lit/street")


async def _engine(
    tmp_path: Path, template: Path, domain: str, service: Jid, **extra: int
) -> Engine:
    path = tmp_path / f"{domain}.db"
    shutil.copyfile(template, path)
    storage = await open_storage(f"sqlite:///{path}")
    config = EngineConfig(
        domain=domain,
        service_jid=service,
        topics_domain=f"topics.{domain}",
        max_payload_bytes=4096,
        **extra,  # type: ignore[arg-type]
    )
    return Engine(storage, FakeClock(), config)


class Montague:
    """montague.lit's XMPP edge, in-process: its router with the inbox route, and what
    its notifier sends to the users online there."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.stream = FakeStream()
        self.online = OnlineUsers()
        self.router = Router(engine, MONTAGUE_SERVICE, self.stream, self.online)
        self.router.add_route(INBOX_ROUTE, handle_inbox)
        engine.add_listener(Notifier(MONTAGUE_SERVICE, self.online, self.stream))
        self._ids = 0

    async def inbox(self, sender: str, events: list[str]) -> Element:
        """Send one inbox IQ from `sender`; the answer to it (notifications go to
        `self.notified`)."""
        self._ids += 1
        stanza, refusal = parse_stanza(
            f"<iq xmlns='jabber:component:accept' type='set' id='i{self._ids}' "
            f"from='{sender}' to='{MONTAGUE_SERVICE}'>"
            f"<inbox xmlns='{NS_INBOX}'>{''.join(events)}</inbox></iq>"
        )
        await self.router.handle(stanza, refusal=refusal)
        sent = self.stream.take()
        answers = [s for s in sent if s.tag == "iq"]
        assert len(answers) == 1, [serialize(s) for s in sent]
        self.notified = [s for s in sent if s.tag == "message"]
        return answers[0]


class Mailman:
    """capulet.lit's events for montague.lit's users, as its notifier renders them, kept
    until `deliver` sends them to montague.lit's inbox in one IQ (oldest first)."""

    def __init__(self, capulet: Engine, montague: Montague) -> None:
        self.renderer = Notifier(CAPULET_SERVICE, OnlineUsers(), FakeStream())
        self.montague = montague
        self.waiting: list[str] = []
        capulet.add_listener(self)

    async def __call__(self, event: Event) -> None:
        if any(jid.domain == "montague.lit" for jid in event.audience):
            self.waiting.extend(self.renderer.render(event))

    async def deliver(self, sender: str = str(CAPULET_SERVICE)) -> Element:
        events, self.waiting = self.waiting, []
        answer = await self.montague.inbox(sender, events)
        assert answer.get("type") == "result", serialize(answer)
        return answer


@pytest.fixture
async def capulet(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Engine]:
    engine = await _engine(tmp_path, sqlite_template, "capulet.lit", CAPULET_SERVICE)
    engine.use_remote(Directory())
    await engine.register(JULIET)
    try:
        yield engine
    finally:
        await engine.storage.close()


@pytest.fixture
async def montague_engine(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Engine]:
    engine = await _engine(tmp_path, sqlite_template, "montague.lit", MONTAGUE_SERVICE, backfill=2)
    try:
        yield engine
    finally:
        await engine.storage.close()


@pytest.fixture
def link(capulet: Engine, montague_engine: Engine) -> EngineLink:
    link = EngineLink(capulet)
    montague_engine.use_remote(link)
    return link


@pytest.fixture
def montague(montague_engine: Engine, link: EngineLink) -> Montague:
    edge = Montague(montague_engine)
    edge.online.add(ROMEO_ONLINE)
    edge.online.add(BENVOLIO_ONLINE)
    return edge


@pytest.fixture
def mailman(capulet: Engine, montague: Montague) -> Mailman:
    return Mailman(capulet, montague)


def _text(item: Item) -> str:
    """What an item says: the entry's content (in-process), or the raw XML (over XMPP)."""
    payload = item.payload
    if isinstance(payload, RawPayload):
        return payload.xml
    return payload.content if isinstance(payload, Entry) else ""


async def _cached_ids(engine: Engine, node: NodeId = JULIETS_POSTS) -> list[str]:
    page = await engine.storage.list_items(node, PageRequest(max=100))
    return [item.id for item in page.items]


# --- following: the cache and its back-fill -------------------------------------------------


async def test_a_first_follow_caches_the_channel_and_backfills_its_recent_posts(
    capulet: Engine, montague: Montague, link: EngineLink
) -> None:
    await capulet.configure(JULIET, JULIETS_POSTS, ConfigUpdate(title="The balcony"))
    posts = [await capulet.publish(JULIET, JULIETS_POSTS, draft(f"post {n}")) for n in range(3)]
    engine = montague.engine

    followed = await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    assert followed.subscription is SubscriptionState.SUBSCRIBED

    channel = await engine.storage.get_channel(JULIET)
    assert channel.config.title == "The balcony"
    assert not channel.config.advertised  # the cache is not this server's directory
    # `[federation] backfill` = 2: the two most recent posts, from before he followed.
    assert await _cached_ids(engine) == [posts[2].id, posts[1].id]
    mine = await engine.storage.find_membership(JULIET, ROMEO)
    assert mine is not None and mine.subscription is SubscriptionState.SUBSCRIBED

    # Romeo reads from the cache, without asking capulet.lit.
    calls = link.calls
    page = await engine.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    assert [item.id for item in page.items] == [posts[2].id, posts[1].id]
    one = await engine.get_item(ROMEO, JULIETS_POSTS, posts[1].id)
    assert "post 1" in _text(one)
    assert link.calls == calls
    # Benvolio follows nothing: he is forwarded to capulet.lit, which answers him.
    page = await engine.get_items(BENVOLIO, JULIETS_POSTS, PageRequest(max=10))
    assert len(page.items) == 3
    assert link.calls == calls + 1

    # The cache is no channel of this server's: nobody adds nodes to it here.
    with pytest.raises(Forbidden):
        await engine.create_node(ROMEO, NodeId(JULIET, "music"))

    # A second follower from montague.lit does not back-fill again.
    await capulet.publish(JULIET, JULIETS_POSTS, draft("post 3"))
    await engine.subscribe(BENVOLIO, JULIETS_POSTS, BENVOLIO)
    assert len(await _cached_ids(engine)) == 2


async def test_replies_and_threads_come_from_the_cache_for_its_followers_only(
    capulet: Engine, montague: Montague, link: EngineLink
) -> None:
    engine = montague.engine
    parent = await capulet.publish(JULIET, JULIETS_POSTS, draft("wherefore"))
    first = await capulet.publish(JULIET, JULIETS_POSTS, draft("art thou", in_reply_to=parent.id))
    await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)  # back-fills both
    # A reply capulet.lit has not sent to this server's inbox yet.
    late = await capulet.publish(JULIET, JULIETS_POSTS, draft("Romeo?", in_reply_to=parent.id))

    calls = link.calls
    page = PageRequest(max=10)
    replies = await engine.get_replies(ROMEO, JULIETS_POSTS, parent.id, page)
    thread = await engine.get_thread(ROMEO, JULIETS_POSTS, first.id, page)
    threads = await engine.get_threads(ROMEO, JULIETS_POSTS, page)
    assert [r.id for r in replies.items] == [first.id]
    assert [i.id for i in thread.items] == [parent.id, first.id]
    assert [[i.id for i in t.items] for t in threads.items] == [[parent.id, first.id]]
    assert link.calls == calls

    # Benvolio follows nothing: capulet.lit answers him, with what it has now.
    replies = await engine.get_replies(BENVOLIO, JULIETS_POSTS, parent.id, page)
    thread = await engine.get_thread(BENVOLIO, JULIETS_POSTS, first.id, page)
    threads = await engine.get_threads(BENVOLIO, JULIETS_POSTS, page)
    assert [r.id for r in replies.items] == [late.id, first.id]
    assert [i.id for i in thread.items] == [parent.id, late.id, first.id]
    assert [t.id for t in threads.items] == [parent.id]
    assert link.calls == calls + 3


async def test_the_last_local_follower_leaving_purges_the_cache(
    capulet: Engine, montague: Montague
) -> None:
    engine = montague.engine
    await capulet.publish(JULIET, JULIETS_POSTS, draft("hello"))
    await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    await engine.subscribe(BENVOLIO, JULIETS_POSTS, BENVOLIO)
    await engine.unsubscribe(ROMEO, JULIETS_POSTS, ROMEO)
    assert await engine.storage.find_membership(JULIET, ROMEO) is None
    assert await engine.storage.find_channel(JULIET) is not None
    await engine.unsubscribe(BENVOLIO, JULIETS_POSTS, BENVOLIO)
    assert await engine.storage.find_channel(JULIET) is None
    # capulet.lit let them both go.
    assert await capulet.storage.find_membership(JULIET, BENVOLIO) is None


async def test_local_channels_stay_closed_to_other_domains(
    capulet: Engine, montague: Montague, mailman: Mailman
) -> None:
    """Reference 2.4: `local` is `authorize` for everyone else: Romeo's follow waits for
    Juliet, and meanwhile he reads nothing, from the cache or from capulet.lit."""
    await capulet.publish(JULIET, JULIETS_POSTS, draft("for the family"))
    await capulet.configure(JULIET, JULIETS_POSTS, ConfigUpdate(access_model=AccessModel.LOCAL))
    engine = montague.engine
    with pytest.raises(ClosedNode):
        await engine.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    pending = await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    assert pending.subscription is SubscriptionState.PENDING
    with pytest.raises(SubscriptionPending):
        await engine.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    assert await _cached_ids(engine) == []

    # Approved, Romeo reads it here; the other users of montague.lit, to whom the
    # channel is closed too, never find it in the cache.
    await capulet.authorize(JULIET, JULIETS_POSTS, ROMEO, allow=True)
    await mailman.deliver()
    page = await engine.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    assert len(page.items) == 1
    assert (await engine.storage.get_channel(JULIET)).config.access_model is (AccessModel.AUTHORIZE)
    for reader in (ROMEO, BENVOLIO):
        found = await engine.search(reader, words=["family"], author=None, page=PageRequest())
        assert len(found.items) == (1 if reader == ROMEO else 0)


# --- the inbox ------------------------------------------------------------------------------


async def test_events_reach_local_followers_from_this_servers_own_jid(
    capulet: Engine, montague: Montague, mailman: Mailman
) -> None:
    engine = montague.engine
    await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    await mailman.deliver()  # his own follow, announced by capulet.lit

    post = await capulet.publish(JULIET, JULIETS_POSTS, draft("wherefore art thou"))
    await mailman.deliver()
    [headline] = montague.notified
    assert headline.get("from") == str(MONTAGUE_SERVICE)
    assert headline.get("to") == str(ROMEO_ONLINE)  # Benvolio follows nothing
    item = headline.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}items/{{{NS_EVENT}}}item")
    assert item is not None and item.get("id") == post.id
    assert "wherefore art thou" in serialize(headline)
    assert await _cached_ids(engine) == [post.id]

    # The cache feeds recent items and the inbox sync.
    recent = await engine.recent_items(
        ROMEO,
        since="2000-01-01T00:00:00Z",
        max_per_node="10",
        parent_only=False,
        page=PageRequest(max=10),
    )
    assert [i.id for i in recent.items] == [post.id]
    found = await engine.search(ROMEO, words=["wherefore"], author=None, page=PageRequest())
    assert [i.id for i in found.items] == [post.id]
    synced = await engine.inbox(ROMEO, PageRequest(max=50))
    assert post.id in [getattr(e.event, "item", None) and e.event.item.id for e in synced.items]

    # A reply, then a retraction.
    reply = await capulet.publish(
        JULIET, JULIETS_POSTS, draft("by any other name", in_reply_to=post.id)
    )
    await mailman.deliver()
    replies = await engine.get_replies(ROMEO, JULIETS_POSTS, post.id, PageRequest(max=10))
    assert [r.id for r in replies.items] == [reply.id]
    await capulet.retract(JULIET, JULIETS_POSTS, reply.id)
    await mailman.deliver()
    assert (await engine.storage.get_item(JULIETS_POSTS, reply.id)).deleted
    assert montague.notified and "retract" in serialize(montague.notified[0])

    # A configuration change.
    await capulet.configure(JULIET, JULIETS_POSTS, ConfigUpdate(title="Verona nights"))
    await mailman.deliver()
    assert (await engine.storage.get_channel(JULIET)).config.title == "Verona nights"
    assert any("Verona nights" in serialize(m) for m in montague.notified)


async def test_a_follow_of_an_authorize_channel_stays_pending_until_approved(
    capulet: Engine, montague: Montague, mailman: Mailman
) -> None:
    engine = montague.engine
    await capulet.configure(JULIET, JULIETS_POSTS, ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    earlier = await capulet.publish(JULIET, JULIETS_POSTS, draft("for friends"))
    pending = await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    assert pending.subscription is SubscriptionState.PENDING
    cached = await engine.storage.find_membership(JULIET, ROMEO)
    assert cached is not None and cached.subscription is SubscriptionState.PENDING
    await mailman.deliver()
    # Pending, he reads nothing: capulet.lit is asked, and says so.
    with pytest.raises(SubscriptionPending):
        await engine.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))

    await capulet.authorize(JULIET, JULIETS_POSTS, ROMEO, allow=True)
    await mailman.deliver()
    approved = await engine.storage.find_membership(JULIET, ROMEO)
    assert approved is not None and approved.subscription is SubscriptionState.SUBSCRIBED
    [told] = montague.notified
    subscription = told.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}subscription")
    assert subscription is not None
    assert subscription.get("subscription") == "subscribed"
    assert told.get("from") == str(MONTAGUE_SERVICE) and told.get("to") == str(ROMEO_ONLINE)
    # Approved, he is the first reader here: the back-fill brings the earlier post.
    page = await engine.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    assert [item.id for item in page.items] == [earlier.id]


async def test_a_refused_follow_is_told_and_leaves_nothing_cached(
    capulet: Engine, montague: Montague, mailman: Mailman
) -> None:
    engine = montague.engine
    await capulet.configure(JULIET, JULIETS_POSTS, ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    await mailman.deliver()
    await capulet.authorize(JULIET, JULIETS_POSTS, ROMEO, allow=False)
    await mailman.deliver()
    [told] = montague.notified
    subscription = told.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}subscription")
    assert subscription is not None and subscription.get("subscription") == "none"
    assert await engine.storage.find_channel(JULIET) is None


async def test_a_ban_ends_reading_from_the_cache(
    capulet: Engine, montague: Montague, mailman: Mailman
) -> None:
    engine = montague.engine
    await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    await engine.subscribe(BENVOLIO, JULIETS_POSTS, BENVOLIO)
    await mailman.deliver()
    await capulet.set_role(JULIET, JULIETS_POSTS, ROMEO, Role.OUTCAST)
    await mailman.deliver()
    banned = await engine.storage.find_membership(JULIET, ROMEO)
    assert banned is not None and banned.role is Role.OUTCAST
    assert [m.get("to") for m in montague.notified] == [str(ROMEO_ONLINE)]
    with pytest.raises(Forbidden):
        await engine.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))


async def test_deleting_the_channel_deletes_the_cache(
    capulet: Engine, montague: Montague, mailman: Mailman
) -> None:
    await montague.engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    await mailman.deliver()
    await capulet.delete_node(JULIET, JULIETS_POSTS)
    await mailman.deliver()
    assert await montague.engine.storage.find_channel(JULIET) is None
    assert any(
        m.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}delete") is not None for m in montague.notified
    )


# --- trust and bad input --------------------------------------------------------------------


def _post_event(node: str, item_id: str, text: str) -> str:
    return (
        f"<event xmlns='{NS_EVENT}'><items node='{node}'><item id='{item_id}'>"
        f"<entry xmlns='{NS_ATOM}'><content>{text}</content>"
        "<author><uri>acct:juliet@capulet.lit</uri></author></entry></item></items></event>"
    )


async def test_only_the_channel_server_of_the_nodes_domain_is_believed(
    capulet: Engine, montague: Montague, caplog: pytest.LogCaptureFixture
) -> None:
    engine = montague.engine
    await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    node = str(JULIETS_POSTS)
    caplog.set_level(logging.WARNING)
    for sender in (
        "pubsub.capulet.lit",  # a component of capulet.lit, not its channel server
        "channels.verona.lit",  # a third server
        "channels.capulet.lit/rogue",  # not a bare JID
        "juliet@capulet.lit",  # a user
    ):
        answer = await montague.inbox(sender, [_post_event(node, "forged", "forged")])
        assert answer.get("type") == "error"
        assert condition_of(answer)[:2] == ("forbidden", "cancel")
        assert any(sender in record.getMessage() for record in caplog.records)
    assert "forged" not in await _cached_ids(engine)
    assert montague.notified == []

    # capulet.lit's server speaks for capulet.lit only: not for montague.lit's own
    # channels, nor for another domain's.
    await engine.register(BENVOLIO)
    answer = await montague.inbox(
        str(CAPULET_SERVICE),
        [
            _post_event("/user/benvolio@montague.lit/posts", "spoofed", "spoofed"),
            _post_event("/user/paris@verona.lit/posts", "elsewhere", "elsewhere"),
            _post_event(node, "genuine", "genuine"),
        ],
    )
    assert answer.get("type") == "result"
    assert await _cached_ids(engine) == ["genuine"]
    benvolios = NodeId.parse("/user/benvolio@montague.lit/posts")
    assert await engine.storage.find_item(benvolios, "spoofed") is None
    refusals = [r.getMessage() for r in caplog.records if "channels.capulet.lit" in r.getMessage()]
    assert any("montague.lit" in message for message in refusals)
    assert any("verona.lit" in message for message in refusals)


async def test_malformed_and_oversized_events_are_refused_one_by_one(
    capulet: Engine, montague: Montague, caplog: pytest.LogCaptureFixture
) -> None:
    engine = montague.engine
    await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    node = str(JULIETS_POSTS)
    caplog.set_level(logging.WARNING)
    answer = await montague.inbox(
        str(CAPULET_SERVICE),
        [
            f"<event xmlns='{NS_EVENT}'><items node='not a node'/></event>",
            f"<event xmlns='{NS_EVENT}'><subscription node='{node}' jid='romeo@montague.lit' "
            "subscription='bogus'/></event>",
            f"<event xmlns='{NS_EVENT}'><dance node='{node}'/></event>",
            _post_event(node, "huge", "x" * 5000),  # over max_payload_bytes (4096)
            _post_event(node, "fine", "fine"),
        ],
    )
    assert answer.get("type") == "result"
    assert await _cached_ids(engine) == ["fine"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("channels.capulet.lit" in message for message in warnings) >= 4
    mine = await engine.storage.find_membership(JULIET, ROMEO)
    assert mine is not None and mine.subscription is SubscriptionState.SUBSCRIBED

    for malformed in ([], ["<dance xmlns='urn:example'/>"]):
        answer = await montague.inbox(str(CAPULET_SERVICE), malformed)
        assert condition_of(answer)[:2] == ("bad-request", "cancel")


async def test_a_configuration_event_is_read_leniently_into_what_a_channel_here_holds(
    capulet: Engine, montague: Montague
) -> None:
    engine = montague.engine
    await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    fields = {
        "FORM_TYPE": "http://jabber.org/protocol/pubsub#node_config",
        "pubsub#title": "t" * 300,
        "buddycloud#default_affiliation": "owner",
        "pubsub#creator": "not a jid@@",
    }
    form = "".join(
        f"<field var='{var}'><value>{value}</value></field>" for var, value in fields.items()
    )
    answer = await montague.inbox(
        str(CAPULET_SERVICE),
        [
            f"<event xmlns='{NS_EVENT}'><configuration node='{JULIETS_POSTS}'>"
            f"<x xmlns='jabber:x:data' type='result'>{form}</x></configuration></event>"
        ],
    )
    assert answer.get("type") == "result"
    config = (await engine.storage.get_channel(JULIET)).config
    assert config.title == "t" * 128  # a title this server's channels may have
    assert config.default_role is Role.MEMBER  # no follower becomes an owner
    assert not config.advertised


async def test_an_event_about_a_channel_nobody_here_follows_is_dropped(
    capulet: Engine, montague: Montague
) -> None:
    answer = await montague.inbox(
        str(CAPULET_SERVICE), [_post_event(str(JULIETS_POSTS), "unasked", "unasked")]
    )
    assert answer.get("type") == "result"
    assert await montague.engine.storage.find_channel(JULIET) is None


async def test_events_that_cannot_be_stored_now_are_asked_again(
    capulet: Engine, montague: Montague
) -> None:
    await montague.engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    await montague.engine.storage.close()
    answer = await montague.inbox(
        str(CAPULET_SERVICE), [_post_event(str(JULIETS_POSTS), "later", "later")]
    )
    assert condition_of(answer)[:2] == ("internal-server-error", "wait")


async def test_a_user_leaving_this_server_leaves_the_remote_channels_they_follow(
    capulet: Engine, montague: Montague, mailman: Mailman
) -> None:
    engine = montague.engine
    await engine.register(ROMEO)
    await engine.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    his = await engine.publish(ROMEO, JULIETS_POSTS, draft("my own words"))
    await mailman.deliver()
    assert his.id in await _cached_ids(engine)

    await engine.unregister(ROMEO)
    assert await capulet.storage.find_membership(JULIET, ROMEO) is None
    assert await engine.storage.find_channel(JULIET) is None
    # His post is capulet.lit's to keep or drop, not this server's.
    assert not (await capulet.storage.get_item(JULIETS_POSTS, his.id)).deleted
