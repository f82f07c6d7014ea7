"""Another domain's channel through the HTTP edge: montague.lit serves its users the posts
of a capulet.lit channel they follow from its cache, and tells their sockets of new ones.

capulet.lit's engine runs in-process behind montague.lit's `RemoteChannels` port
(`EngineLink`); its events reach montague.lit's inbox as its notifier renders them, read
by the inbox's own parser, as they would come over XMPP.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_support import FakeClock
from engine_support import text as draft
from http_support import MakeServer, Server, live
from remote_support import CAPULET_SERVICE, JULIET, JULIETS_POSTS, Directory, EngineLink
from xmpp.support import FakeStream

from buddycloud.domain.events import Event
from buddycloud.federation.inbox import parse_inbox
from buddycloud.services.config import EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.factory import open_storage
from buddycloud.xmpp.namespaces import NS_INBOX
from buddycloud.xmpp.notifications import Notifier
from buddycloud.xmpp.presence import OnlineUsers
from buddycloud.xmpp.xml import parse_xml


@pytest.fixture
async def capulet(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Engine]:
    path = tmp_path / "capulet.db"
    shutil.copyfile(sqlite_template, path)
    storage = await open_storage(f"sqlite:///{path}")
    engine = Engine(
        storage,
        FakeClock(),
        EngineConfig(domain="capulet.lit", service_jid=CAPULET_SERVICE),
    )
    engine.use_remote(Directory())
    await engine.register(JULIET)
    try:
        yield engine
    finally:
        await storage.close()


@pytest.fixture
async def montague(make_server: MakeServer, capulet: Engine) -> AsyncIterator[Server]:
    async with make_server(BUDDYCLOUD_SERVER_DOMAIN="montague.lit") as server:
        server.app.engine.use_remote(EngineLink(capulet))
        renderer = Notifier(CAPULET_SERVICE, OnlineUsers(), FakeStream()).render

        async def to_inbox(event: Event) -> None:
            if any(jid.domain == "montague.lit" for jid in event.audience):
                inbox = parse_xml(f"<inbox xmlns='{NS_INBOX}'>{''.join(renderer(event))}</inbox>")
                engine = server.app.engine
                events = parse_inbox(inbox, now=engine.clock.now())
                await engine.receive_inbox(CAPULET_SERVICE, events)

        capulet.add_listener(to_inbox)
        yield server


async def test_a_followers_rest_read_and_socket_include_the_remote_channels_posts(
    montague: Server, capulet: Engine
) -> None:
    for name in ("romeo", "benvolio"):
        await montague.add_user(name)
    earlier = await capulet.publish(JULIET, JULIETS_POSTS, draft("before he came"))
    async with montague.client("romeo") as romeo:
        followed = await romeo.post("/api/subscribed", json={f"{JULIET}/posts": "publisher"})
        assert followed.status_code == 200, followed.text
        assert followed.json() == {f"{JULIET}/posts": "publisher"}

        async with live(montague, "romeo") as socket:
            post = await capulet.publish(JULIET, JULIETS_POSTS, draft("wherefore art thou"))
            event = await socket.next_of("post")
            assert event["channel"] == str(JULIET)
            assert event["entry"]["id"] == post.id
            assert event["entry"]["content"] == "wherefore art thou"
            assert event["entry"]["author"] == str(JULIET)

        page = await romeo.get(f"/api/{JULIET}/content/posts")
        assert page.status_code == 200, page.text
        entries = page.json()
        assert [entry["id"] for entry in entries] == [post.id, earlier.id]
        assert entries[0]["content"] == "wherefore art thou"
        assert entries[1]["content"] == "before he came"  # back-filled on the first follow
        one = await romeo.get(f"/api/{JULIET}/content/posts/{post.id}")
        assert one.status_code == 200 and one.json()["content"] == "wherefore art thou"

    # Unfollowing drops the cache: capulet.lit answers for him again, as for anyone.
    async with montague.client("romeo") as romeo:
        left = await romeo.post("/api/subscribed", json={f"{JULIET}/posts": "none"})
        assert left.status_code == 200, left.text
    assert await montague.app.engine.storage.find_channel(JULIET) is None
