"""`GET /api/notifications/posts` (long-polling) and `GET /api/sync`, through a real
uvicorn on a real socket (reference 9.2 rows 26 and 27)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import httpx
import pytest
from http_support import DOMAIN, MakeServer, Server
from hypothesis import given
from hypothesis import strategies as st

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId
from buddycloud.domain.times import format_datetime
from buddycloud.http.requests import as_milliseconds, milliseconds
from buddycloud.services.config import ConfigUpdate

JULIET = Jid.parse(f"juliet@{DOMAIN}")
ROMEO = Jid.parse(f"romeo@{DOMAIN}")
BENVOLIO = Jid.parse(f"benvolio@{DOMAIN}")


def posts(owner: Jid) -> NodeId:
    return NodeId(owner, "posts")


async def post(server: Server, author: Jid, text: str, channel: Jid | None = None) -> str:
    item = await server.app.engine.publish(
        author, posts(channel or author), EntryDraft(content=text)
    )
    return item.id


async def wait_until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.02)


async def past_the_millisecond_of_now() -> str:
    """`since` for what is published from now on: the next millisecond, once it has come
    (`since` has millisecond precision)."""
    now = datetime.now(UTC)
    since = now - timedelta(microseconds=now.microsecond % 1000) + timedelta(milliseconds=1)
    await wait_until(lambda: datetime.now(UTC) > since)
    return format_datetime(since)


# --- long-polling ------------------------------------------------------------------------------


async def test_without_since_the_answer_is_at_once_with_the_time_to_poll_from(
    server: Server,
) -> None:
    await server.add_user("romeo")
    before = datetime.now(UTC)
    async with server.client("romeo") as romeo:
        answer = await romeo.get("/api/notifications/posts")

    assert answer.status_code == 200
    body = answer.json()
    assert body["items"] == []
    last = datetime.fromtimestamp(body["last"] / 1000, UTC)
    assert before - timedelta(seconds=1) < last < datetime.now(UTC) + timedelta(seconds=1)


async def test_posts_newer_than_since_come_at_once_oldest_first_with_their_source(
    server: Server,
) -> None:
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    async with server.client("romeo") as romeo:
        since = (await romeo.get("/api/notifications/posts")).json()["last"]
        first = await post(server, JULIET, "first")
        second = await post(server, JULIET, "second")
        answer = await romeo.get("/api/notifications/posts", params={"since": since})
        body = answer.json()
        # Asking again from `last` gives nothing twice: it waits for the next post.
        again = asyncio.create_task(
            romeo.get("/api/notifications/posts", params={"since": body["last"]})
        )
        await wait_until(lambda: server.hub.connected == 1)
        third = await post(server, JULIET, "third")
        later = (await again).json()

    assert answer.status_code == 200
    assert [item["id"] for item in body["items"]] == [first, second]
    assert body["items"][0]["source"] == f"{JULIET}/posts"
    assert body["items"][0]["content"] == "first"
    assert body["last"] > since
    assert [item["id"] for item in later["items"]] == [third]
    assert later["last"] > body["last"]


async def test_a_long_backlog_comes_oldest_first_a_page_at_a_time(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("buddycloud.http.routes.notifications.MAX_PAGE", 2)
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    async with server.client("romeo") as romeo:
        since = (await romeo.get("/api/notifications/posts")).json()["last"]
        ids = [await post(server, JULIET, f"post {number}") for number in range(3)]
        first = (await romeo.get("/api/notifications/posts", params={"since": since})).json()
        rest = (await romeo.get("/api/notifications/posts", params={"since": first["last"]})).json()

    assert [item["id"] for item in first["items"]] == ids[:2]
    assert [item["id"] for item in rest["items"]] == ids[2:]


async def test_a_held_poll_answers_when_a_post_arrives(server: Server) -> None:
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    async with server.client("romeo") as romeo:
        since = (await romeo.get("/api/notifications/posts")).json()["last"]
        held = asyncio.create_task(romeo.get("/api/notifications/posts", params={"since": since}))
        await wait_until(lambda: server.hub.connected == 1)
        assert not held.done()
        posted = time.monotonic()
        item_id = await post(server, JULIET, "are you there?")
        answer = await asyncio.wait_for(held, 5)
        delay = time.monotonic() - posted

    assert answer.status_code == 200
    assert [item["id"] for item in answer.json()["items"]] == [item_id]
    assert delay < 1.0


async def test_a_held_poll_ends_empty_after_the_hold_time(make_server: MakeServer) -> None:
    async with make_server(BUDDYCLOUD_HTTP_LONG_POLL_SECONDS="1") as server:
        await server.add_user("romeo")
        async with server.client("romeo") as romeo:
            since = (await romeo.get("/api/notifications/posts")).json()["last"]
            started = time.monotonic()
            answer = await romeo.get("/api/notifications/posts", params={"since": since})
            held = time.monotonic() - started

    assert answer.status_code == 200
    assert answer.json() == {"last": since, "items": []}
    assert 0.9 < held < 5


ATOM_NS = "{http://www.w3.org/2005/Atom}"


def atom_posts(answer: httpx.Response) -> tuple[list[str], str]:
    """The contents of an Atom long-poll answer's entries, and its `next` link."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/atom+xml")
    feed = ElementTree.fromstring(answer.content)
    assert feed.tag == f"{ATOM_NS}feed"
    contents = [entry.findtext(f"{ATOM_NS}content") or "" for entry in feed.iter(f"{ATOM_NS}entry")]
    (following,) = [
        link.get("href") or "" for link in feed.iter(f"{ATOM_NS}link") if link.get("rel") == "next"
    ]
    return contents, following


async def test_the_long_poll_answers_in_atom_when_asked_and_links_where_to_go_on(
    server: Server,
) -> None:
    """Row 27: an Atom feed of the new posts, oldest first; its `next` link polls on from
    `last`, so a held poll gives only what came after."""
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    atom = {"Accept": "application/atom+xml"}
    async with server.client("romeo") as romeo:
        empty, start = atom_posts(await romeo.get("/api/notifications/posts", headers=atom))
        await post(server, JULIET, "first <b>not bold</b>")
        await post(server, JULIET, "second")
        stored, following = atom_posts(await romeo.get(start, headers=atom))
        held = asyncio.create_task(romeo.get(following, headers=atom))
        await wait_until(lambda: server.hub.connected == 1)
        await post(server, JULIET, "third")
        arrived, _ = atom_posts(await asyncio.wait_for(held, 5))
        refused = await romeo.get("/api/notifications/posts", headers={"Accept": "image/png"})

    assert empty == []
    assert stored == ["first <b>not bold</b>", "second"]
    assert arrived == ["third"]
    assert refused.status_code == 406


async def test_posts_of_channels_not_followed_or_closed_do_not_come(
    make_server: MakeServer,
) -> None:
    async with make_server(BUDDYCLOUD_HTTP_LONG_POLL_SECONDS="1") as server:
        for name in ("juliet", "romeo", "benvolio"):
            await server.add_user(name)
        engine = server.app.engine
        await engine.configure(
            JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE)
        )
        await engine.subscribe(ROMEO, posts(JULIET), ROMEO)  # pending approval
        async with server.client("romeo") as romeo:
            since = (await romeo.get("/api/notifications/posts")).json()["last"]
            await post(server, JULIET, "closed")
            await post(server, BENVOLIO, "not followed")
            answer = await romeo.get("/api/notifications/posts", params={"since": since})

    assert answer.json()["items"] == []


@pytest.mark.parametrize("since", ["yesterday", "-5", "1e12", "12.3456", "9" * 16, ""])
async def test_a_bad_since_is_400_naming_it(server: Server, since: str) -> None:
    await server.add_user("romeo")
    async with server.client("romeo") as romeo:
        answer = await romeo.get("/api/notifications/posts", params={"since": since})
    assert answer.status_code == 400
    assert "since" in answer.json()["message"]


async def test_long_polling_needs_a_signed_in_user(server: Server) -> None:
    async with server.client() as anonymous:
        answer = await anonymous.get("/api/notifications/posts", params={"since": "0"})
    assert answer.status_code == 401


# --- sync ----------------------------------------------------------------------------------------


async def test_sync_gives_the_new_entries_of_every_followed_node(server: Server) -> None:
    for name in ("juliet", "romeo", "benvolio"):
        await server.add_user(name)
    engine = server.app.engine
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await engine.subscribe(ROMEO, posts(BENVOLIO), ROMEO)
    old = await post(server, JULIET, "old news")
    since = await past_the_millisecond_of_now()
    first = await post(server, JULIET, "one")
    second = await post(server, JULIET, "two")
    third = await post(server, BENVOLIO, "three")
    own = await post(server, ROMEO, "mine")

    async with server.client("romeo") as romeo:
        answer = await romeo.get("/api/sync", params={"since": since, "max": "10"})
        limited = await romeo.get("/api/sync", params={"since": since, "max": "1"})

    assert answer.status_code == 200
    body = answer.json()
    assert [entry["id"] for entry in body[f"/user/{JULIET}/posts"]] == [second, first]
    assert [entry["id"] for entry in body[f"/user/{BENVOLIO}/posts"]] == [third]
    assert [entry["id"] for entry in body[f"/user/{ROMEO}/posts"]] == [own]
    assert old not in {entry["id"] for entries in body.values() for entry in entries}
    assert [entry["id"] for entry in limited.json()[f"/user/{JULIET}/posts"]] == [second]


async def test_sync_reads_every_page(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("buddycloud.http.routes.sync.MAX_PAGE", 2)
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    ids = [await post(server, JULIET, f"post {number}") for number in range(5)]

    async with server.client("romeo") as romeo:
        answer = await romeo.get("/api/sync", params={"since": "2000-01-01T00:00:00Z", "max": "9"})

    assert [entry["id"] for entry in answer.json()[f"/user/{JULIET}/posts"]] == ids[::-1]


async def test_sync_summary_counts_posts_and_mentions_of_others(server: Server) -> None:
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    await post(server, JULIET, "hello everyone")
    await post(server, JULIET, f"dear {ROMEO}, come")
    await post(server, ROMEO, f"I am {ROMEO}", channel=JULIET)  # his own: not counted
    await post(server, JULIET, f"not a mention: x{ROMEO} or {ROMEO}.uk")

    async with server.client("romeo") as romeo:
        answer = await romeo.get(
            "/api/sync",
            params={"since": "2000-01-01T00:00:00Z", "max": "10", "summary": "true"},
        )

    summary = answer.json()[f"/user/{JULIET}/posts"]
    assert summary["totalCount"] == 3
    assert summary["mentionsCount"] == 1
    assert summary["lastPost"] >= summary["lastMention"]
    assert "lastMention" not in answer.json().get(f"/user/{ROMEO}/posts", {})


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"max": "10"}, 400),
        ({"since": "2000-01-01T00:00:00Z"}, 400),
        ({"since": "not a date", "max": "10"}, 400),
        ({"since": "2000-01-01T00:00:00Z", "max": "lots"}, 400),
        ({"since": "2000-01-01T00:00:00Z", "max": "0"}, 400),
    ],
)
async def test_bad_sync_parameters_are_400(
    server: Server, params: dict[str, str], status: int
) -> None:
    await server.add_user("romeo")
    async with server.client("romeo") as romeo:
        answer = await romeo.get("/api/sync", params=params)
    assert answer.status_code == status
    assert answer.json()["message"]


async def test_sync_needs_a_signed_in_user(server: Server) -> None:
    async with server.client() as anonymous:
        answer = await anonymous.get("/api/sync", params={"since": "2000-01-01", "max": "1"})
    assert answer.status_code == 401


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_last_reads_back_to_the_microsecond_through_a_json_number(value: datetime) -> None:
    # A JSON number read as a double, as JavaScript does, and written back.
    number = float(json.loads(json.dumps({"last": as_milliseconds(value)}))["last"])
    written = str(int(number)) if number.is_integer() else repr(number)
    assert milliseconds(written, "since") == value
