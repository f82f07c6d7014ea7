"""Publishes per second with and without federation's outbox, in one process.

The engine over SQLite (a file, `synchronous=FULL`) publishes to a channel whose followers
are all users of one remote domain; `--window` publishes are in flight at once. With the
outbox, each publish is also queued for that domain before it is acknowledged, and a
worker delivers the queue to a stand-in channel server that acknowledges each inbox IQ at
once (no network). Without it, the Notifier alone listens (nobody is online). A quick
comparison of the outbox's cost per publish, not the cross-domain benchmark (which runs
two XMPP servers over s2s).

    .venv/bin/python -m bench.outbox_inprocess [--followers 100] [--publishes 3000] [--window 50]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from xml.etree.ElementTree import Element

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId
from buddycloud.federation.client import RemoteServers
from buddycloud.federation.discovery import ServerDiscovery
from buddycloud.federation.outbox import Outbox
from buddycloud.services.config import EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.factory import open_storage
from buddycloud.util.clock import SystemClock
from buddycloud.xmpp.notifications import Notifier
from buddycloud.xmpp.presence import OnlineUsers
from buddycloud.xmpp.xml import parse_xml

OWNER = Jid.parse("juliet@capulet.lit")
NODE = NodeId(OWNER, "posts")
REMOTE = "channels.montague.lit"


class Sink:
    def send(self, stanza: Element) -> None:
        pass

    def send_text(self, text: str) -> None:
        pass

    def send_many(self, texts: object) -> None:
        pass


class StandIn:
    """The remote channel server: knows disco, acknowledges every inbox IQ at once."""

    def __init__(self) -> None:
        self.iqs = 0
        self.events = 0

    async def query(self, to: str, payload: Element) -> Element:
        if to == "montague.lit":
            return parse_xml(
                "<query xmlns='http://jabber.org/protocol/disco#items'>"
                f"<item jid='{REMOTE}'/></query>"
            )
        return parse_xml(
            "<query xmlns='http://jabber.org/protocol/disco#info'>"
            "<identity category='pubsub' type='channels'/></query>"
        )

    async def request(
        self, type_: str, to: str, payload: Element | str, *, timeout: float
    ) -> Element:
        self.iqs += 1
        self.events += str(payload).count("<event ")
        await asyncio.sleep(0)
        return parse_xml(f"<iq xmlns='jabber:component:accept' type='result' from='{to}'/>")


async def no_txt(domain: str) -> Jid | None:
    return None


async def run(followers: int, publishes: int, window: int, *, outbox_on: bool) -> float:
    with tempfile.TemporaryDirectory() as directory:
        storage = await open_storage(f"sqlite:///{directory}/bench.db", migrate=True)
        try:
            clock = SystemClock()
            config = EngineConfig(
                domain="capulet.lit", service_jid=Jid.parse("channels.capulet.lit")
            )
            engine = Engine(storage, clock, config)
            stand_in = StandIn()
            discovery = ServerDiscovery(
                stand_in.query,
                no_txt,
                own_domain="capulet.lit",
                own_jid=Jid.parse("channels.capulet.lit"),
            )
            engine.use_remote(RemoteServers(discovery, stand_in.request, clock))
            notifier = Notifier(Jid.parse("channels.capulet.lit"), OnlineUsers(), Sink())
            engine.add_listener(notifier)
            outbox = Outbox(engine, discovery, notifier, stand_in.request)
            if outbox_on:
                notifier.home_delivers = engine.delivered_by_home_server
                engine.add_listener(outbox)
                await outbox.start()
            await engine.register(OWNER)
            for n in range(followers):
                follower = Jid.parse(f"follower{n}@montague.lit")
                await engine.subscribe(follower, NODE, follower)
            if outbox_on:
                while any(outbox.pending().values()):
                    await asyncio.sleep(0.01)
                stand_in.events = 0

            semaphore = asyncio.Semaphore(window)

            async def publish(n: int) -> None:
                async with semaphore:
                    content = f"post {n}"
                    await engine.publish(
                        OWNER, NODE, EntryDraft(content=content, byte_size=len(content))
                    )

            started = time.perf_counter()
            await asyncio.gather(*(publish(n) for n in range(publishes)))
            elapsed = time.perf_counter() - started
            if outbox_on:
                while any(outbox.pending().values()):
                    await asyncio.sleep(0.01)
                drained = time.perf_counter() - started
                print(
                    f"  outbox: {stand_in.events} events in {stand_in.iqs} inbox IQs, "
                    f"all delivered {drained:.2f} s after the first publish"
                )
                await outbox.stop()
            return publishes / elapsed
        finally:
            await storage.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--publishes", type=int, default=3000)
    parser.add_argument("--window", type=int, default=50)
    args = parser.parse_args()
    print(f"{args.followers} followers on montague.lit, {args.publishes} publishes")
    without = await run(args.followers, args.publishes, args.window, outbox_on=False)
    print(f"without the outbox: {without:.0f} publishes/s")
    with_outbox = await run(args.followers, args.publishes, args.window, outbox_on=True)
    print(f"with the outbox:    {with_outbox:.0f} publishes/s ({with_outbox / without:.0%})")


if __name__ == "__main__":
    asyncio.run(main())
