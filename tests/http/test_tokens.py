"""Signing in for a bearer token, refreshing it, signing out (docs/http.md, "Signing in"),
through a real uvicorn on a real socket."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import jwt
import pytest
from http_support import DOMAIN, PASSWORD, MakeServer, Server, basic, live, serve
from websockets.asyncio.client import connect

from buddycloud.domain.jid import Jid
from buddycloud.http.auth import Authenticator
from buddycloud.http.tokens import TokenClaims, issue
from buddycloud.http.websocket import CLOSE_NOT_AUTHENTICATED

JULIET = Jid("juliet", DOMAIN)
POSTS = "/api/juliet@capulet.lit/content/posts"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(server: Server, username: str = "juliet", password: str = PASSWORD) -> str:
    async with server.client() as anonymous:
        answer = await anonymous.post(
            "/api/auth/token", json={"username": username, "password": password}
        )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def authenticator(server: Server) -> Authenticator:
    found: Authenticator = server.app.http.app.state.http.authenticator  # type: ignore[attr-defined]
    return found


async def test_a_username_and_password_buy_a_token_that_signs_in_everywhere(
    server: Server,
) -> None:
    await server.add_user("juliet")
    async with server.client() as anonymous:
        answer = await anonymous.post(
            "/api/auth/token", json={"username": "juliet", "password": PASSWORD}
        )
        token = answer.json()["token"]
        posted = await anonymous.post(POSTS, json={"content": "hi"}, headers=bearer(token))
        check = await anonymous.get("/api", headers=bearer(token))

    assert answer.status_code == 200
    assert answer.json() == {
        "token": token,
        "token_type": "Bearer",
        "expires_in": 900,
        "jid": "juliet@capulet.lit",
    }
    assert answer.headers["cache-control"] == "no-store"
    assert posted.status_code == 201
    assert check.status_code == 204


async def test_basic_credentials_buy_a_token_too(server: Server) -> None:
    await server.add_user("juliet")
    async with server.client("juliet") as juliet:
        answer = await juliet.post("/api/auth/token")
    assert answer.status_code == 200
    assert answer.json()["jid"] == "juliet@capulet.lit"


async def test_wrong_credentials_get_one_answer_whether_or_not_the_account_exists(
    server: Server,
) -> None:
    await server.add_user("juliet")
    async with server.client() as anonymous:
        wrong = await anonymous.post(
            "/api/auth/token", json={"username": "juliet", "password": "not the one"}
        )
        absent = await anonymous.post(
            "/api/auth/token", json={"username": "nobody", "password": "not the one"}
        )
        elsewhere = await anonymous.post(
            "/api/auth/token", json={"username": "r@montague.lit", "password": "not the one"}
        )

    assert wrong.status_code == absent.status_code == elsewhere.status_code == 401
    assert wrong.json() == absent.json() == elsewhere.json()
    assert wrong.json()["error"] == "not-authorized"
    assert wrong.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({}, None, 401, "not-authenticated"),
        ({"Authorization": basic("juliet")}, {"username": "juliet", "password": "x"}, 400, None),
        ({}, {"username": "juliet"}, 400, "bad-request"),
        ({}, {"username": 7, "password": "x"}, 400, "bad-request"),
        ({"Authorization": "Bearer not.a.jwt"}, None, 401, "not-authorized"),
        ({"Authorization": "Bearer"}, None, 401, "not-authorized"),
    ],
)
async def test_bad_sign_in_requests_are_named(
    server: Server,
    headers: dict[str, str],
    body: dict[str, object] | None,
    status: int,
    error: str | None,
) -> None:
    await server.add_user("juliet")
    async with server.client() as anonymous:
        answer = await anonymous.post("/api/auth/token", json=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["message"]
    if error is not None:
        assert answer.json()["error"] == error


async def test_a_token_is_refreshed_within_its_session(server: Server) -> None:
    await server.add_user("juliet")
    token = await sign_in(server)
    async with server.client() as anonymous:
        refreshed = await anonymous.post("/api/auth/token", headers=bearer(token))
        fresh = refreshed.json()["token"]
        check = await anonymous.get("/api", headers=bearer(fresh))

    assert refreshed.status_code == 200
    assert check.status_code == 204
    claims = jwt.decode(fresh, options={"verify_signature": False})
    first = jwt.decode(token, options={"verify_signature": False})
    assert claims["sat"] == first["sat"]  # the same session


async def test_no_refresh_once_the_session_is_over(server: Server) -> None:
    await server.add_user("juliet")
    key = await authenticator(server).token_key()
    now = int(time.time())
    # A token the server itself issued near the end of a session begun 7 days ago.
    old_session = issue(
        key, TokenClaims(JULIET, now - 7 * 24 * 3600 - 5, 0), now=now - 10, expires=now + 60
    )
    async with server.client() as anonymous:
        still_good = await anonymous.get("/api", headers=bearer(old_session))
        refresh = await anonymous.post("/api/auth/token", headers=bearer(old_session))

    assert still_good.status_code == 204
    assert refresh.status_code == 401
    assert "sign in again" in refresh.json()["message"]


async def test_the_last_token_of_a_session_ends_with_it(make_server: MakeServer) -> None:
    async with make_server(
        BUDDYCLOUD_AUTH_TOKEN_LIFETIME="600", BUDDYCLOUD_AUTH_SESSION_LIFETIME="3600"
    ) as server:
        await server.add_user("juliet")
        key = await authenticator(server).token_key()
        now = int(time.time())
        late = issue(key, TokenClaims(JULIET, now - 3500, 0), now=now - 10, expires=now + 60)
        async with server.client() as anonymous:
            refreshed = await anonymous.post("/api/auth/token", headers=bearer(late))
    assert refreshed.status_code == 200
    assert 95 <= refreshed.json()["expires_in"] <= 100


@pytest.mark.parametrize("case", ["expired", "forged", "other domain", "none", "garbage"])
async def test_bad_tokens_are_refused(server: Server, case: str) -> None:
    await server.add_user("juliet")
    key = await authenticator(server).token_key()
    now = int(time.time())
    claims = TokenClaims(JULIET, now, 0)
    token = {
        "expired": lambda: issue(key, claims, now=now - 1000, expires=now - 100),
        "forged": lambda: issue("k" * 40, claims, now=now, expires=now + 100),
        "other domain": lambda: issue(
            key, TokenClaims(Jid("juliet", "montague.lit"), now, 0), now=now, expires=now + 100
        ),
        "none": lambda: jwt.encode(
            {"iss": "buddycloud", "sub": "juliet@capulet.lit", "iat": now, "exp": now + 100},
            None,
            algorithm="none",
        ),
        "garbage": lambda: "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
    }[case]()
    async with server.client() as anonymous:
        answer = await anonymous.get("/api", headers=bearer(token))
        refresh = await anonymous.post("/api/auth/token", headers=bearer(token))
    assert answer.status_code == refresh.status_code == 401
    assert answer.json()["error"] == "not-authorized"


async def test_signing_out_revokes_every_token_of_the_user(server: Server) -> None:
    await server.add_user("juliet")
    phone, laptop = await sign_in(server), await sign_in(server)
    async with server.client() as anonymous:
        out = await anonymous.delete("/api/auth/token", headers=bearer(phone))
        phone_after = await anonymous.get("/api", headers=bearer(phone))
        laptop_after = await anonymous.post("/api/auth/token", headers=bearer(laptop))
        again_out = await anonymous.delete("/api/auth/token", headers=bearer(phone))
    fresh = await sign_in(server)
    async with server.client() as anonymous:
        fresh_works = await anonymous.get("/api", headers=bearer(fresh))

    assert out.status_code == 204
    assert phone_after.status_code == laptop_after.status_code == again_out.status_code == 401
    assert phone_after.json()["error"] == "not-authorized"
    assert fresh_works.status_code == 204


async def test_a_new_password_revokes_the_tokens(server: Server) -> None:
    await server.add_user("juliet")
    token = await sign_in(server)
    async with server.client() as anonymous:
        changed = await anonymous.post(
            "/api/account/pw/change", json={"password": "a new password"}, headers=bearer(token)
        )
        after = await anonymous.get("/api", headers=bearer(token))
    assert changed.status_code == 200
    assert after.status_code == 401
    assert await sign_in(server, password="a new password")


async def test_a_deleted_account_s_tokens_stop_and_a_new_account_of_that_name_gets_none(
    server: Server,
) -> None:
    await server.add_user("juliet")
    token = await sign_in(server)
    async with server.client() as anonymous:
        deleted = await anonymous.delete("/api/account", headers=bearer(token))
        await server.add_user("juliet", password="someone else's")
        after = await anonymous.get("/api", headers=bearer(token))
    assert deleted.status_code == 200
    assert after.status_code == 401


async def test_tokens_outlive_a_restart(tmp_path: Path) -> None:
    async with serve(tmp_path) as first:
        await first.add_user("juliet")
        token = await sign_in(first)
    async with serve(tmp_path) as second, second.client() as anonymous:
        answer = await anonymous.get("/api", headers=bearer(token))
    assert answer.status_code == 204


async def test_a_configured_token_key_signs_the_tokens(make_server: MakeServer) -> None:
    key = "an operator's own key of 32 bytes or more"
    async with make_server(BUDDYCLOUD_AUTH_TOKEN_KEY=key) as server:
        await server.add_user("juliet")
        token = await sign_in(server)
    claims = jwt.decode(token, key, algorithms=["HS256"])
    assert claims["sub"] == "juliet@capulet.lit"
    assert claims["exp"] - claims["iat"] == 900


async def test_a_browser_opens_the_websocket_with_its_token(server: Server) -> None:
    await server.add_user("juliet")
    token = await sign_in(server)
    async with live(server, None, query=f"token={token}") as juliet:
        await juliet.nothing_pending()
    url = server.url.replace("http://", "ws://") + "/api/ws"
    async with connect(url, additional_headers=bearer(token)) as socket:
        assert '"welcome"' in str(await socket.recv())
    async with httpx.AsyncClient(base_url=server.url) as client:
        await client.delete("/api/auth/token", headers=bearer(token))
    async with live(server, None, query=f"token={token}", welcome=False) as stranger:
        refused = await stranger.next()
        await stranger.connection.wait_closed()
    assert refused["error"] == "not-authorized"
    assert stranger.connection.close_code == CLOSE_NOT_AUTHENTICATED


async def test_no_password_or_token_reaches_the_logs(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    await server.add_user("juliet")
    with caplog.at_level(logging.DEBUG):
        token = await sign_in(server)
        async with server.client() as anonymous:
            await anonymous.post("/api/auth/token", headers=bearer(token))
            await anonymous.post(
                "/api/auth/token", json={"username": "juliet", "password": "wrong-password!"}
            )
            await anonymous.delete("/api/auth/token", headers=bearer(token))
        async with live(server, None, query=f"token={token}", welcome=False) as socket:
            await socket.next()
    # The server's own lines: the test's clients log what they send at DEBUG.
    logged = "\n".join(
        f"{record.getMessage()} {getattr(record, 'context', '')}"
        for record in caplog.records
        if record.name.startswith(("buddycloud", "uvicorn", "starlette"))
    )
    assert "sign-in refused: POST /api/auth/token (claimed user 'juliet')" in logged
    for secret in (PASSWORD, "wrong-password!", token, token.split(".")[2]):
        assert secret not in logged, [r.name for r in caplog.records if secret in r.getMessage()]
