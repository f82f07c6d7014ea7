"""The `remote` sign-in method against a real small HTTP server on loopback standing in for
the app's own API: good, wrong, slow, dead and garbage answers (docs/auth.md, "remote")."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from http_support import PASSWORD, MakeServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from buddycloud.http.server import HttpServer

APP_PASSWORD = "the app's own password"
TIMEOUT = 1


@dataclass
class FakeApp:
    """What the app's API was asked."""

    url: str = ""
    asked: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)


@pytest.fixture
async def app_api() -> AsyncIterator[FakeApp]:
    record = FakeApp()

    async def check(request: Request) -> Response:
        body = json.loads(await request.body())
        record.asked.append(body)
        record.content_types.append(request.headers.get("content-type", ""))
        name = body["localpart"]
        if name == "slow":
            await asyncio.sleep(TIMEOUT * 10)
        if name == "refused":
            return Response(status_code=401)
        if name == "garbage":
            return PlainTextResponse("yes")
        if name == "broken":
            return Response(status_code=500)
        if name == "vague":
            return JSONResponse({"ok": "yes"})
        if name == "moved":
            return RedirectResponse("/elsewhere", status_code=302)
        return JSONResponse({"ok": name in ("juliet", "slow") and body["password"] == APP_PASSWORD})

    server = HttpServer(
        Starlette(routes=[Route("/check", check, methods=["POST"])]), "127.0.0.1", 0
    )
    await server.start()
    record.url = f"http://127.0.0.1:{server.port}/check"
    try:
        yield record
    finally:
        await server.stop()


def remote(url: str, methods: str = "remote") -> dict[str, str]:
    return {
        "BUDDYCLOUD_AUTH_METHODS": methods,
        "BUDDYCLOUD_AUTH_REMOTE_URL": url,
        "BUDDYCLOUD_AUTH_REMOTE_TIMEOUT": str(TIMEOUT),
    }


async def test_the_app_vouches_for_its_user_who_gets_a_channel(
    make_server: MakeServer, app_api: FakeApp
) -> None:
    async with make_server(**remote(app_api.url)) as server:
        async with server.client("juliet", APP_PASSWORD) as juliet:
            check = await juliet.get("/api")
            posted = await juliet.post(
                "/api/juliet@capulet.lit/content/posts", json={"content": "hi"}
            )
            token = await juliet.post("/api/auth/token")

    assert check.status_code == 204
    assert posted.status_code == 201
    assert token.status_code == 200 and token.json()["jid"] == "juliet@capulet.lit"
    assert app_api.asked[0] == {
        "username": "juliet@capulet.lit",
        "localpart": "juliet",
        "domain": "capulet.lit",
        "password": APP_PASSWORD,
    }
    assert app_api.content_types[0] == "application/json"
    # A good answer is remembered: three requests, one question.
    assert len(app_api.asked) == 1


@pytest.mark.parametrize(("name", "password"), [("juliet", "wrong"), ("refused", APP_PASSWORD)])
async def test_the_app_says_no_and_is_asked_again_every_time(
    make_server: MakeServer, app_api: FakeApp, name: str, password: str
) -> None:
    async with make_server(**remote(app_api.url)) as server:
        async with server.client(name, password) as stranger:
            answers = [await stranger.get("/api") for _ in range(2)]
    assert [answer.status_code for answer in answers] == [401, 401]
    assert answers[0].json()["error"] == "not-authorized"
    assert len(app_api.asked) == 2  # failures are never remembered


@pytest.mark.parametrize("name", ["slow", "garbage", "broken", "vague", "moved"])
async def test_an_app_that_answers_badly_or_late_is_503_within_the_timeout(
    make_server: MakeServer, app_api: FakeApp, name: str
) -> None:
    async with make_server(**remote(app_api.url)) as server:
        async with server.client(name, APP_PASSWORD) as user:
            start = time.monotonic()
            answer = await user.get("/api")
            took = time.monotonic() - start

    assert answer.status_code == 503
    assert answer.json()["error"] == "sign-in-unavailable"
    assert app_api.url not in answer.text  # where the app lives is the operator's business
    assert took < TIMEOUT + 2


async def test_a_dead_app_is_503_at_once(make_server: MakeServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    async with make_server(**remote(f"http://127.0.0.1:{dead_port}/check")) as server:
        async with server.client("juliet", APP_PASSWORD) as juliet:
            start = time.monotonic()
            answer = await juliet.get("/api")
            took = time.monotonic() - start
    assert answer.status_code == 503
    assert took < TIMEOUT + 2


async def test_the_other_methods_still_answer_while_the_app_is_down(
    make_server: MakeServer, app_api: FakeApp
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{dead_port}/check"
    async with make_server(**remote(url, methods="remote,database")) as server:
        await server.add_user("romeo")
        async with server.client("romeo") as romeo, server.client("romeo", "wrong") as liar:
            good = await romeo.get("/api")
            unknown = await liar.get("/api")
    assert good.status_code == 204  # the database said yes
    assert unknown.status_code == 503  # nobody said yes, and one could not answer
    assert PASSWORD not in unknown.text
