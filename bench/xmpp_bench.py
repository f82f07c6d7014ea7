"""XMPP benchmark: the channel server beside Prosody's and ejabberd's own mod_pubsub.

One run starts, on 127.0.0.1 only and in a scratch directory, a private Prosody and then a
private ejabberd. Against each it measures, side by side:

* the XMPP server's own ceilings: IQ round trips through a trivial echo component (1 and
  50 in flight), and messages routed from a trivial component to online clients, with the
  same message as the channel server's notifications (10 and 1,000 clients);
* the server's own mod_pubsub (the peer): acknowledged publishes/s (1 and 50 in flight),
  notifications/s with 10 and 1,000 online subscribers;
* the channel server (`python -m buddycloud serve`, SQLite in the scratch directory) as a
  component of that server: the same publish and notification measurements, followers
  being subscribed and online (directed presence to the component).

Load comes from a raw asyncio generator (bench/lib/rawxmpp.py), so the servers, not the
generator, are what is measured. Every figure is the median of `--rounds` rounds; the
order of the systems rotates between rounds. Results print as a table with absolute rates
and the ratios the targets are stated in (docs/benchmarks.md).

usage: .venv/bin/python -m bench.xmpp_bench [--quick] [--servers prosody,ejabberd]
       (or python bench/xmpp_bench.py; see bench/README.md)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:  # run as a script, python bench/xmpp_bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.rawxmpp import Client, XmppError, attr
from bench.lib.servers import (
    HOST,
    Process,
    XmppServer,
    free_port,
    spawn,
    start_ejabberd,
    start_prosody,
)

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bench.lit"
OWNER = "owner"
PASSWORD = "benchpass"
CHANNELS = f"channels.{DOMAIN}"
ECHO = f"echo.{DOMAIN}"
ROUTE = f"route.{DOMAIN}"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
OPEN_CONCURRENCY = 50
WINDOWS = (1, 50)
FOLLOWER_COUNTS = (10, 1000)
LABELS = {
    "ceiling": "trivial component",
    "ideal": "ideal component",
    "peer": "mod_pubsub",
    "ours": "buddycloud",
}
MARK_PATTERN = r"tk[0-9a-f]{10}"  # what token() makes


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def token() -> str:
    """A fresh marker of fixed length, counted in received notifications."""
    return "tk" + secrets.token_hex(5)


# --- stanzas -----------------------------------------------------------------------------


def publish_stanza(service: str, node: str, run: str, i: int, mark: str) -> str:
    """One publish of a ~200-byte Atom entry; `mark` appears in the content once."""
    return (
        f"<iq type='set' to='{service}' id='{run}p{i}'><pubsub xmlns='{NS_PUBSUB}'>"
        f"<publish node='{node}'><item id='{run}i{i}'>"
        f"<entry xmlns='http://www.w3.org/2005/Atom'><title>post {i}</title>"
        f"<content>{mark} Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
        f"eiusmod tempor incididunt.</content></entry></item></publish></pubsub></iq>"
    )


def ok(reply: bytes) -> bool:
    return attr("type", reply) == "result"


# --- measurement primitives ----------------------------------------------------------------


@dataclass
class Cpu:
    """CPU use of the processes involved, over one measured interval."""

    procs: dict[str, Callable[[], float]]
    start: dict[str, float] = field(default_factory=dict)
    t0: float = 0.0

    def __enter__(self) -> Cpu:
        self.start = {name: f() for name, f in self.procs.items()}
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        dt = time.perf_counter() - self.t0
        self.used = {name: 100.0 * (f() - self.start[name]) / dt for name, f in self.procs.items()}

    used: dict[str, float] = field(default_factory=dict)

    def text(self) -> str:
        return " ".join(f"{name}={pct:.0f}%" for name, pct in self.used.items())


async def pipelined(client: Client, make: Callable[[int], str], n: int, window: int) -> float:
    """Send n IQs with at most `window` unanswered; return the seconds until the last reply.

    Raises XmppError when any reply is an error, so a refused publish never counts.
    """
    answered = 0
    wake = asyncio.Event()

    def on_count(k: int) -> None:
        nonlocal answered
        answered += k
        wake.set()

    client.on_count = on_count
    client.start_counting(b"<iq ", n)
    sent = 0
    t0 = time.perf_counter()
    try:
        while sent < n:
            room = min(n, answered + window) - sent
            if room <= 0:
                wake.clear()
                await asyncio.wait_for(wake.wait(), 60)
                continue
            client.send("".join(make(i) for i in range(sent, sent + room)))
            sent += room
            await client.drain()
        await asyncio.wait_for(client.counted.wait(), 120)
    finally:
        client.stop_counting()
    dt = client.done_at - t0
    if client.errors:
        raise XmppError(f"{client.errors} of {n} requests were answered with an error")
    return dt


# With 1,000 followers a few seconds hold only a handful of publishes, and the time until the
# first and after the last one's fan-out weighs on the rate: measure at least this many.
MIN_FAN_OUTS = 15


def sized(rate: float, per_unit: int, duration: float, low: int, high: int) -> int:
    """How many units make a measurement of about `duration` seconds at `rate`/s."""
    return max(low, min(high, int(rate * duration / per_unit)))


async def gather_bounded(jobs: Sequence[Callable[[], Awaitable[object]]], limit: int) -> None:
    sem = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[object]]) -> None:
        async with sem:
            await job()

    # A task group: on failure or cancellation every job is finished before this returns.
    async with asyncio.TaskGroup() as group:
        for job in jobs:
            group.create_task(run(job))


# --- the systems ---------------------------------------------------------------------------


@dataclass
class Target:
    """A publish-subscribe service under test: the peer mod_pubsub or the channel server."""

    key: str  # "peer" | "ours"
    service: str
    node: str
    publisher: Client
    subscribed: set[str] = field(default_factory=set)
    sample: bytes = b""  # one notification as followers[0] received it
    sample_mark: bytes = b""  # the mark in it
    sample_to: str = ""  # the full JID it was addressed to
    sample_reply: bytes = b""  # the publish reply as the publisher received it
    marks_per_notification: int = 1

    async def follow(self, client: Client) -> None:
        """Subscribe `client` (its full JID to the peer, its bare JID to the channel server)."""
        if client.jid in self.subscribed:
            return
        iq_id = "s" + secrets.token_hex(4)
        if self.key == "peer":
            sub = f"<subscribe node='{self.node}' jid='{client.jid}'/>"
        else:
            sub = f"<subscribe node='{self.node}' jid='{client.jid.split('/')[0]}'/>"
        reply = await client.iq(
            f"<iq type='set' to='{self.service}' id='{iq_id}'>"
            f"<pubsub xmlns='{NS_PUBSUB}'>{sub}</pubsub></iq>",
            iq_id,
        )
        if not ok(reply) or not re.search(rb"subscription=['\"]subscribed", reply):
            raise XmppError(f"subscription to {self.service} {self.node} failed: {reply[:400]!r}")
        self.subscribed.add(client.jid)

    def announce(self, client: Client) -> None:
        """Tell the channel server that `client` is online: it notifies the full JIDs it
        knows from directed presence. (Mod_pubsub peers notify the subscribed full JID.)"""
        if self.key == "ours":
            client.send(f"<presence to='{self.service}'/>")


@dataclass
class Bed:
    """One XMPP server with everything attached to it."""

    server: XmppServer
    components: Process | None = None
    ours: Process | None = None
    owner: Client | None = None
    followers: list[Client] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)
    echo_client: Client | None = None

    def cpu_procs(self) -> dict[str, Callable[[], float]]:
        procs: dict[str, Callable[[], float]] = {self.server.kind: self.server.cpu_seconds}
        if self.components is not None:
            procs["trivial"] = self.components.cpu_seconds
        if self.ours is not None:
            procs["buddycloud"] = self.ours.cpu_seconds
        procs["loadgen"] = lambda: sum(os.times()[:2])
        return procs

    def stop(self) -> None:
        for client in [*self.followers, self.owner, self.echo_client]:
            if client is not None:
                client.close()
        for proc in (self.ours, self.components):
            if proc is not None:
                proc.stop()
        self.server.stop()


async def connect(bed: Bed, user: str, resource: str) -> Client:
    return await Client.open(
        HOST, bed.server.c2s_port, DOMAIN, user, PASSWORD, resource=resource, register=True
    )


async def wait_component(client: Client, jid: str, timeout: float) -> None:
    """Wait until the XMPP server routes to `jid` (a disco#info gets a result)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        iq_id = "d" + secrets.token_hex(4)
        reply = await client.iq(
            f"<iq type='get' to='{jid}' id='{iq_id}'>"
            "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            iq_id,
        )
        if ok(reply):
            return
        if loop.time() > deadline:
            raise TimeoutError(f"{jid} is not reachable after {timeout}s: {reply[:300]!r}")
        await asyncio.sleep(0.2)


async def expect_ready(proc: Process, timeout: float) -> None:
    """Wait for the trivial components' READY line (both handshakes done)."""
    stdout = proc.popen.stdout
    assert stdout is not None
    loop = asyncio.get_running_loop()
    line = await asyncio.wait_for(loop.run_in_executor(None, stdout.readline), timeout)
    if line.strip() != b"READY":
        raise RuntimeError(f"trivial components did not start: {line!r} {proc.tail()}")


def start_ours(base: Path, server: XmppServer, *, multicast: bool) -> Process:
    """Run the channel server as a component of `server`, storage on SQLite under `base`."""
    return start_channel_server(
        base, server.secret_for(CHANNELS), server.port_for(CHANNELS), multicast=multicast
    )


def start_channel_server(
    base: Path, secret: str, port: int, *, wrapper: Sequence[str] = (), multicast: bool = True
) -> Process:
    """`buddycloud migrate`, then `buddycloud serve` as component CHANNELS of the XMPP server
    on HOST:port, storage on SQLite in `base` (created; it must not exist). `wrapper`
    prefixes the serve command (a profiler, for example); `multicast` is `[xmpp] multicast`."""
    base.mkdir()
    config = base / "buddycloud.toml"
    config.write_text(
        "[server]\n"
        f'domain = "{DOMAIN}"\n'
        f'topics_domain = "topics.{DOMAIN}"\n'
        "[storage]\n"
        f'url = "sqlite:///{base}/buddycloud.db"\n'
        "[xmpp]\n"
        f'component_jid = "{CHANNELS}"\n'
        f'secret = "{secret}"\n'
        f'host = "{HOST}"\n'
        f"port = {port}\n"
        f"multicast = {'true' if multicast else 'false'}\n"
        "[http]\n"
        f'listen = "{HOST}:{free_port()}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDDYCLOUD_")}
    argv = [sys.executable, "-m", "buddycloud"]
    migrate = subprocess.run(
        [*argv, "migrate", "--config", str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"buddycloud migrate failed: {migrate.stderr.strip()}")
    return spawn(
        "buddycloud",
        [*wrapper, *argv, "serve", "--config", str(config)],
        base / "serve.log",
        env=env,
        cwd=ROOT,
    )


async def setup_bed(kind: str, scratch: Path, with_ours: bool, *, multicast: bool) -> Bed:
    components = (CHANNELS, ECHO, ROUTE)
    owner_jid = f"{OWNER}@{DOMAIN}"
    start = start_prosody if kind == "prosody" else start_ejabberd
    server = await start(scratch / kind, DOMAIN, owner_jid, components)
    bed = Bed(server)
    try:
        bed.components = spawn(
            "trivial",
            [
                sys.executable,
                "-m",
                "bench.lib.trivial_component",
                HOST,
                "--echo",
                ECHO,
                "--echo-port",
                str(server.port_for(ECHO)),
                "--echo-secret",
                server.secret_for(ECHO),
                "--route",
                ROUTE,
                "--route-port",
                str(server.port_for(ROUTE)),
                "--route-secret",
                server.secret_for(ROUTE),
            ],
            scratch / f"{kind}-trivial.log",
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout_pipe=True,
        )
        await expect_ready(bed.components, 30)
        if with_ours:
            bed.ours = start_ours(scratch / f"{kind}-buddycloud", server, multicast=multicast)
        bed.owner = await connect(bed, OWNER, "pub")
        bed.echo_client = await connect(bed, "echoer", "echo")
        await wait_component(bed.echo_client, ECHO, 30)
        # The peer's node, created by the owner (a service admin): default configuration.
        node = "bench-" + secrets.token_hex(4)
        reply = await bed.owner.iq(
            f"<iq type='set' to='{server.pubsub_jid}' id='create1'>"
            f"<pubsub xmlns='{NS_PUBSUB}'><create node='{node}'/></pubsub></iq>",
            "create1",
        )
        if not ok(reply):
            raise XmppError(f"creating the {kind} mod_pubsub node failed: {reply[:300]!r}")
        bed.targets["peer"] = Target("peer", server.pubsub_jid, node, bed.owner)
        if bed.ours is not None:
            await wait_component(bed.echo_client, CHANNELS, 60)
            # Registering creates the owner's personal channel (/user/<jid>/posts).
            reply = await bed.owner.iq(
                f"<iq type='set' to='{CHANNELS}' id='reg2'>"
                "<query xmlns='jabber:iq:register'/></iq>",
                "reg2",
            )
            if not ok(reply):
                raise XmppError(f"registration with the channel server failed: {reply[:300]!r}")
            bed.targets["ours"] = Target("ours", CHANNELS, f"/user/{owner_jid}/posts", bed.owner)
        return bed
    except BaseException:
        bed.stop()
        raise


async def add_followers(bed: Bed, count: int) -> None:
    """Bring the number of online followers to `count`, subscribed to every target."""
    start = len(bed.followers)
    new: list[Client | None] = [None] * (count - start)

    async def open_one(k: int) -> None:
        new[k - start] = await connect(bed, f"f{k}", f"r{k}")

    t0 = time.perf_counter()
    await gather_bounded([lambda k=k: open_one(k) for k in range(start, count)], OPEN_CONCURRENCY)
    bed.followers.extend(c for c in new if c is not None)
    log(f"{bed.server.kind}: {count} followers online ({time.perf_counter() - t0:.1f}s)")
    for target in bed.targets.values():
        t0 = time.perf_counter()
        await gather_bounded(
            [lambda c=c, t=target: t.follow(c) for c in bed.followers], OPEN_CONCURRENCY
        )
        # Online only once all are subscribed: every new subscription is announced to the
        # node's online followers, which would make setup quadratic in their number.
        for client in bed.followers:
            target.announce(client)
        log(
            f"{bed.server.kind}: {count} followers of {target.service} "
            f"({time.perf_counter() - t0:.1f}s)"
        )


async def barrier(target: Target, followers: list[Client]) -> None:
    """Publish one item and wait until every follower has its notification.

    Flushes whatever setup left in flight, and records the notification as received.
    """
    mark = token()
    run = secrets.token_hex(3)
    reply = await target.publisher.iq(
        publish_stanza(target.service, target.node, run, 0, mark), f"{run}p0"
    )
    if not ok(reply):
        raise XmppError(f"publish to {target.service} failed: {reply[:400]!r}")
    needle = mark.encode()
    outs = await asyncio.gather(
        *(f.expect(re.escape(needle) + rb".*?</message>", 60) for f in followers)
    )
    sample = outs[0]
    sample = sample[sample.rfind(b"<message", 0, sample.find(needle)) :]
    if not target.sample:
        log(f"{target.service}: publish reply {len(reply)} B: {reply.decode(errors='replace')}")
        log(f"{target.service}: notification {len(sample)} B: {sample.decode(errors='replace')}")
    target.sample = sample
    target.sample_reply = reply
    target.sample_mark = needle
    target.sample_to = followers[0].jid
    target.marks_per_notification = sample.count(needle)


async def measure_echo(bed: Bed, window: int, duration: float) -> tuple[float, str]:
    client = bed.echo_client
    assert client is not None
    run = secrets.token_hex(3)

    def make(i: int) -> str:
        return f"<iq type='get' to='{ECHO}' id='{run}e{i}'><echo xmlns='urn:bench:echo'/></iq>"

    warm = 200 if window == 1 else 2000
    rate = warm / await pipelined(client, make, warm, window)
    n = sized(rate, 1, duration, 200, 200_000)
    with Cpu(bed.cpu_procs()) as cpu:
        dt = await pipelined(client, make, n, window)
    return n / dt, f"n={n} cpu: {cpu.text()}"


async def measure_publish(
    bed: Bed, target: Target, window: int, duration: float
) -> tuple[float, str]:
    run = secrets.token_hex(3)

    def make(i: int) -> str:
        return publish_stanza(target.service, target.node, run, i, "nomark")

    warm = 20 if window == 1 else 100
    rate = warm / await pipelined(target.publisher, make, warm, window)
    run = secrets.token_hex(3)
    n = sized(rate, 1, duration, 20, 100_000)
    with Cpu(bed.cpu_procs()) as cpu:
        dt = await pipelined(target.publisher, make, n, window)
    return n / dt, f"n={n} cpu: {cpu.text()}"


async def fan_out(followers: list[Client], send: Callable[[], Awaitable[object]]) -> float:
    """Run `send`; return the seconds until every follower counted all it waits for."""
    t0 = time.perf_counter()
    await send()
    await asyncio.wait_for(asyncio.gather(*(f.counted.wait() for f in followers)), 300)
    return max(f.done_at for f in followers) - t0


async def notify_once(target: Target, followers: list[Client], n: int) -> float:
    """Publish n items, 50 in flight; return notifications/s until the last one arrived."""
    mark = token()
    for f in followers:
        f.start_counting(mark.encode(), n * target.marks_per_notification)
    run = secrets.token_hex(3)
    try:
        dt = await fan_out(
            followers,
            lambda: pipelined(
                target.publisher,
                lambda i: publish_stanza(target.service, target.node, run, i, mark),
                n,
                50,
            ),
        )
    finally:
        for f in followers:
            f.stop_counting()
    return n * len(followers) / dt


async def measure_notify(
    bed: Bed, target: Target, followers: list[Client], duration: float
) -> tuple[float, str]:
    await barrier(target, followers)
    warm = max(2, 500 // len(followers))
    rate = await notify_once(target, followers, warm)
    n = sized(rate, len(followers), duration, MIN_FAN_OUTS, 20_000)
    with Cpu(bed.cpu_procs()) as cpu:
        rate = await notify_once(target, followers, n)
    size = len(target.sample)
    return rate, f"n={n} publishes, notification {size} B, cpu: {cpu.text()}"


def _other_attributes(head: bytes) -> str:
    """The attributes of an opening tag but for to, from, id and xmlns."""
    return "".join(
        m.group(0).decode()
        for m in re.finditer(rb"\s([\w:]+)=(['\"]).*?\2", head)
        if m.group(1) not in (b"to", b"from", b"id", b"xmlns")
    )


def route_template(target: Target, sender: str = ROUTE) -> str:
    """The routing component's message: the notification's body, from `sender`,
    padded with whitespace to the notification's exact size (to the same recipient).

    `{to}` stands for the recipient and `MARK` for a mark as long as the sample's.
    """
    sample = target.sample.replace(target.sample_mark, b"MARK")
    head_end = sample.find(b">")
    head, body = sample[:head_end], sample[head_end:]
    keep = _other_attributes(head)
    template = f"<message to='{{to}}' from='{sender}'{keep}{body.decode()}"
    size = len(
        template.replace("{to}", target.sample_to)
        .replace("MARK", "x" * len(target.sample_mark))
        .encode()
    )
    pad = len(target.sample) - size
    if pad > 0:
        cut = template.rfind("</message>")
        template = template[:cut] + " " * pad + template[cut:]
    return template


async def route_once(
    bed: Bed, followers: list[Client], per: int, template: str, marks: int
) -> float:
    assert bed.components is not None
    proc = bed.components.popen
    assert proc.stdin is not None and proc.stdout is not None
    mark = token()
    for f in followers:
        f.start_counting(mark.encode(), per * marks)
    command = json.dumps(
        {
            "targets": [f.jid for f in followers],
            "n": per * len(followers),
            "template": template.replace("MARK", mark),
        }
    )
    loop = asyncio.get_running_loop()
    stdin, stdout = proc.stdin, proc.stdout

    async def send() -> None:
        stdin.write(command.encode() + b"\n")
        stdin.flush()
        line = await loop.run_in_executor(None, stdout.readline)
        if not line.startswith(b"SENT"):
            raise RuntimeError(
                f"routing component: {line!r} {bed.components and bed.components.tail()}"
            )

    try:
        dt = await fan_out(followers, send)
    finally:
        for f in followers:
            f.stop_counting()
    return per * len(followers) / dt


def reply_template(target: Target, sender: str) -> str:
    """The publish reply `target` sent, from `sender`; `{to}` and `{id}` are placeholders."""
    reply = target.sample_reply
    head_end = reply.find(b">")
    head, body = reply[:head_end], reply[head_end:]
    keep = _other_attributes(head)
    return f"<iq to='{{to}}' from='{sender}' id='{{id}}'{keep}{body.decode()}"


async def start_ideal(bed: Bed, followers: list[Client], reference: Target) -> Target:
    """Make the echo component an ideal publish-subscribe service: each publish to it is
    answered with `reference`'s reply and followed by its notification to `followers`,
    the same bytes, at no cost and with no delay. Returns it as a target."""
    assert bed.components is not None
    proc = bed.components.popen
    assert proc.stdin is not None and proc.stdout is not None
    command = {
        "ideal": {
            "targets": [f.jid for f in followers],
            "reply": reply_template(reference, ECHO),
            "notification": route_template(reference, ECHO),
            "mark": MARK_PATTERN,
        }
    }
    stdin, stdout = proc.stdin, proc.stdout
    stdin.write(json.dumps(command).encode() + b"\n")
    stdin.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, stdout.readline)
    if not line.startswith(b"IDEAL"):
        raise RuntimeError(f"echo component: {line!r} {bed.components.tail()}")
    ideal = Target("ideal", ECHO, reference.node, reference.publisher)
    await barrier(ideal, followers)
    return ideal


async def measure_route(
    bed: Bed, followers: list[Client], reference: Target, duration: float
) -> tuple[float, str]:
    template = route_template(reference)
    marks = reference.marks_per_notification
    warm = max(2, 1000 // len(followers))
    rate = await route_once(bed, followers, warm, template, marks)
    per = sized(rate, len(followers), duration, MIN_FAN_OUTS, 50_000)
    with Cpu(bed.cpu_procs()) as cpu:
        rate = await route_once(bed, followers, per, template, marks)
    size = len(
        template.replace("{to}", followers[0].jid).replace("MARK", "x" * len(token())).encode()
    )
    return rate, f"n={per * len(followers)} messages of {size} B, cpu: {cpu.text()}"


# --- the run -------------------------------------------------------------------------------


@dataclass
class Row:
    server: str
    metric: str
    system: str  # "ceiling" | "peer" | "ours"
    values: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def value(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")


class Results:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], Row] = {}
        self.errors: list[str] = []

    def add(self, server: str, metric: str, system: str, value: float, note: str) -> None:
        row = self.rows.setdefault((server, metric, system), Row(server, metric, system))
        row.values.append(value)
        row.notes.append(note)
        log(f"{server:8} {metric:34} {LABELS[system]:18} {value:10,.0f}/s  {note}")

    def get(self, server: str, metric: str, system: str) -> float | None:
        row = self.rows.get((server, metric, system))
        return row.value if row and row.values else None


async def rounds(
    results: Results,
    server: str,
    metric: str,
    systems: list[tuple[str, Callable[[], Awaitable[tuple[float, str]]]]],
    count: int,
) -> None:
    """Measure every system `count` times, rotating which goes first."""
    for r in range(count):
        shift = r % len(systems)
        for system, measure in systems[shift:] + systems[:shift]:
            try:
                value, note = await measure()
            except (XmppError, TimeoutError, RuntimeError, ConnectionError) as exc:
                results.errors.append(f"{server} {metric} {LABELS[system]}: {exc}")
                log(f"FAILED {server} {metric} {LABELS[system]}: {exc}")
                continue
            results.add(server, metric, system, value, note)


async def bench_server(
    kind: str, scratch: Path, args: argparse.Namespace, results: Results, with_ours: bool
) -> None:
    log(f"{kind}: starting")
    bed = await setup_bed(kind, scratch, with_ours, multicast=args.multicast)
    d = args.duration
    try:
        log(f"{kind}: up (c2s port {bed.server.c2s_port})")
        for w in WINDOWS if args.publishes else ():
            await rounds(
                results, kind, f"IQ round trips/s, {w} in flight",
                [("ceiling", lambda w=w: measure_echo(bed, w, d))], args.rounds,
            )  # fmt: skip
        for w in WINDOWS if args.publishes else ():
            await rounds(
                results, kind, f"publishes/s, {w} in flight",
                [(key, lambda t=t, w=w: measure_publish(bed, t, w, d))
                 for key, t in bed.targets.items()],
                args.rounds,
            )  # fmt: skip
        # Many sessions slow Prosody down for good: the 1,000-follower case runs last.
        for count in args.followers:
            await add_followers(bed, count)
            followers = bed.followers[:count]
            for target in bed.targets.values():
                await barrier(target, followers)
            reference = bed.targets.get("ours") or bed.targets["peer"]
            systems: list[tuple[str, Callable[[], Awaitable[tuple[float, str]]]]] = [
                (
                    "ceiling",
                    lambda f=followers, ref=reference: measure_route(bed, f, ref, d),
                )
            ]
            if "ours" in bed.targets:
                ideal = await start_ideal(bed, followers, reference)
                systems.append(("ideal", lambda t=ideal, f=followers: measure_notify(bed, t, f, d)))
            systems += [
                (key, lambda t=t, f=followers: measure_notify(bed, t, f, d))
                for key, t in bed.targets.items()
            ]
            await rounds(
                results, kind, f"notifications/s, {count:,} followers", systems, args.rounds
            )
    finally:
        bed.stop()
        log(f"{kind}: stopped")


# --- report --------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def report(results: Results, servers: list[str], args: argparse.Namespace, elapsed: float) -> str:
    metrics = [f"IQ round trips/s, {w} in flight" for w in WINDOWS]
    metrics += [f"publishes/s, {w} in flight" for w in WINDOWS]
    metrics += [f"notifications/s, {c:,} followers" for c in args.followers]
    lines = [
        "| XMPP server | measurement | trivial component (ceiling) | ideal component "
        "| server's mod_pubsub | buddycloud | buddycloud / mod_pubsub | buddycloud / ceiling "
        "| ideal / ceiling | buddycloud / ideal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server in servers:
        for metric in metrics:
            c, i, p, o = (
                results.get(server, metric, s) for s in ("ceiling", "ideal", "peer", "ours")
            )
            if c is None and i is None and p is None and o is None:
                continue
            lines.append(
                f"| {server} | {metric} | {fmt(c)} | {fmt(i)} | {fmt(p)} | {fmt(o)} "
                f"| {ratio(o, p)} | {ratio(o, c)} | {ratio(i, c)} | {ratio(o, i)} |"
            )
    lines.append("")
    lines.append("Targets:")
    ej_peer = results.get("ejabberd", "publishes/s, 50 in flight", "peer")
    pr_peer = results.get("prosody", "publishes/s, 50 in flight", "peer")
    for server in servers:
        ours = results.get(server, "publishes/s, 50 in flight", "ours")
        if ours is None:
            continue
        if ej_peer is not None:
            lines.append(
                f"- publishes/s, 50 in flight, buddycloud on {server} ({fmt(ours)}) >= ejabberd "
                f"mod_pubsub ({fmt(ej_peer)}): {verdict(ours >= ej_peer)} ({ratio(ours, ej_peer)}x)"
            )
        if pr_peer is not None:
            lines.append(
                f"- publishes/s, 50 in flight, buddycloud on {server} ({fmt(ours)}) >= 10x Prosody "
                f"mod_pubsub ({fmt(pr_peer)}): {verdict(ours >= 10 * pr_peer)} "
                f"({ratio(ours, pr_peer)}x)"
            )
    for server in servers:
        for count in args.followers:
            metric = f"notifications/s, {count:,} followers"
            ours = results.get(server, metric, "ours")
            ceiling = results.get(server, metric, "ceiling")
            if ours is None or ceiling is None:
                continue
            line = (
                f"- {metric} on {server}: buddycloud ({fmt(ours)}) >= 90% of the routing ceiling "
                f"({fmt(ceiling)}): {verdict(ours >= 0.9 * ceiling)} ({100 * ours / ceiling:.0f}%)"
            )
            ideal = results.get(server, metric, "ideal")
            if ideal is not None:
                line += (
                    f"; the ideal component reaches {100 * ideal / ceiling:.0f}% of the ceiling, "
                    f"buddycloud {100 * ours / ideal:.0f}% of the ideal"
                )
            lines.append(line)
    lines.append("")
    lines.append(
        f"Median of {args.rounds} round(s), about {args.duration:g} s per measurement; "
        f"whole run {elapsed:.0f} s. The channel server sent notifications "
        + (
            "through the XMPP server's XEP-0033 multicast service (one stanza per publish); "
            "the ceiling's and the ideal component one stanza per follower."
            if args.multicast
            else "one stanza per follower (--no-multicast), as the ceiling's and the ideal "
            "component do."
        )
    )
    if results.errors:
        lines.append("")
        lines.append("Failures:")
        lines += [f"- {e}" for e in results.errors]
    return "\n".join(lines)


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


async def main(args: argparse.Namespace) -> int:
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in ("prosody", "ejabberd"):
            raise SystemExit(f"unknown server {s!r} (prosody, ejabberd)")
    with_ours = not args.no_buddycloud and importlib.util.find_spec("buddycloud.app") is not None
    if not with_ours and not args.no_buddycloud:
        log("buddycloud.app is not available: measuring the XMPP servers only")
    # SIGTERM unwinds like Ctrl-C, so that every process started is stopped.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    results = Results()
    scratch = Path(tempfile.mkdtemp(prefix="xmpp-bench-"))
    t0 = time.perf_counter()
    try:
        for kind in servers:
            try:
                await bench_server(kind, scratch, args, results, with_ours)
            except (XmppError, TimeoutError, RuntimeError, ConnectionError, OSError) as exc:
                results.errors.append(f"{kind}: {exc}")
                log(f"FAILED {kind}: {exc}")
    finally:
        if args.keep:
            log(f"scratch kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(report(results, servers, args, time.perf_counter() - t0))
    return 1 if results.errors else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.xmpp_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="one short round: a smoke run")
    parser.add_argument("--servers", default="prosody,ejabberd", help="comma-separated")
    parser.add_argument("--rounds", type=int, help="rounds per measurement (default 3; quick 1)")
    parser.add_argument(
        "--duration", type=float, help="seconds per measurement (default 3; quick 0.7)"
    )
    parser.add_argument(
        "--no-buddycloud", action="store_true", help="measure only the XMPP servers"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--no-multicast",
        dest="multicast",
        action="store_false",
        help="the channel server sends one notification stanza per follower ([xmpp] multicast "
        "= false), as the ceiling's and the ideal component do",
    )
    parser.add_argument(
        "--followers",
        default=",".join(str(c) for c in FOLLOWER_COUNTS),
        help="comma-separated follower counts, ascending (default 10,1000)",
    )
    parser.add_argument(
        "--no-publishes",
        dest="publishes",
        action="store_false",
        help="skip the IQ round trip and publish measurements",
    )
    args = parser.parse_args(argv)
    try:
        args.followers = sorted({int(c) for c in args.followers.split(",") if c})
    except ValueError:
        parser.error(f"--followers: not a list of numbers: {args.followers!r}")
    if any(c < 1 for c in args.followers):
        parser.error("--followers: counts must be at least 1")
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.duration is None:
        args.duration = 0.7 if args.quick else 3.0
    return args


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse_args())))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted; every process started was stopped")
        sys.exit(130)
