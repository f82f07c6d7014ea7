"""What a real server logs about requests: each line names its request and user, and no
line ever holds a password or a token."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import PASSWORD, Server, serve

from buddycloud.util.logs import ContextFilter


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at DEBUG and up, with the request context the server's handler adds."""
    context = ContextFilter()
    caplog.handler.addFilter(context)
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        caplog.handler.removeFilter(context)


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name.startswith("buddycloud")]


def about(caplog: pytest.LogCaptureFixture, request_id: str) -> list[logging.LogRecord]:
    return [r for r in ours(caplog) if f"request {request_id} " in getattr(r, "context", "")]


async def test_every_answer_carries_a_request_id(server: Server) -> None:
    async with server.client() as anonymous, server.client("juliet", "wrong-password") as wrong:
        answers = [
            await anonymous.get("/health"),
            await anonymous.get("/api/nobody@capulet.lit/content/posts"),
            await anonymous.get("/nothing/here"),
            await anonymous.delete("/api"),
            await wrong.get("/api"),
        ]
        given = await anonymous.get("/health", headers={"X-Request-Id": "lb-7f3a.01"})
        odd = await anonymous.get("/health", headers={"X-Request-Id": "two words"})
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert [answer.status_code for answer in answers] == [200, 404, 404, 405, 401]
    assert all(ids) and len(set(ids)) == len(ids)
    assert given.headers["x-request-id"] == "lb-7f3a.01"
    assert odd.headers["x-request-id"] not in ("", "two words")


async def test_lines_written_during_a_request_name_it_and_its_user(
    server: Server, logged: pytest.LogCaptureFixture
) -> None:
    async with server.client() as anonymous:
        signup = await anonymous.post(
            "/api/account",
            json={"username": "juliet", "password": PASSWORD, "email": "juliet@example.org"},
        )
    async with server.client("juliet") as juliet:
        read = await juliet.get("/api/juliet@capulet.lit/content/posts")
    async with server.client("juliet", "not-her-password") as impostor:
        refused = await impostor.get("/api/juliet@capulet.lit/content/posts")
    assert (signup.status_code, read.status_code, refused.status_code) == (200, 200, 401)

    [created] = [r for r in ours(logged) if r.getMessage() == "account juliet@capulet.lit created"]
    assert created.levelno == logging.INFO
    # A sign-up reads no credentials: its user is not known, "-".
    signup_id = signup.headers["x-request-id"]
    assert created.context == f" [request {signup_id} POST /api/account user=-]"  # type: ignore[attr-defined]

    # The sign-in is told once, as part of the request that made it.
    signed_in, access = about(logged, read.headers["x-request-id"])
    assert signed_in.getMessage() == "juliet@capulet.lit signed in"
    assert signed_in.levelno == logging.INFO
    assert access.levelno == logging.DEBUG
    assert access.name == "buddycloud.http.access"
    assert access.getMessage().startswith("GET /api/juliet@capulet.lit/content/posts answered 200")
    assert access.context.endswith(  # type: ignore[attr-defined]
        "GET /api/{channel}/content/{node} user=juliet@capulet.lit]"
    )

    [failure] = about(logged, refused.headers["x-request-id"])
    assert failure.levelno == logging.INFO
    assert "sign-in refused" in failure.getMessage()
    assert "claimed user 'juliet'" in failure.getMessage()


async def test_no_password_or_token_is_ever_logged(
    server: Server, logged: pytest.LogCaptureFixture
) -> None:
    await server.add_user("juliet")
    wrong_password = "an-entirely-wrong-password"
    token = "eyJhbGciOiJIUzI1NiJ9.bearer-token-never-logged.c2lnbmF0dXJl"
    secrets = [PASSWORD, wrong_password, token]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for password in (PASSWORD, wrong_password):
            await http.get("/api", auth=("juliet", password))
            await http.get("/api/juliet@capulet.lit/content/posts", auth=("juliet", password))
            await http.post(
                "/api/account/pw/change", auth=("juliet", password), json={"password": 42}
            )
        await http.get("/api", headers={"Authorization": f"Bearer {token}"})
        await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        await http.get(f"/api/juliet@capulet.lit/content/posts?token={token}")
        await http.get("/api", headers={"Authorization": f"Basic {token}"})
    secrets += [
        base64.b64encode(f"juliet:{p}".encode()).decode() for p in (PASSWORD, wrong_password)
    ]

    # Everything but the test's own HTTP client (httpx, httpcore), which logs its URLs.
    server_side = [r for r in logged.records if not r.name.startswith(("httpx", "httpcore"))]
    assert len(server_side) > 10
    for record in server_side:
        text = _everything_in(record)
        for secret in secrets:
            assert secret not in text, (record.name, record.getMessage())


def _everything_in(record: logging.LogRecord) -> str:
    parts: list[Any] = [record.getMessage(), record.args, getattr(record, "context", "")]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts.append(record.__dict__)
    return " ".join(str(part) for part in parts)


async def test_an_unexpected_failure_is_a_500_logged_with_its_request(
    server: Server, logged: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(server.app.engine, "require_readable", broken)
    monkeypatch.setattr(server.app.engine, "get_items", broken)
    async with server.client() as anonymous:
        answer = await anonymous.get("/api/juliet@capulet.lit/content/posts")
        after = await anonymous.get("/health")

    assert answer.status_code == 500
    assert answer.json() == {
        "error": "internal-server-error",
        "message": "the server failed to answer",
    }
    assert "broke" not in answer.text
    request_id = answer.headers["x-request-id"]
    lines = about(logged, request_id)
    [error] = [r for r in lines if r.levelno == logging.ERROR]
    assert error.exc_info is not None and "the engine broke" in str(error.exc_info[1])
    [access] = [r for r in lines if r.name == "buddycloud.http.access"]
    assert access.levelno == logging.WARNING and "answered 500" in access.getMessage()
    # Logged once, by the funnel: not again as a crash of the ASGI application.
    assert not [r for r in logged.records if r.name.startswith("uvicorn") and r.exc_info]
    assert after.status_code == 200


async def test_refusals_and_missing_things_are_answers_not_errors(
    server: Server, logged: pytest.LogCaptureFixture
) -> None:
    async with server.client() as anonymous:
        assert (await anonymous.get("/api/nobody@capulet.lit/content/posts")).status_code == 404
        assert (await anonymous.get("/api/not a jid/content/posts")).status_code == 400
        assert (await anonymous.post("/api/account", content=b"{")).status_code == 400
    assert [r for r in logged.records if r.levelno >= logging.WARNING] == []


async def test_access_log_writes_every_request_at_info(
    tmp_path: Path, logged: pytest.LogCaptureFixture
) -> None:
    async with serve(tmp_path, BUDDYCLOUD_HTTP_ACCESS_LOG="true") as server:
        async with server.client() as anonymous:
            answer = await anonymous.get("/health")
    [access] = about(logged, answer.headers["x-request-id"])
    assert access.levelno == logging.INFO
    assert access.getMessage().startswith("GET /health answered 200 in ")
