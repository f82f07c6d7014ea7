"""CPU time the channel server spends per acknowledged publish, without an XMPP server.

The channel server runs as it does in production (`python -m buddycloud serve`, SQLite with
`synchronous=FULL`) and connects as a component to a stand-in XMPP server in this process:
a raw socket that performs the XEP-0114 handshake, sends directed presence for the owner and
N followers, subscribes the followers, then sends publishes, 50 in flight, and counts the
replies and notifications that come back. Nothing but the channel server does XML work, so
its CPU time per publish is read off /proc with little noise: the number to lower when the
XMPP benchmark shows the component taking CPU from the XMPP server it shares the machine
with.

    .venv/bin/python -m bench.component_cpu [--followers 10] [--publishes 20000] [--window 50]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lib.servers import HOST, Process, free_port
from bench.xmpp_bench import CHANNELS, DOMAIN, publish_stanza, start_channel_server

SECRET = "cpu-bench-secret"
OWNER = f"owner@{DOMAIN}"
NODE = f"/user/{OWNER}/posts"
STANZA_END = re.compile(rb"</(?:iq|message|presence)>|<(?:iq|message|presence)[^>]*/>")


class StandIn(asyncio.Protocol):
    """The XMPP server's side of one component stream: handshake, then counting."""

    def __init__(self, *, multicast: bool) -> None:
        self.multicast = multicast
        self.queried = asyncio.Event()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.stream_id = secrets.token_hex(8)
        self.ready = asyncio.Event()
        self.greeted = False
        self.replies = 0
        self.errors = 0
        self.notifications = 0
        self.changed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(text.encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.ready.is_set():
            if not self.greeted and b"<stream:stream" in self.buffer:
                self.greeted = True
                self.send(
                    "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                    "xmlns:stream='http://etherx.jabber.org/streams' "
                    f"from='{CHANNELS}' id='{self.stream_id}'>"
                )
            match = re.search(rb"<handshake>([0-9a-f]+)</handshake>", self.buffer)
            if match is None:
                return
            expected = hashlib.sha1((self.stream_id + SECRET).encode()).hexdigest()
            if match.group(1).decode() != expected:
                raise RuntimeError("the component's handshake does not match the secret")
            self.buffer = self.buffer[match.end() :]
            self.send("<handshake/>")
            self.ready.set()
        end = 0
        for match in STANZA_END.finditer(self.buffer):
            stanza = self.buffer[end : match.end()]
            end = match.end()
            if stanza.lstrip().startswith(b"<iq") and b'type="get"' in stanza:
                self.answer_query(stanza)
            elif stanza.lstrip().startswith(b"<iq"):
                if b"type='error'" in stanza or b'type="error"' in stanza:
                    self.errors += 1
                self.replies += 1
            elif stanza.lstrip().startswith(b"<message"):
                # a multicast stanza stands for one notification per address
                self.notifications += max(1, stanza.count(b"<address "))
        self.buffer = self.buffer[end:]
        self.changed.set()

    def answer_query(self, iq: bytes) -> None:
        """The component's disco#info on the server's domain, looking for XEP-0033: the
        stand-in is its own multicast service, as Prosody with the project's module is."""
        match = re.search(rb'id="([^"]+)"', iq)
        assert match is not None, iq
        head = f"<iq type='result' id='{match.group(1).decode()}' from='{DOMAIN}' to='{CHANNELS}'>"
        if b"disco#items" in iq:  # asked after an info without the feature: no services
            self.send(f"{head}<query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
            self.queried.set()
            return
        feature = "<feature var='http://jabber.org/protocol/address'/>" if self.multicast else ""
        self.send(
            f"{head}<query xmlns='http://jabber.org/protocol/disco#info'>{feature}</query></iq>"
        )
        if self.multicast:
            self.queried.set()

    async def until(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the channel server stopped answering")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass


def thread_times(pid: int) -> dict[str, tuple[int, int]]:
    """User and system CPU ticks of each thread of process `pid`: the main thread (the
    event loop) as "main", the others by thread id."""
    times: dict[str, tuple[int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = raw.rsplit(")", 1)[1].split()
        name = "main" if task.name == str(pid) else f"thread {task.name}"
        times[name] = (int(fields[11]), int(fields[12]))
    return times


def thread_report(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], n: int
) -> str:
    """Per thread name: user and system CPU per publish between two `thread_times`."""
    tick = 1e6 / os.sysconf("SC_CLK_TCK") / n
    parts = []
    for name, (user, system) in sorted(after.items()):
        user0, system0 = before.get(name, (0, 0))
        if user - user0 or system - system0:
            spent_user, spent_system = tick * (user - user0), tick * (system - system0)
            parts.append(f"{name}: user {spent_user:,.0f} us, system {spent_system:,.0f} us")
    return "; ".join(parts)


async def publish_all(stand_in: StandIn, ours: Process, n: int, followers: int, window: int) -> str:
    """Publish n items, `window` in flight; wait for every reply and notification."""
    run_id = secrets.token_hex(3)
    first, expected_notes = stand_in.replies, stand_in.notifications + n * followers

    def answered() -> int:
        return stand_in.replies - first

    threads0 = thread_times(ours.popen.pid)
    cpu0, t0 = ours.cpu_seconds(), time.perf_counter()
    sent = 0
    while sent < n:
        room = min(n, answered() + window) - sent
        if room > 0:
            stand_in.send(
                "".join(
                    publish_stanza(CHANNELS, NODE, run_id, i, "tk0000000000").replace(
                        "<iq ", f"<iq from='{OWNER}/pub' ", 1
                    )
                    for i in range(sent, sent + room)
                )
            )
            sent += room
        await stand_in.until(lambda sent=sent: answered() + window > sent or answered() >= n)
    await stand_in.until(lambda: answered() >= n and stand_in.notifications >= expected_notes)
    dt, cpu = time.perf_counter() - t0, ours.cpu_seconds() - cpu0
    return (
        f"{n} publishes, {followers} followers, {window} in flight: {n / dt:,.0f} publishes/s, "
        f"{n * followers / dt:,.0f} notifications/s, "
        f"CPU {1e6 * cpu / n:,.0f} us per publish ({100 * cpu / dt:.0f}% of a core)\n"
        f"  per thread and publish: {thread_report(threads0, thread_times(ours.popen.pid), n)}"
    )


class Callgrind:
    """Counts the instructions the channel server executes, under valgrind's callgrind.

    The count is the same from run to run on any machine, where CPU time on these shared
    machines varies by half: the number to compare two versions of the code by. Counting
    starts off and is switched on for the measured publishes only; the server runs ~50x
    slower meanwhile, so the throughput printed beside it means nothing.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.wrapper = (
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
        )

    async def _control(self, ours: Process, *options: str) -> None:
        control = await asyncio.create_subprocess_exec(
            "callgrind_control",
            *options,
            str(ours.popen.pid),
            stdout=asyncio.subprocess.DEVNULL,
        )
        if await control.wait() != 0:
            raise RuntimeError(f"callgrind_control {' '.join(options)} failed")

    async def switch(self, ours: Process, *, on: bool) -> None:
        if on:
            await self._control(ours, "--zero")
        await self._control(ours, "--instr=on" if on else "--instr=off")

    async def total(self, ours: Process) -> int:
        """Instructions counted since the counters were zeroed."""
        await self._control(ours, "--dump")
        # Each dump is written to the output file's name with the dump's number appended.
        dumps = sorted(self.out.parent.glob(f"{self.out.name}.*"), key=lambda p: p.stat().st_mtime)
        if not dumps:
            raise RuntimeError(f"callgrind wrote no dump next to {self.out}")
        for line in dumps[-1].read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
        raise RuntimeError(f"no instruction total in {dumps[-1]}")


async def run(args: argparse.Namespace, base: Path) -> None:
    stand_in = StandIn(multicast=args.multicast)
    loop = asyncio.get_running_loop()
    port = free_port()
    server = await loop.create_server(lambda: stand_in, HOST, port)
    counter = Callgrind(base / "callgrind.out") if args.instructions else None
    ours = start_channel_server(
        base / "server", SECRET, port, wrapper=counter.wrapper if counter else ()
    )
    try:
        await asyncio.wait_for(stand_in.ready.wait(), 600 if counter else 30)
        await asyncio.wait_for(stand_in.queried.wait(), 600 if counter else 30)
        stand_in.send(
            f"<presence from='{OWNER}/pub' to='{CHANNELS}'/>"
            f"<iq type='set' id='reg' from='{OWNER}/pub' to='{CHANNELS}'>"
            "<query xmlns='jabber:iq:register'/></iq>"
        )
        await stand_in.until(lambda: stand_in.replies >= 1)
        for k in range(args.followers):
            follower = f"f{k}@{DOMAIN}"
            stand_in.send(
                f"<presence from='{follower}/r' to='{CHANNELS}'/>"
                f"<iq type='set' id='s{k}' from='{follower}/r' to='{CHANNELS}'>"
                f"<pubsub xmlns='http://jabber.org/protocol/pubsub'>"
                f"<subscribe node='{NODE}' jid='{follower}'/></pubsub></iq>"
            )
        await stand_in.until(lambda: stand_in.replies >= 1 + args.followers)
        await publish_all(
            stand_in, ours, max(200, args.publishes // 10), args.followers, args.window
        )
        if counter is not None:
            await counter.switch(ours, on=True)
        result = await publish_all(stand_in, ours, args.publishes, args.followers, args.window)
        if stand_in.errors:
            raise RuntimeError(f"{stand_in.errors} requests failed; see {base}/server/serve.log")
        if counter is not None:
            await counter.switch(ours, on=False)
            instructions = await counter.total(ours)
            result += f", {instructions / args.publishes / 1000:,.0f} k instructions per publish"
        print(result)
    finally:
        ours.stop()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10)
    parser.add_argument("--publishes", type=int, default=20_000)
    parser.add_argument(
        "--window",
        type=int,
        default=50,
        help="publishes in flight (50, as in the XMPP benchmark; through a real XMPP server "
        "fewer arrive together, ~8 per commit)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the server's instructions per publish under valgrind (callgrind): "
        "slow, but the same on every run",
    )
    parser.add_argument(
        "--no-multicast",
        dest="multicast",
        action="store_false",
        help="the stand-in offers no XEP-0033 service: one notification stanza per follower",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bc-cpu-"))
    try:
        asyncio.run(run(args, base))
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
