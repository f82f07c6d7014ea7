"""docs/examples/xmpp_client.py, the slixmpp client docs/clients.md describes, run as a user
would against the private XMPP server and the channel server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from e2e.conftest import Connect, XmppServer
from e2e.harness import DOMAIN, SERVICE, ServerProcess, entry, password_of, posts, publish

EXAMPLE = Path(__file__).parent.parent.parent / "docs" / "examples" / "xmpp_client.py"


async def start_example(
    user: str, xmpp_server: XmppServer, *args: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        f"{user}@{DOMAIN}",
        "--service",
        SERVICE,
        "--host",
        "127.0.0.1",
        "--port",
        str(xmpp_server.c2s_port),
        "--plain",
        *args,
        env={**os.environ, "XMPP_PASSWORD": password_of(user)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if not line:
        assert process.stderr is not None
        raise AssertionError((await process.stderr.read()).decode())
    return line.decode().rstrip("\n")


async def test_the_example_posts_follows_catches_up_and_hears_notifications(
    server: ServerProcess, xmpp_server: XmppServer, connect: Connect
) -> None:
    # Balthasar posts through the example: his channel exists afterwards.
    first = await start_example("balthasar", xmpp_server, "--post", "News from Verona")
    out, err = await asyncio.wait_for(first.communicate(), 60)
    assert first.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0] == f"channel: /user/balthasar@{DOMAIN}/posts"
    assert lines[1].startswith("published: ")

    # Laurence follows him: the catch-up replays the post, then a new one arrives live.
    follower = await start_example(
        "laurence", xmpp_server, "--follow", f"balthasar@{DOMAIN}", "--wait", "1"
    )
    assert await read_line(follower) == f"channel: /user/laurence@{DOMAIN}/posts"
    following = await read_line(follower)
    assert following == f"following balthasar@{DOMAIN}: subscribed"
    caught_up = await read_line(follower)
    replayed = int(caught_up.removeprefix("caught up: ").split()[0])
    assert replayed >= 1, caught_up
    assert await read_line(follower) == "listening"

    balthasar = await connect("balthasar")
    await balthasar.ok("set", publish(posts(f"balthasar@{DOMAIN}"), entry("Juliet is dead")))
    notification = await read_line(follower)
    assert notification.startswith(f"notification: /user/balthasar@{DOMAIN}/posts ")
    assert notification.endswith(": Juliet is dead")
    assert await asyncio.wait_for(follower.wait(), 30) == 0
