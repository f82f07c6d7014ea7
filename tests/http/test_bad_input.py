"""Bad input over HTTP: a 4xx with a JSON body naming the problem, never a 5xx, and the
server keeps serving; CORS as the original API (reference 9.1); one answer per request."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from http_support import Server

POSTS = "/api/juliet@capulet.lit/content/posts"


@pytest.fixture
async def juliet(server: Server) -> Server:
    await server.add_user("juliet")
    return server


def _named(answer: httpx.Response, status: int, error: str, words: str = "") -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == error, body
    assert words.lower() in body["message"].lower(), body


async def test_malformed_bodies_are_named(juliet: Server) -> None:
    entities = (
        '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<entry xmlns="http://www.w3.org/2005/Atom"><content>&b;</content></entry>'
    )
    deep = "<a>" * 100 + "</a>" * 100
    deep_json = "[" * 100_000 + "]" * 100_000
    async with juliet.client("juliet") as client:
        cases = {
            "json": await client.post(
                POSTS, content=b'{"content": ', headers={"Content-Type": "application/json"}
            ),
            "xml": await client.post(
                POSTS, content=b"<entry><content>", headers={"Content-Type": "application/xml"}
            ),
            "entities": await client.post(
                POSTS, content=entities, headers={"Content-Type": "application/atom+xml"}
            ),
            "deep": await client.post(
                POSTS, content=deep, headers={"Content-Type": "application/xml"}
            ),
            "deep_json": await client.post(
                POSTS, content=deep_json, headers={"Content-Type": "application/json"}
            ),
            "latin1": await client.post(
                POSTS,
                content="<entry>caf\xe9</entry>".encode("latin-1"),
                headers={"Content-Type": "application/xml"},
            ),
            "surrogate": await client.post(
                POSTS,
                content=b'{"content": "\\ud800"}',
                headers={"Content-Type": "application/json"},
            ),
            "text": await client.post(
                POSTS, content=b"hello", headers={"Content-Type": "text/plain"}
            ),
            "empty": await client.post(POSTS, content=b""),
            "list": await client.post(POSTS, json=["content"]),
            "content_type": await client.post(POSTS, json={"content": 5}),
            "media": await client.post(POSTS, json={"content": "x", "media": [{"id": 1}]}),
            "media_kind": await client.post(POSTS, json={"content": "x", "media": "photo"}),
            "no_content": await client.post(POSTS, json={"title": "only a title"}),
            "not_an_entry": await client.post(
                POSTS, content=b"<note xmlns='x'/>", headers={"Content-Type": "application/xml"}
            ),
            "metadata_text": await client.post(
                "/api/juliet@capulet.lit/metadata/posts",
                content=b"title=x",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
        }
        still_serving = await client.get(POSTS)

    _named(cases["json"], 400, "malformed-json", "not JSON")
    _named(cases["xml"], 400, "malformed-xml", "XML")
    _named(cases["entities"], 400, "malformed-xml", "XML")
    _named(cases["deep"], 400, "malformed-xml", "deeper than 32")
    _named(cases["deep_json"], 400, "malformed-json")
    _named(cases["latin1"], 400, "malformed-xml", "UTF-8")
    _named(cases["surrogate"], 400, "malformed-json", "surrogate")
    _named(cases["text"], 415, "unsupported-media-type", "text/plain")
    _named(cases["empty"], 400, "bad-request", "empty")
    _named(cases["list"], 400, "bad-request", "JSON object")
    _named(cases["content_type"], 400, "bad-request", "'content' must be a string")
    _named(cases["media"], 400, "bad-request", "media")
    _named(cases["media_kind"], 400, "bad-request", "media")
    _named(cases["no_content"], 400, "invalid-payload", "content")
    _named(cases["not_an_entry"], 400, "invalid-payload", "Atom entries")
    _named(cases["metadata_text"], 415, "unsupported-media-type", "application/json")
    assert still_serving.status_code == 200 and still_serving.json() == []


async def test_oversized_bodies_are_413(juliet: Server) -> None:
    huge = b"{" + b" " * (1024 * 1024) + b"}"
    big_post = {"content": "x" * 70_000}
    async with juliet.client("juliet") as client:
        declared = await client.post(
            POSTS, content=huge, headers={"Content-Type": "application/json"}
        )

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b" " * 65536

        streamed = await client.post(
            POSTS, content=chunks(), headers={"Content-Type": "application/json"}
        )
        too_big_entry = await client.post(POSTS, json=big_post)
    _named(declared, 413, "body-too-large", "larger than")
    _named(streamed, 413, "body-too-large", "larger than")
    _named(too_big_entry, 413, "payload-too-large", "limit")


async def test_bad_names_ids_and_paging_values(juliet: Server) -> None:
    async with juliet.client() as client:
        cases = {
            "channel": await client.get("/api/juliet/content/posts"),
            "resource": await client.get("/api/juliet@capulet.lit%2Fphone/content/posts"),
            "node": await client.get("/api/juliet@capulet.lit/content/bad%20node"),
            "item": await client.get(f"{POSTS}/bad%20id"),
            "max": await client.get(POSTS, params={"max": "-1"}),
            "max_huge": await client.get(POSTS, params={"max": "99999999"}),
            "both": await client.get(POSTS, params={"after": "a", "before": "b"}),
            "cursor": await client.get(POSTS, params={"after": "x" * 2000}),
            "unknown_cursor": await client.get(POSTS, params={"after": "nothing"}),
            "unknown_parameter": await client.get(POSTS, params={"maxx": "5"}),
        }
    _named(cases["channel"], 400, "invalid-node", "bare JID")
    _named(cases["resource"], 404, "no-such-endpoint")
    _named(cases["node"], 400, "invalid-node", "node name")
    _named(cases["item"], 400, "bad-request", "item id")
    _named(cases["max"], 400, "invalid-paging", "max")
    _named(cases["max_huge"], 400, "invalid-paging", "max")
    _named(cases["both"], 400, "invalid-paging", "not both")
    _named(cases["cursor"], 400, "invalid-paging", "after")
    _named(cases["unknown_cursor"], 404, "item-not-found")
    _named(cases["unknown_parameter"], 400, "unknown-parameter", "'maxx'")


@pytest.mark.parametrize(
    "header",
    ["Basic", "Basic !!!", "Basic " + "a" * 9000, "Bearer", "Basic anVsaWV0", "Digest x=y"],
)
async def test_a_malformed_authorization_header_is_a_clean_401(juliet: Server, header: str) -> None:
    """The original passed a malformed header to Express's error handler (reference 9.1)."""
    async with juliet.client() as client:
        answer = await client.get(POSTS, headers={"Authorization": header})
    _named(answer, 401, "not-authorized")
    assert answer.headers["www-authenticate"].startswith("Basic")


async def test_an_unexpected_failure_is_one_500_without_detail(
    juliet: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug answers once (the original also tried a second answer), logs its traceback,
    and tells the client nothing of it; refusals log nothing."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail at db.internal")

    monkeypatch.setattr(juliet.app.engine, "get_items", broken)
    async with juliet.client() as client:
        with caplog.at_level(logging.INFO):
            failed = await client.get(POSTS, headers={"Origin": "https://app.example"})
            refused = await client.post(POSTS, json={"content": "x"})
        after = await client.get("/api/juliet@capulet.lit/metadata/posts")
    assert failed.status_code == 500
    assert failed.json() == {
        "error": "internal-server-error",
        "message": "the server failed to answer",
    }
    assert "secret" not in failed.text
    assert refused.status_code == 401
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) == 1 and "secret detail" in str(tracebacks[0].exc_info[1])
    assert after.status_code == 200


async def test_cors_as_the_original_api(juliet: Server) -> None:
    origin = "https://app.example"
    async with juliet.client("juliet") as client:
        preflight = await client.options(
            POSTS,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Content-Type, X-Requested-With",
            },
        )
        posted = await client.post(POSTS, json={"content": "hi"}, headers={"Origin": origin})
        page = await client.get(POSTS, headers={"Origin": origin})
    async with juliet.client() as anonymous:
        refused = await anonymous.post(POSTS, json={"content": "x"}, headers={"Origin": origin})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-max-age"] == "86400"
    assert preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-credentials"] == "true"
    allowed = {m.strip() for m in preflight.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE"} <= allowed
    headers = preflight.headers["access-control-allow-headers"].lower()
    for name in ("authorization", "content-type", "x-requested-with", "x-session-id"):
        assert name in headers
    for answer in (posted, page, refused):
        assert answer.headers["access-control-allow-origin"] == origin
        assert answer.headers["access-control-allow-credentials"] == "true"
    exposed = posted.headers["access-control-expose-headers"].lower()
    for name in ("location", "x-first", "x-last", "x-count"):
        assert name in exposed
    assert refused.status_code == 401


async def test_unknown_paths_and_methods(juliet: Server) -> None:
    async with juliet.client("juliet") as client:
        nowhere = await client.get("/api/juliet@capulet.lit/nothing/posts/at/all")
        patch = await client.patch(POSTS, json={})
        threads_delete = await client.delete(f"{POSTS}/threads")
        docs_post = await client.post("/api/openapi.json")
    _named(nowhere, 404, "no-such-endpoint")
    _named(patch, 405, "method-not-allowed", "PATCH")
    assert set(patch.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "PUT"}
    _named(threads_delete, 405, "method-not-allowed")
    _named(docs_post, 405, "method-not-allowed")
    assert json.loads(patch.content)["message"].endswith(POSTS)
