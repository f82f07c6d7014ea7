"""The `secret` sign-in method: tokens the app signs with the shared secret are accepted as
their user, and every malformed, expired or forged one is refused (docs/auth.md)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from http_support import MakeServer, Server, live

APP_SECRET = "the app and the server share this secret, 32+ bytes"
POSTS = "/api/juliet@capulet.lit/content/posts"


@pytest.fixture
async def app_server(make_server: MakeServer) -> AsyncIterator[Server]:
    async with make_server(
        BUDDYCLOUD_AUTH_METHODS="database,secret", BUDDYCLOUD_AUTH_SECRET=APP_SECRET
    ) as server:
        yield server


def app_token(key: str = APP_SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": "juliet@capulet.lit", "iat": now, "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unsigned(**claims: Any) -> str:
    """A token with `alg: none` and no signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"sub": "juliet@capulet.lit", "iat": now, "exp": now + 300, **claims}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


async def test_an_app_token_signs_its_user_in_and_makes_their_channel(app_server: Server) -> None:
    token = app_token()
    async with app_server.client() as client:
        check = await client.get("/api", headers=bearer(token))
        posted = await client.post(POSTS, json={"content": "hi"}, headers=bearer(token))
        read = await client.get(POSTS)
    assert check.status_code == 204
    assert posted.status_code == 201
    assert [entry["content"] for entry in read.json()] == ["hi"]


async def test_an_app_token_buys_a_server_token(app_server: Server) -> None:
    async with app_server.client() as client:
        exchanged = await client.post("/api/auth/token", headers=bearer(app_token()))
        token = exchanged.json()["token"]
        check = await client.get("/api", headers=bearer(token))
    assert exchanged.status_code == 200
    assert exchanged.json()["jid"] == "juliet@capulet.lit"
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == "buddycloud"
    assert check.status_code == 204


async def test_a_browser_opens_the_websocket_with_an_app_token(app_server: Server) -> None:
    async with live(app_server, None, query=f"token={app_token()}") as juliet:
        await juliet.nothing_pending()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no exp", "no exp claim"),
        ("past exp", "expired"),
        ("no iat", "no iat claim"),
        ("no sub", "no sub claim"),
        ("wrong signature", "signature is wrong"),
        ("alg none", "HS256"),
        ("alg HS512", "HS256"),
        ("sub of another domain", "must be a user of capulet.lit"),
        ("sub of the topics domain", "must be a user of capulet.lit"),
        ("sub with a resource", "must be a user of capulet.lit"),
        ("sub a domain", "must be a user of capulet.lit"),
        ("sub not a string", "sub is not a JID"),
        ("not a jwt", "not a JWT"),
    ],
)
async def test_bad_app_tokens_are_refused(app_server: Server, case: str, message: str) -> None:
    now = int(time.time())
    token = {
        "no exp": lambda: app_token(exp=None),
        "past exp": lambda: app_token(iat=now - 600, exp=now - 60),
        "no iat": lambda: app_token(iat=None),
        "no sub": lambda: app_token(sub=None),
        "wrong signature": lambda: app_token(key="not the shared secret, but as long as it"),
        "alg none": unsigned,
        "alg HS512": lambda: app_token(key=APP_SECRET * 2, algorithm="HS512"),
        "sub of another domain": lambda: app_token(sub="romeo@montague.lit"),
        "sub of the topics domain": lambda: app_token(sub="balcony@topics.capulet.lit"),
        "sub with a resource": lambda: app_token(sub="juliet@capulet.lit/phone"),
        "sub a domain": lambda: app_token(sub="capulet.lit"),
        "sub not a string": lambda: app_token(sub=7),
        "not a jwt": lambda: "juliet",
    }[case]()
    async with app_server.client() as client:
        check = await client.get("/api", headers=bearer(token))
        exchange = await client.post("/api/auth/token", headers=bearer(token))
        posted = await client.post(POSTS, json={"content": "x"}, headers=bearer(token))
    for answer in (check, exchange, posted):
        assert answer.status_code == 401, (case, answer.text)
        assert answer.json()["error"] == "not-authorized"
    assert message in check.json()["message"]


async def test_app_tokens_are_refused_without_the_secret_method(make_server: MakeServer) -> None:
    async with (
        make_server(BUDDYCLOUD_AUTH_SECRET=APP_SECRET) as server,
        server.client() as client,
    ):
        answer = await client.get("/api", headers=bearer(app_token()))
    assert answer.status_code == 401
    assert answer.json()["error"] == "not-authorized"
