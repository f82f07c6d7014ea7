"""Failed sign-ins are limited per account and per client address (429 with Retry-After),
and the answers never tell whether an account exists; through a real uvicorn."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from http_support import PASSWORD, MakeServer, Server, live

from buddycloud.services import users


async def token(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/token", json={"username": username, "password": password})


async def test_an_account_is_locked_after_its_failures_even_for_the_right_password(
    make_server: MakeServer,
) -> None:
    async with make_server(
        BUDDYCLOUD_AUTH_MAX_ACCOUNT_FAILURES="3", BUDDYCLOUD_AUTH_FAILURE_WINDOW="60"
    ) as server:
        await server.add_user("juliet")
        await server.add_user("romeo")
        async with server.client() as client, server.client("juliet") as juliet:
            failures = [await token(client, "juliet", f"guess {n}") for n in range(3)]
            locked = await token(client, "juliet", PASSWORD)
            basic = await juliet.get("/api")
            romeo = await token(client, "romeo", PASSWORD)

    assert [answer.status_code for answer in failures] == [401, 401, 401]
    assert locked.status_code == basic.status_code == 429
    assert locked.json()["error"] == "too-many-failures"
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    assert romeo.status_code == 200


async def test_an_unknown_account_is_locked_just_like_a_real_one(make_server: MakeServer) -> None:
    async with make_server(BUDDYCLOUD_AUTH_MAX_ACCOUNT_FAILURES="2") as server:
        await server.add_user("juliet")
        async with server.client() as client:
            real = [await token(client, "juliet", "guess") for _ in range(3)]
            unknown = [await token(client, "nobody", "guess") for _ in range(3)]

    assert [a.status_code for a in real] == [a.status_code for a in unknown] == [401, 401, 429]
    for known, absent in zip(real, unknown, strict=True):
        assert known.json()["error"] == absent.json()["error"]
        assert ("retry-after" in known.headers) == ("retry-after" in absent.headers)
    assert real[0].json() == unknown[0].json()
    # The lock's message names the wait, which differs by the second the failures came.
    assert real[2].json()["message"].startswith("too many failed sign-ins; try again in")


async def test_a_client_address_is_limited_across_accounts(make_server: MakeServer) -> None:
    async with make_server(BUDDYCLOUD_AUTH_MAX_ADDRESS_FAILURES="4") as server:
        await server.add_user("juliet")
        async with server.client() as client:
            for name in ("a", "b", "c"):
                assert (await token(client, name, "guess")).status_code == 401
            forged = await client.get("/api", headers={"Authorization": "Bearer forged"})
            refused = await token(client, "juliet", PASSWORD)
            anonymous = await client.get("/api")

    assert forged.status_code == 401
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
    assert anonymous.status_code == 204  # reading as a guest needs no sign-in


async def test_a_success_clears_the_account_s_failures(make_server: MakeServer) -> None:
    async with make_server(BUDDYCLOUD_AUTH_MAX_ACCOUNT_FAILURES="3") as server:
        await server.add_user("juliet")
        async with server.client() as client:
            for _ in range(2):
                await token(client, "juliet", "guess")
            assert (await token(client, "juliet", PASSWORD)).status_code == 200
            for _ in range(2):
                await token(client, "juliet", "guess")
            assert (await token(client, "juliet", PASSWORD)).status_code == 200


async def test_a_locked_socket_is_told_so(make_server: MakeServer) -> None:
    async with make_server(BUDDYCLOUD_AUTH_MAX_ACCOUNT_FAILURES="1") as server:
        await server.add_user("juliet")
        async with server.client() as client:
            await token(client, "juliet", "guess")
        async with live(server, "juliet", welcome=False) as socket:
            refused = await socket.next()
    assert refused["error"] == "too-many-failures"


async def test_wrong_password_and_unknown_account_take_about_as_long(server: Server) -> None:
    await server.add_user("juliet")
    async with server.client() as client:
        await token(client, "warm-up", "guess")

        async def timed(username: str) -> float:
            start = time.perf_counter()
            answer = await token(client, username, "a wrong password")
            assert answer.status_code == 401
            return time.perf_counter() - start

        known = sorted([await timed("juliet") for _ in range(3)])[1]
        unknown = sorted([await timed("nobody") for _ in range(3)])[1]
        elsewhere = sorted([await timed("x@montague.lit") for _ in range(3)])[1]

    # Each includes one argon2 verification (tens of ms); without the dummy hash an unknown
    # name would answer in well under a millisecond of work.
    assert unknown > known / 3 and elsewhere > known / 3


async def test_concurrent_first_sign_ins_share_one_password_check(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    await server.add_user("juliet")
    calls = 0
    original = users._verify

    def counting(password_hash: str, password: str) -> bool:
        nonlocal calls
        calls += 1
        return original(password_hash, password)

    monkeypatch.setattr(users, "_verify", counting)
    async with server.client("juliet") as juliet:
        answers = await asyncio.gather(*(juliet.get("/api") for _ in range(8)))

    assert [answer.status_code for answer in answers] == [204] * 8
    assert calls == 1
