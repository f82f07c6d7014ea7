"""Storage performance through the channel engine, against the targets of the storage design.

Targets (SQLite, one process):
- >= 2,000 publishes/s with 50 concurrent publishers;
- a page of 20 items from a node of 100,000 items in < 2 ms (start, middle and end);
- recent items of a user following 1,000 channels in < 20 ms.

Usage:
    python bench/storage_bench.py [--url sqlite:///tmp/bench.db | postgresql://…]
        [--publishes 10000] [--node-items 100000] [--channels 1000]

The database must be empty (a fresh SQLite file is made when no URL is given).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
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
    users = [user(n) for n in range(publishers)]
    for jid in users:
        await engine.register(jid)
    per_publisher = total // publishers

    async def publisher(jid: Jid) -> None:
        node = NodeId(jid, "posts")
        for n in range(per_publisher):
            await engine.publish(jid, node, EntryDraft(content=f"hello {n}", byte_size=20))

    start = time.perf_counter()
    await asyncio.gather(*(publisher(jid) for jid in users))
    elapsed = time.perf_counter() - start
    rate = publishers * per_publisher / elapsed
    print(
        f"  {publishers} concurrent publishers: {publishers * per_publisher} publishes "
        f"in {elapsed:.2f} s = {rate:,.0f} publishes/s"
    )
    return rate


async def bench_pages(engine: Engine, storage: Storage, size: int) -> float:
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
    reader = user(90001)
    middle = f"item{size // 2:07d}"
    worst = 0.0
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
        worst = max(worst, median)
    return worst


async def bench_recent(engine: Engine, storage: Storage, channels: int) -> float:
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
    since = (T0 + timedelta(days=7)).isoformat()
    median, _ = await timed(
        f"recent items, {channels} channels followed",
        lambda: engine.recent_items(
            follower, since=since, max_per_node="5", parent_only=True, page=PageRequest(max=50)
        ),
        runs=50,
    )
    return median


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--publishes", type=int, default=10000)
    parser.add_argument("--publishers", type=int, default=50)
    parser.add_argument("--node-items", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        storage = await open_storage(url, migrate=True)
        engine = Engine(
            storage, SystemClock(), EngineConfig(DOMAIN, Jid.parse(f"channels.{DOMAIN}"))
        )
        try:
            print(f"storage: {url}")
            rate = await bench_publish(engine, args.publishers, args.publishes)
            page = await bench_pages(engine, storage, args.node_items)
            recent = await bench_recent(engine, storage, args.channels)
        finally:
            await storage.close()
    print(
        f"targets: publishes/s {rate:,.0f} (>= 2,000) | page median {page:.2f} ms (< 2) "
        f"| recent items median {recent:.2f} ms (< 20)"
    )


if __name__ == "__main__":
    asyncio.run(main())
