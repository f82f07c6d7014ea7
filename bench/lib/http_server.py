"""The server under test of bench/http_bench.py: `buddycloud.app.build` as `serve` runs it
(SQLite, uvicorn, the collector settled as in `run`), driven by commands on stdin.

Setup, before listening: an account `owner@bench.lit` (password `BENCH_PASSWORD`, for the
REST runs, signed in with Basic), `--posts` posts on its channel, and `--followers` users
`u<n>@bench.lit` following it, written straight to storage (one membership each, all at
once so that they share group commits); and `writer@bench.lit` (same password), whose
channel nobody follows.

Websocket clients sign in with `Bearer bench-<n>` as `u<n>@bench.lit`: a stand-in for the
token check, because 10,000 first Basic sign-ins of distinct users would cost 10,000
argon2 hashes (minutes) before the first measurement. Every other header goes to the
server's own authenticator. Nothing else differs from `serve`.

Commands, one per line, each answered by one JSON line on stdout:
  post K    publish the post "fan-out K" as the owner: {"t0", "t1", "cpu"} (time.monotonic()
            before the call and when it returned, acknowledged and durable; the CPU time
            of all the server's threads so far, before the call)
  status    {"rss": bytes, "connected": sockets in the live hub, "cpu": CPU time so far}
  quit      stop
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

from buddycloud.app import _settled_garbage_collector, build
from buddycloud.config import load_config
from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.errors import NotAuthenticated
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import Membership, NodeId, Role, SubscriptionState
from buddycloud.http.auth import Authenticator, Requester

DOMAIN = "bench.lit"
OWNER = Jid("owner", DOMAIN)
WRITER = Jid("writer", DOMAIN)
BENCH_PASSWORD = "bench-password-1"
TOKEN_PREFIX = "Bearer bench-"


class BenchTokens(Authenticator):
    """`Bearer bench-<n>` is `u<n>@bench.lit`; anything else is checked as in `serve`."""

    async def authenticate(self, header: str | None, *, client: str | None = None) -> Requester:
        if header is not None and header.startswith(TOKEN_PREFIX):
            number = header[len(TOKEN_PREFIX) :]
            if not number.isdigit():
                raise NotAuthenticated("bad bench token")
            return Requester(Jid(f"u{number}", DOMAIN), anonymous=False)
        return await super().authenticate(header, client=client)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def say(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--posts", type=int, default=40)
    parser.add_argument("--followers", type=int, default=10_000)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    config = load_config(
        None,
        {
            "BUDDYCLOUD_SERVER_DOMAIN": DOMAIN,
            "BUDDYCLOUD_STORAGE_URL": f"sqlite:///{args.dir / 'bench.db'}",
            "BUDDYCLOUD_HTTP_LISTEN": "127.0.0.1:0",
        },
    )
    app = await build(config)
    engine = app.engine
    state = app.http.app.state  # type: ignore[attr-defined]
    state.http = dataclasses.replace(state.http, authenticator=BenchTokens(engine))
    await engine.create_account(str(OWNER), BENCH_PASSWORD, "owner@example.org")
    await engine.create_account(str(WRITER), BENCH_PASSWORD, "writer@example.org")
    posts = NodeId(OWNER, "posts")
    for number in range(args.posts):
        await engine.publish(OWNER, posts, EntryDraft(content=f"post {number} " + "x" * 200))
    now = engine.clock.now()
    for start in range(1, args.followers + 1, 1000):
        stop = min(start + 1000, args.followers + 1)
        await asyncio.gather(
            *(
                engine.storage.put_membership(
                    Membership(
                        OWNER, Jid(f"u{n}", DOMAIN), Role.MEMBER, SubscriptionState.SUBSCRIBED, now
                    )
                )
                for n in range(start, stop)
            )
        )
    await app.start()
    hub = state.http.hub
    say({"port": app.http.port, "pid": os.getpid()})
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        with _settled_garbage_collector():
            while line := (await reader.readline()).decode().strip():
                command, _, value = line.partition(" ")
                if command == "post":
                    t0, cpu = time.monotonic(), time.process_time()
                    await engine.publish(OWNER, posts, EntryDraft(content=f"fan-out {value}"))
                    say({"t0": t0, "t1": time.monotonic(), "cpu": cpu})
                elif line == "status":
                    say(
                        {
                            "rss": rss_bytes(),
                            "connected": hub.connected,
                            "cpu": time.process_time(),
                        }
                    )
                elif line == "quit":
                    break
    finally:
        await app.close()


if __name__ == "__main__":
    asyncio.run(main())
