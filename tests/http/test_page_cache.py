"""Kept first pages (buddycloud/http/pages.py) through the real server, on SQLite and
PostgreSQL: a read that starts after a post, a retraction, a configuration change or a
deletion was acknowledged never gets the page from before it, also while other reads of
the same page run concurrently, and the permission check still runs on every read."""

from __future__ import annotations

import asyncio
import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from http_support import Server, serve

from buddycloud.domain.model import NodeId, PageRequest
from buddycloud.http.pages import CachedPage, PageCache

POSTS = "/api/juliet@capulet.lit/content/posts"
METADATA = "/api/juliet@capulet.lit/metadata/posts"
ATOM = "application/atom+xml"
A = "{http://www.w3.org/2005/Atom}"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def cast(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """A real server on each storage backend, with juliet (owner) and romeo, keeping pages.

    On PostgreSQL the server keeps no pages by default (another process may write to the
    same database); here it is told to, as for a server that is the database's only
    writer, so that the cache is tried against PostgreSQL's concurrency as well."""
    environ = {}
    if request.param == "postgres":
        environ["BUDDYCLOUD_STORAGE_URL"] = request.getfixturevalue("empty_postgres_url")
    async with serve(tmp_path, **environ) as running:
        state = running.app.http.app.state  # type: ignore[attr-defined]
        if state.http.pages.max_bytes == 0:
            pages = PageCache()
            running.app.engine.add_listener(pages)
            state.http = dataclasses.replace(state.http, pages=pages)
        await running.add_user("juliet")
        await running.add_user("romeo")
        yield running


async def _post(client: httpx.AsyncClient, text: str) -> str:
    answer = await client.post(POSTS, json={"content": text})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [entry["id"] for entry in answer.json()]


def _atom_contents(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    feed = ET.fromstring(answer.content)
    return [entry.findtext(f"{A}content") or "" for entry in feed.iter(f"{A}entry")]


async def test_a_read_after_a_post_or_retraction_sees_it(cast: Server) -> None:
    async with cast.client("juliet") as juliet, cast.client() as anonymous:
        first = await _post(juliet, "first")
        warm = [await anonymous.get(f"{POSTS}?max=5") for _ in range(2)]
        warm_atom = await anonymous.get(f"{POSTS}?max=5", headers={"Accept": ATOM})
        second = await _post(juliet, "second")
        after_post = await anonymous.get(f"{POSTS}?max=5")
        after_post_atom = await anonymous.get(f"{POSTS}?max=5", headers={"Accept": ATOM})
        retracted = await juliet.delete(f"{POSTS}/{second}")
        after_retract = await anonymous.get(f"{POSTS}?max=5")
        after_retract_atom = await anonymous.get(f"{POSTS}?max=5", headers={"Accept": ATOM})

    assert [_ids(answer) for answer in warm] == [[first], [first]]
    assert _atom_contents(warm_atom) == ["first"]
    assert _ids(after_post) == [second, first]
    assert after_post.headers["x-count"] == "2"
    assert _atom_contents(after_post_atom) == ["second", "first"]
    assert retracted.status_code == 204
    assert _ids(after_retract) == [first]
    assert _atom_contents(after_retract_atom) == ["first"]


async def test_the_permission_check_runs_for_every_read_of_a_kept_page(cast: Server) -> None:
    async with (
        cast.client("juliet") as juliet,
        cast.client("romeo") as romeo,
        cast.client() as anonymous,
    ):
        post = await _post(juliet, "before the doors closed")
        open_reads = [await anonymous.get(POSTS), await romeo.get(POSTS)]
        closed = await juliet.post(METADATA, json={"access_model": "authorize"})
        as_guest = await anonymous.get(POSTS)
        as_romeo = await romeo.get(POSTS)
        as_owner = await juliet.get(POSTS)
        deleted = await juliet.delete("/api/juliet@capulet.lit")
        after_delete = await juliet.get(POSTS)

    assert [_ids(answer) for answer in open_reads] == [[post], [post]]
    assert closed.status_code == 200, closed.text
    assert as_guest.status_code == 401
    assert as_romeo.status_code == 403
    assert _ids(as_owner) == [post]
    assert deleted.status_code == 200, deleted.text
    assert after_delete.status_code == 404


async def test_reads_racing_posts_never_get_a_page_older_than_the_last_acknowledgement(
    cast: Server,
) -> None:
    """Readers loop over the same first page while posts are made one after another;
    each read must show at least every post acknowledged before the read was sent."""
    acknowledged: list[str] = []  # post ids, oldest first, appended once answered 201
    stale: list[tuple[str, list[str]]] = []
    reads = 0
    writing = True

    async def reader(client: httpx.AsyncClient) -> None:
        nonlocal reads
        while writing:
            expected = acknowledged[-1] if acknowledged else None
            answer = await client.get(f"{POSTS}?max=3")
            ids = _ids(answer)
            reads += 1
            if expected is not None and expected not in ids:
                stale.append((expected, ids))

    async with cast.client("juliet") as juliet:
        readers = [cast.client("romeo") for _ in range(4)] + [cast.client() for _ in range(4)]
        tasks = [asyncio.create_task(reader(client)) for client in readers]
        try:
            for number in range(25):
                acknowledged.append(await _post(juliet, f"post {number}"))
                answer = await juliet.get(f"{POSTS}?max=3")
                assert _ids(answer)[0] == acknowledged[-1]
        finally:
            writing = False
            await asyncio.gather(*tasks)
            for client in readers:
                await client.aclose()

    assert stale == []
    assert reads > 25


def test_a_page_read_before_a_change_is_not_kept_after_it() -> None:
    """The race the tickets close: the page was read from storage, then a change's event
    came, then the page was offered."""
    cache = PageCache(max_bytes=1000)
    node = NodeId.parse("/user/juliet@capulet.lit/posts")
    other = NodeId.parse("/user/romeo@capulet.lit/posts")
    key = cache.key(node, _first_page(), "application/json")
    other_key = cache.key(other, _first_page(), "application/json")
    assert key is not None and other_key is not None
    page = CachedPage(b"[]", {}, "application/json")

    late = cache.ticket(node)
    unrelated = cache.ticket(other)
    cache.forget(node)
    cache.put(key, late, page)
    cache.put(other_key, unrelated, page)
    assert cache.get(key) is None
    assert cache.get(other_key) == page

    fresh = cache.ticket(node)
    cache.put(key, fresh, page)
    assert cache.get(key) == page


def test_kept_pages_stay_within_their_byte_budget_least_recently_read_first() -> None:
    cache = PageCache(max_bytes=250)
    keys = []
    for name in ("a", "b", "c"):
        node = NodeId.parse(f"/user/{name}@capulet.lit/posts")
        key = cache.key(node, _first_page(), "application/json")
        assert key is not None
        cache.put(key, cache.ticket(node), CachedPage(b"x" * 100, {}, "application/json"))
        keys.append(key)
        if name == "b":
            assert cache.get(keys[0]) is not None  # `a` read again: `b` is now the oldest

    assert cache.size == 200
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) is not None and cache.get(keys[2]) is not None
    cursor = cache.key(keys[0].node, _first_page(after="x"), "application/json")
    assert cursor is None
    assert PageCache(max_bytes=0).key(keys[0].node, _first_page(), "application/json") is None


def _first_page(after: str | None = None) -> PageRequest:
    return PageRequest(max=20, after=after)


@pytest.mark.postgres
async def test_on_postgresql_a_write_of_another_process_is_read_at_once(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    """Several servers may share one PostgreSQL database: nothing is kept, so a post that
    another server made is in the very next page this one answers."""
    async with (
        serve(tmp_path / "one", BUDDYCLOUD_STORAGE_URL=empty_postgres_url) as one,
        serve(tmp_path / "two", BUDDYCLOUD_STORAGE_URL=empty_postgres_url) as two,
    ):
        await one.add_user("juliet")
        async with one.client("juliet") as on_one, two.client("juliet") as on_two:
            first = await _post(on_one, "first, through one")
            read_before = [await on_one.get(POSTS) for _ in range(2)]
            second = await _post(on_two, "second, through two")
            read_after = await on_one.get(POSTS)

    assert [_ids(answer) for answer in read_before] == [[first], [first]]
    assert _ids(read_after) == [second, first]
