"""Storage performance through the channel engine, on SQLite and PostgreSQL in one run.

Measures, for each backend:
- publishes/s to one node, one at a time and with 50 concurrent publishers (target on
  SQLite: >= 2,000/s with 50 concurrent);
- a page of 20 items from a node of 100,000 items, at its start, middle and end (< 2 ms);
- recent items of a user following 1,000 channels (< 20 ms).

Usage:
    python bench/storage_bench.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--no-postgres] [--publishes 10000] [--node-items 100000] [--channels 1000]

SQLite runs on a fresh file in a temporary directory. PostgreSQL runs in a fresh database
created on the given server (default: $BUDDYCLOUD_TEST_POSTGRES, else the local server)
and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    NS_ATOM,
    AccessModel,
    Channel,
    ChannelConfig,
    ChannelType,
    Entry,
    Item,
    Membership,
    Node,
    NodeId,
    PageRequest,
    Role,
    SubscriptionState,
)
from buddycloud.services.config import EngineConfig, EntryDraft
from buddycloud.services.engine import Engine
from buddycloud.storage.base import Storage
from buddycloud.storage.factory import open_storage
from buddycloud.util.clock import SystemClock

DOMAIN = "bench.lit"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def user(n: int) -> Jid:
    return Jid.parse(f"user{n:05d}@{DOMAIN}")


async def timed(
    label: str, call: Callable[[], Awaitable[object]], runs: int = 200
) -> tuple[float, float]:
    """Median and 95th percentile of `runs` sequential calls, in milliseconds."""
    for _ in range(5):
        await call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    median, p95 = statistics.median(samples), samples[int(len(samples) * 0.95)]
    print(f"  {label:<40} median {median:6.2f} ms   p95 {p95:6.2f} ms")
    return median, p95


def config(owner: Jid) -> ChannelConfig:
    return ChannelConfig(
        "bench", "", AccessModel.OPEN, Role.PUBLISHER, owner, ChannelType.PERSONAL, T0, T0
    )


async def seed_channel(storage: Storage, owner: Jid) -> None:
    await storage.create_channel(
        Channel(owner, config(owner)),
        [Node(NodeId(owner, "posts"), NS_ATOM, None, T0)],
        Membership(owner, owner, Role.OWNER, SubscriptionState.SUBSCRIBED, T0),
    )


def seed_item(node: NodeId, n: int, when: datetime) -> Item:
    entry = Entry(
        f"tag:{DOMAIN},2026:{node},{n}", "", f"post number {n}", "text", node.channel, when, when
    )
    return Item(node, f"item{n:07d}", node.channel, when, when, entry)


async def bench_publish(engine: Engine, publishers: int, total: int) -> float:
    """Publishes/s to one node by `publishers` concurrent publishers (posting followers)."""
    owner = user(70000 + publishers)
    await engine.register(owner)
    node = NodeId(owner, "posts")
    users = [user(60000 + publishers * 100 + n) for n in range(publishers)]
    for jid in users:
        await engine.subscribe(jid, node, jid)  # the default role may post
    per_publisher = total // publishers

    async def publisher(jid: Jid) -> None:
        for n in range(per_publisher):
            await engine.publish(jid, node, EntryDraft(content=f"hello {n}", byte_size=20))

    start = time.perf_counter()
    await asyncio.gather(*(publisher(jid) for jid in users))
    elapsed = time.perf_counter() - start
    rate = publishers * per_publisher / elapsed
    print(
        f"  {publishers:>2} publisher(s), one node: {publishers * per_publisher} publishes "
        f"in {elapsed:.2f} s = {rate:,.0f} publishes/s"
    )
    return rate


async def bench_pages(
    engine: Engine, storage: Storage, size: int, settle: Settle
) -> dict[str, float]:
    owner = user(90000)
    await seed_channel(storage, owner)
    node = NodeId(owner, "posts")
    batch = 1000
    for start in range(0, size, batch):
        await asyncio.gather(
            *(
                storage.put_item(seed_item(node, n, T0 + timedelta(seconds=n)))
                for n in range(start, min(size, start + batch))
            )
        )
    await settle()
    reader = user(90001)
    middle = f"item{size // 2:07d}"
    medians: dict[str, float] = {}
    for label, page in (
        ("first page of 20", PageRequest(max=20)),
        ("middle page of 20 (after a cursor)", PageRequest(max=20, after=middle)),
        ("middle page of 20 (before a cursor)", PageRequest(max=20, before=middle)),
        ("last page of 20", PageRequest(max=20, last_page=True)),
    ):
        median, _ = await timed(
            label,
            lambda page=page: engine.get_items(reader, node, page),  # type: ignore[misc]
        )
        medians[label] = median
    return medians


async def bench_recent(engine: Engine, storage: Storage, channels: int, settle: Settle) -> float:
    follower = user(80000)
    await seed_channel(storage, follower)
    base = 10000
    for n in range(channels):
        owner = user(base + n)
        await seed_channel(storage, owner)
        await storage.put_membership(
            Membership(owner, follower, Role.MEMBER, SubscriptionState.SUBSCRIBED, T0)
        )
    # Ten posts per channel over ten days.
    node_items = [
        seed_item(NodeId(user(base + n), "posts"), k, T0 + timedelta(days=k, seconds=n))
        for n in range(channels)
        for k in range(10)
    ]
    for start in range(0, len(node_items), 1000):
        await asyncio.gather(*(storage.put_item(item) for item in node_items[start : start + 1000]))
    await settle()
    since = (T0 + timedelta(days=7)).isoformat()
    median, _ = await timed(
        f"recent items, {channels} channels followed",
        lambda: engine.recent_items(
            follower, since=since, max_per_node="5", parent_only=True, page=PageRequest(max=50)
        ),
        runs=50,
    )
    return median


Settle = Callable[[], Awaitable[None]]


@dataclass
class Result:
    sequential: float
    concurrent: float
    pages: dict[str, float]
    recent: float


async def run_backend(url: str, args: argparse.Namespace) -> Result:
    async def settle() -> None:
        # The data was loaded in bulk just now; a server that has held it for a while has
        # run autovacuum's ANALYZE over it, so plans are made with real statistics.
        if url.startswith("postgresql"):
            await _postgres_execute(url, "ANALYZE")

    storage = await open_storage(url, migrate=True)
    engine = Engine(storage, SystemClock(), EngineConfig(DOMAIN, Jid.parse(f"channels.{DOMAIN}")))
    try:
        print(f"storage: {url}")
        sequential = await bench_publish(engine, 1, max(1, args.publishes // 5))
        concurrent = await bench_publish(engine, args.publishers, args.publishes)
        pages = await bench_pages(engine, storage, args.node_items, settle)
        recent = await bench_recent(engine, storage, args.channels, settle)
    finally:
        await storage.close()
    return Result(sequential, concurrent, pages, recent)


async def _postgres_execute(url: str, statement: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def run_postgres(server: str, args: argparse.Namespace) -> Result:
    from sqlalchemy.engine import make_url

    name = f"buddycloud_bench_{uuid.uuid4().hex[:10]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    await _postgres_execute(server, f'CREATE DATABASE "{name}"')
    try:
        return await run_backend(url, args)
    finally:
        await _postgres_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(results: dict[str, Result]) -> None:
    names = list(results)
    rows: list[tuple[str, list[str], str]] = [
        (
            "publishes/s, one node, 1 at a time",
            [f"{r.sequential:,.0f}" for r in results.values()],
            "",
        ),
        (
            "publishes/s, one node, 50 concurrent",
            [f"{r.concurrent:,.0f}" for r in results.values()],
            ">= 2,000 (SQLite)",
        ),
    ]
    for label in next(iter(results.values())).pages:
        rows.append((f"{label} (ms)", [f"{r.pages[label]:.2f}" for r in results.values()], "< 2"))
    rows.append(
        ("recent items, 1,000 channels (ms)", [f"{r.recent:.2f}" for r in results.values()], "< 20")
    )
    print()
    print("| measure | " + " | ".join(names) + " | target |")
    print("|---|" + "---|" * len(names) + "---|")
    for label, values, target in rows:
        print(f"| {label} | " + " | ".join(values) + f" | {target} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BUDDYCLOUD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server URL; a fresh database is created there and dropped",
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--publishes", type=int, default=10000)
    parser.add_argument("--publishers", type=int, default=50)
    parser.add_argument("--node-items", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as scratch:
        results["SQLite"] = await run_backend(f"sqlite:///{Path(scratch) / 'bench.db'}", args)
    if not args.no_postgres:
        results["PostgreSQL"] = await run_postgres(args.postgres, args)
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
