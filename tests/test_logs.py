"""Log lines name the request they were written for (buddycloud.util.logs)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from pathlib import Path

import httpx
import websockets
from e2e.harness import ServerProcess
from http_support import basic

from buddycloud.prosody import free_port
from buddycloud.util import logs


def test_lines_written_during_a_request_carry_its_context() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("buddycloud.test.logs")
    handler = logs.context_handler(logging.StreamHandler(stream))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("before")
        token = logs.current.set("request 1f2e GET /api user=juliet@capulet.lit")
        try:
            logger.info("during %s", "it")
        finally:
            logs.current.reset(token)
        logger.info("after")
    finally:
        logger.removeHandler(handler)
    lines = [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == [
        "before",
        "during it [request 1f2e GET /api user=juliet@capulet.lit]",
        "after",
    ]


async def test_tasks_started_by_a_request_name_it_too() -> None:
    seen: list[str] = []
    record_filter = logs.ContextFilter()

    async def child() -> None:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        record_filter.filter(record)
        seen.append(record.context)  # type: ignore[attr-defined]

    token = logs.current.set("request abc")
    try:
        task = asyncio.create_task(child())
    finally:
        logs.current.reset(token)
    await task
    await asyncio.create_task(child())
    assert seen == [" [request abc]", ""]


def test_the_json_format_writes_one_object_per_line() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("buddycloud.test.json")
    handler = logs.context_handler(logging.StreamHandler(stream), "json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        token = logs.current.set("request 1f2e GET /api")
        try:
            logger.info("two\nlines")
        finally:
            logs.current.reset(token)
        try:
            raise ValueError("broken")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "two\nlines" and first["context"] == "request 1f2e GET /api"
    assert (first["level"], first["logger"]) == ("INFO", "buddycloud.test.json")
    assert first["time"].endswith("+00:00")
    assert second["message"] == "failed" and "ValueError: broken" in second["exception"]
    assert "context" not in second


# --- the log of a real server ------------------------------------------------------------

PASSWORD = "balcony-at-midnight"
ROMEO_PASSWORD = "wherefore-art-thou"


async def answering(http: httpx.AsyncClient, server: ServerProcess) -> None:
    """Wait until the server answers HTTP (whatever its log says)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if (await http.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.running, server.log_tail()
        assert time.monotonic() < deadline, server.log_tail()
        await asyncio.sleep(0.05)  # polling interval of a condition with a deadline


async def run_server_and_use_it(tmp_path: Path, *args: str, env: dict[str, str]) -> str:
    """`buddycloud serve` on a fresh SQLite database, used over HTTP: two sign-ups, a
    post, a follow, a websocket, a refused sign-in; its whole output once stopped."""
    port = free_port()
    server = ServerProcess(
        None,
        tmp_path,
        c2s_port=0,
        args=args,
        env={"BUDDYCLOUD_HTTP_LISTEN": f"127.0.0.1:{port}", **env},
    )
    server.spawn()
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            await answering(http, server)
            for user, password in (("juliet", PASSWORD), ("romeo", ROMEO_PASSWORD)):
                made = await http.post(
                    "/api/account",
                    json={"username": user, "password": password, "email": f"{user}@e.org"},
                )
                assert made.status_code == 200, made.text
            posted = await http.post(
                "/api/juliet@localhost/content/posts",
                json={"content": "O Romeo"},
                auth=("juliet", PASSWORD),
            )
            assert posted.status_code == 201, posted.text
            followed = await http.post(
                "/api/subscribed",
                json={"juliet@localhost/posts": "follower"},
                auth=("romeo", ROMEO_PASSWORD),
            )
            assert followed.status_code == 200, followed.text
            refused = await http.get("/api", auth=("romeo", "not-" + ROMEO_PASSWORD))
            assert refused.status_code == 401
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/api/ws",
            additional_headers={"Authorization": basic("juliet", PASSWORD)},
        ) as socket:
            assert json.loads(await socket.recv())["type"] == "welcome"
        if "warning" not in args:
            await server.wait_for_log("websocket of juliet@localhost closed")
    finally:
        status = server.stop()
    assert status == 0, server.log_tail()
    return server.log_path.read_text()


async def test_at_info_the_log_tells_what_happened_once_and_never_a_password(
    tmp_path: Path,
) -> None:
    output = await run_server_and_use_it(tmp_path, env={"BUDDYCLOUD_LOG_FORMAT": "json"})
    entries = [json.loads(line) for line in output.splitlines()]  # every line is an object
    messages = [entry["message"] for entry in entries]
    steps = [m for m in messages if m.startswith("Running upgrade")]
    assert steps and len(steps) == len(set(steps)), messages
    assert not [m for m in messages if "Context impl" in m or "Will assume" in m]
    for expected in (
        "account juliet@localhost created",
        "channel juliet@localhost created (personal, owner juliet@localhost)",
        "juliet@localhost signed in",
        "romeo@localhost signed in",
        "juliet@localhost: the subscription of romeo@localhost is now subscribed (role publisher)",
        "websocket of juliet@localhost opened",
        "websocket of juliet@localhost closed",
    ):
        assert messages.count(expected) == 1, (expected, messages)
    assert any(m.startswith("sign-in refused") and "romeo" in m for m in messages), messages
    for secret in (PASSWORD, ROMEO_PASSWORD):
        assert secret not in output
    texts = [(entry["logger"], entry["message"]) for entry in entries]
    assert len(texts) == len(set(texts)), "a line was written twice"


async def test_log_level_flag_wins_over_the_configuration(tmp_path: Path) -> None:
    output = await run_server_and_use_it(
        tmp_path, "--log-level", "warning", env={"BUDDYCLOUD_LOG_LEVEL": "debug"}
    )
    assert " INFO " not in output and " DEBUG " not in output, output
