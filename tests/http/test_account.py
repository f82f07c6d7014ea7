"""Accounts over HTTP: registering, signing in with Basic, changing and deleting (reference
9.2 rows 1-4), through a real uvicorn on a real socket."""

from __future__ import annotations

import pytest
from http_support import PASSWORD, Server


async def test_a_registered_user_signs_in_and_a_wrong_password_is_refused(server: Server) -> None:
    await server.add_user("juliet")

    async with server.client("juliet") as juliet, server.client("juliet", "wrong") as liar:
        assert (await juliet.get("/api")).status_code == 204
        refused = await liar.get("/api")

    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert refused.json()["error"] == "not-authorized"


async def test_no_answer_tells_whether_an_account_exists(server: Server) -> None:
    await server.add_user("juliet")

    async with server.client("juliet", "wrong") as liar, server.client("nobody") as stranger:
        wrong_password = await liar.get("/api")
        no_account = await stranger.get("/api")

    assert wrong_password.status_code == no_account.status_code == 401
    assert wrong_password.json() == no_account.json()


async def test_anonymous_callers_are_served(server: Server) -> None:
    async with server.client() as anonymous:
        assert (await anonymous.get("/api")).status_code == 204


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "malformed-json"),
        (b"[1, 2]", 400, "bad-request"),
        (b'{"username": "juliet", "password": "balcony-at-midnight"}', 400, "bad-request"),
        (b'{"username": 7, "password": "x", "email": "a@b.c"}', 400, "bad-request"),
        (b'{"username": "juliet", "password": "short", "email": "j@example.org"}', 400, None),
        (
            b'{"username": "j@montague.lit", "password": "long enough", "email": "j@e.org"}',
            400,
            "invalid-jid",
        ),
    ],
)
async def test_bad_registrations_get_a_clear_4xx(
    server: Server, body: bytes, status: int, error: str | None
) -> None:
    async with server.client() as anonymous:
        answer = await anonymous.post(
            "/api/account", content=body, headers={"Content-Type": "application/json"}
        )

    assert answer.status_code == status
    assert answer.json()["message"]
    if error is not None:
        assert answer.json()["error"] == error


async def test_a_taken_name_is_a_conflict(server: Server) -> None:
    await server.add_user("juliet")
    async with server.client() as anonymous:
        again = await anonymous.post(
            "/api/account",
            json={"username": "juliet", "password": PASSWORD, "email": "x@example.org"},
        )
    assert again.status_code == 409


async def test_a_changed_password_works_at_once_and_the_old_one_stops(server: Server) -> None:
    await server.add_user("juliet")
    async with server.client("juliet") as juliet:
        assert (await juliet.get("/api")).status_code == 204  # cached as a good sign-in
        changed = await juliet.post("/api/account/pw/change", json={"password": "new secret!"})
        assert changed.status_code == 200
        assert (await juliet.get("/api")).status_code == 401
    async with server.client("juliet", "new secret!") as juliet:
        assert (await juliet.get("/api")).status_code == 204


async def test_a_deleted_account_can_no_longer_sign_in(server: Server) -> None:
    await server.add_user("juliet")
    async with server.client("juliet") as juliet:
        assert (await juliet.delete("/api/account")).status_code == 200
        assert (await juliet.get("/api")).status_code == 401
    async with server.client() as anonymous:
        gone = await anonymous.get("/api/juliet@capulet.lit/content/posts")
    assert gone.status_code == 404


async def test_deleting_needs_a_signed_in_user(server: Server) -> None:
    async with server.client() as anonymous:
        answer = await anonymous.delete("/api/account")
    assert answer.status_code == 401
