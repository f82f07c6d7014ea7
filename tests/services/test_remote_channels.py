"""Channels of other domains: the engine hands them to its RemoteChannels port, and serves
its own channels to other domains' servers acting for their users.

Two engines are joined in-process: montague.lit's, whose port (`EngineLink`) calls
capulet.lit's engine the way the XMPP edge would, as channels.montague.lit acting for the
user, so that capulet.lit applies its trust check and its permission tables.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

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

from buddycloud.domain.errors import (
    BadRequest,
    ClosedNode,
    Forbidden,
    JidMismatch,
    NodeNotFound,
    NotLocalUser,
    NotSubscribed,
    RemoteTimeout,
    Unsupported,
    UntrustedServer,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Item,
    NodeId,
    Page,
    PageRequest,
    Role,
    SubscriptionState,
)
from buddycloud.services.config import ConfigUpdate, EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.factory import open_storage


class Unanswered(Directory):
    """A remote server that never answers in time."""

    async def get_items(self, actor: Jid, node: NodeId, page: PageRequest) -> Page[Item]:
        raise RemoteTimeout(node.channel.domain, 10)


async def _engine(tmp_path: Path, template: Path, domain: str, service: Jid) -> Engine:
    path = tmp_path / f"{domain}.db"
    shutil.copyfile(template, path)
    storage = await open_storage(f"sqlite:///{path}")
    config = EngineConfig(domain=domain, service_jid=service, topics_domain=f"topics.{domain}")
    return Engine(storage, FakeClock(), config)


@pytest.fixture
async def capulet(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Engine]:
    engine = await _engine(tmp_path, sqlite_template, "capulet.lit", CAPULET_SERVICE)
    engine.use_remote(Directory())  # capulet.lit serves other domains' servers
    await engine.register(JULIET)
    try:
        yield engine
    finally:
        await engine.storage.close()


@pytest.fixture
async def montague(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Engine]:
    engine = await _engine(tmp_path, sqlite_template, "montague.lit", MONTAGUE_SERVICE)
    try:
        yield engine
    finally:
        await engine.storage.close()


@pytest.fixture
def link(capulet: Engine, montague: Engine) -> EngineLink:
    link = EngineLink(capulet)
    montague.use_remote(link)
    return link


async def test_a_local_user_reads_follows_and_posts_on_another_domains_channel(
    capulet: Engine, montague: Engine, link: EngineLink
) -> None:
    post = await capulet.publish(JULIET, JULIETS_POSTS, draft("from the balcony"))
    page = await montague.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    assert [item.id for item in page.items] == [post.id]

    with pytest.raises(Forbidden):
        await montague.publish(ROMEO, JULIETS_POSTS, draft("too soon"))
    membership = await montague.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    assert membership.subscription is SubscriptionState.SUBSCRIBED
    assert membership.jid == ROMEO

    his = await montague.publish(ROMEO, JULIETS_POSTS, draft("with love's light wings"))
    stored = await capulet.get_item(JULIET, JULIETS_POSTS, his.id)
    assert stored.author == ROMEO
    assert his.author == ROMEO

    await montague.retract(ROMEO, JULIETS_POSTS, his.id)
    assert (await capulet.get_item(JULIET, JULIETS_POSTS, his.id)).deleted
    await montague.unsubscribe(ROMEO, JULIETS_POSTS, ROMEO)
    with pytest.raises(NotSubscribed):
        await montague.unsubscribe(ROMEO, JULIETS_POSTS, ROMEO)
    # The channel was cached at montague.lit while Romeo followed it, and no longer.
    assert await montague.storage.find_channel(JULIET) is None


async def test_the_channels_rules_apply_to_the_remote_user(
    capulet: Engine, montague: Engine, link: EngineLink
) -> None:
    await capulet.configure(JULIET, JULIETS_POSTS, ConfigUpdate(access_model=AccessModel.LOCAL))
    with pytest.raises(ClosedNode):
        await montague.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    await capulet.configure(JULIET, JULIETS_POSTS, ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    pending = await montague.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    assert pending.subscription is SubscriptionState.PENDING


async def test_this_servers_own_channels_never_leave_it(
    capulet: Engine, montague: Engine, link: EngineLink
) -> None:
    await montague.register(ROMEO)
    romeos = NodeId.parse("/user/romeo@montague.lit/posts")
    await montague.get_items(ROMEO, romeos, PageRequest(max=10))
    await montague.publish(ROMEO, romeos, draft("at home"))
    assert link.calls == 0
    assert montague.is_mine(romeos)
    assert montague.is_mine(NodeId.parse("/user/fair@topics.montague.lit/posts"))
    assert not montague.is_mine(JULIETS_POSTS)


async def test_only_local_users_are_acted_for(montague: Engine, link: EngineLink) -> None:
    """montague.lit is the home server of its own users, not of anyone who asks."""
    for stranger in ("tybalt@capulet.lit", "guest@anon.montague.lit"):
        with pytest.raises(NotLocalUser):
            await montague.get_items(Jid.parse(stranger), JULIETS_POSTS, PageRequest(max=10))
    assert link.calls == 0


async def test_one_may_follow_only_oneself_on_other_domains_too(
    montague: Engine, link: EngineLink
) -> None:
    with pytest.raises(JidMismatch):
        await montague.subscribe(ROMEO, JULIETS_POSTS, BENVOLIO)
    assert link.calls == 0


async def test_operations_not_yet_federated_say_so(montague: Engine, link: EngineLink) -> None:
    """Rather than answering from a local lookup as if the channel did not exist."""
    with pytest.raises(Unsupported):
        await montague.archive_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    with pytest.raises(Unsupported):
        await montague.subscribe(ROMEO, JULIETS_POSTS, ROMEO, temporary=True)
    assert link.calls == 0


async def test_a_local_user_reads_another_domains_channel_metadata_and_followers(
    capulet: Engine, montague: Engine, link: EngineLink
) -> None:
    await capulet.configure(JULIET, JULIETS_POSTS, ConfigUpdate(title="The balcony"))
    view = await montague.get_node_view(ROMEO, JULIETS_POSTS)
    assert view.channel.config.title == "The balcony"
    assert view.channel.config.creator == JULIET
    assert view.num_subscribers == 1
    await montague.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    followers = await montague.node_subscriptions(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    assert {m.jid for m in followers.items} == {JULIET, ROMEO}
    roles = await montague.node_affiliations(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    assert {(m.jid, m.role) for m in roles.items} == {
        (JULIET, Role.OWNER),
        (ROMEO, Role.PUBLISHER),
    }
    # A follower may not configure, delete or moderate; the channel's server says so.
    with pytest.raises(Forbidden):
        await montague.configure(ROMEO, JULIETS_POSTS, ConfigUpdate(title="Mine now"))
    with pytest.raises(Forbidden):
        await montague.delete_node(ROMEO, JULIETS_POSTS)
    with pytest.raises(Forbidden):
        await montague.set_role(ROMEO, JULIETS_POSTS, BENVOLIO, Role.OUTCAST)
    assert (await capulet.get_node_view(JULIET, JULIETS_POSTS)).channel.config.title == (
        "The balcony"
    )


async def test_a_remote_moderator_approves_followers_changes_roles_and_configures(
    capulet: Engine, montague: Engine, link: EngineLink
) -> None:
    await capulet.configure(JULIET, JULIETS_POSTS, ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    nurse = Jid.parse("nurse@capulet.lit")
    await montague.subscribe(ROMEO, JULIETS_POSTS, ROMEO)
    await capulet.set_subscription(JULIET, JULIETS_POSTS, ROMEO, SubscriptionState.SUBSCRIBED)
    await capulet.set_role(JULIET, JULIETS_POSTS, ROMEO, Role.MODERATOR)
    assert (await capulet.subscribe(nurse, JULIETS_POSTS, nurse)).subscription is (
        SubscriptionState.PENDING
    )
    pending = await montague.node_subscriptions(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    assert (nurse, SubscriptionState.PENDING) in {(m.jid, m.subscription) for m in pending.items}

    [approved] = await montague.set_subscriptions(
        ROMEO, JULIETS_POSTS, [(nurse, SubscriptionState.SUBSCRIBED)]
    )
    assert approved.subscription is SubscriptionState.SUBSCRIBED
    [changed] = await montague.set_roles(ROMEO, JULIETS_POSTS, [(nurse, Role.PUBLISHER)])
    assert changed.role is Role.PUBLISHER
    stored = await capulet.storage.find_membership(JULIET, nurse)
    assert stored is not None
    assert (stored.subscription, stored.role) == (SubscriptionState.SUBSCRIBED, Role.PUBLISHER)

    view = await montague.configure(ROMEO, JULIETS_POSTS, ConfigUpdate(title="Verona nights"))
    assert view.channel.config.title == "Verona nights"
    # Moderators change titles, not the access model (table 6).
    with pytest.raises(Forbidden):
        await montague.configure(ROMEO, JULIETS_POSTS, ConfigUpdate(access_model=AccessModel.OPEN))
    # A JID twice is refused here, before anything is asked.
    calls = link.calls
    with pytest.raises(BadRequest):
        await montague.set_roles(
            ROMEO, JULIETS_POSTS, [(nurse, Role.MEMBER), (nurse, Role.PUBLISHER)]
        )
    assert link.calls == calls


async def test_a_local_user_reads_replies_threads_of_another_domains_channel(
    capulet: Engine, montague: Engine, link: EngineLink
) -> None:
    parent = await capulet.publish(JULIET, JULIETS_POSTS, draft("wherefore"))
    reply = await capulet.publish(JULIET, JULIETS_POSTS, draft("art thou", in_reply_to=parent.id))
    replies = await montague.get_replies(ROMEO, JULIETS_POSTS, parent.id, PageRequest(max=10))
    assert [item.id for item in replies.items] == [reply.id]
    thread = await montague.get_thread(ROMEO, JULIETS_POSTS, reply.id, PageRequest(max=10))
    assert [item.id for item in thread.items] == [parent.id, reply.id]
    threads = await montague.get_threads(ROMEO, JULIETS_POSTS, PageRequest(max=10))
    assert [t.id for t in threads.items] == [parent.id]
    assert link.calls == 3


async def test_a_remote_timeout_reaches_the_user_as_a_timeout(montague: Engine) -> None:
    montague.use_remote(Unanswered())  # type: ignore[arg-type]
    with pytest.raises(RemoteTimeout):
        await montague.get_items(ROMEO, JULIETS_POSTS, PageRequest(max=10))


async def test_only_the_actors_channel_server_may_act_for_them(capulet: Engine) -> None:
    """ProtoXEP 10.1: not another component, not the actor, not another domain's server."""
    assert await capulet.acting_for(MONTAGUE_SERVICE, Jid.parse("romeo@montague.lit/x")) == ROMEO
    for sender, actor in [
        ("pubsub.montague.lit", ROMEO),  # merely a component of montague.lit
        ("montague.lit", ROMEO),
        ("romeo@montague.lit", ROMEO),  # a user claiming to be his own server
        ("channels.montague.lit/res", ROMEO),
        ("channels.verona.lit", ROMEO),
        ("channels.montague.lit", JULIET),  # capulet.lit's own user: never from outside
        ("channels.montague.lit", Jid.parse("fair@topics.capulet.lit")),
    ]:
        with pytest.raises(UntrustedServer):
            await capulet.acting_for(Jid.parse(sender), actor)


async def test_a_server_that_does_not_federate_trusts_nobody(
    tmp_path: Path, sqlite_template: Path
) -> None:
    engine = await _engine(
        tmp_path, sqlite_template, "verona.lit", Jid.parse("channels.verona.lit")
    )
    try:
        with pytest.raises(UntrustedServer):
            await engine.acting_for(MONTAGUE_SERVICE, ROMEO)
        # And, without federation, another domain's channel is simply not here.
        with pytest.raises(NodeNotFound):
            await engine.get_items(
                Jid.parse("paris@verona.lit"), JULIETS_POSTS, PageRequest(max=10)
            )
    finally:
        await engine.storage.close()
