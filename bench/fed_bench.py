"""Federation benchmark: a channel on capulet.lit, its followers on montague.lit.

One run starts two private Prosody instances federating over s2s on loopback (capulet.lit
and montague.lit, each on port 5269 of its own 127.x address, resolved through a private
hosts file: the test bed's recipe A), a channel server on each (`python -m buddycloud
serve`, SQLite), and measures, in rounds that alternate:

* the s2s routing ceiling of the pair: messages a raw component on capulet.lit's Prosody
  (`capulet-route.lit`) pushes over s2s to a raw component on montague.lit's
  (`montague-sink.lit`), each the size of one notification; and the same messages pushed
  over s2s to the followers' c2s sessions on montague.lit, one per follower;
* delivery: `owner@capulet.lit` posts to its channel over c2s, several posts in flight,
  while `--followers` users of montague.lit (raw c2s sessions, followers of the channel
  through their home server) wait for the notifications. Posts/s (acknowledged, and
  delivered to every follower), cross-domain notifications/s (posts x followers / time
  until the last follower had them all), and its share of the s2s ceiling;
* s2s stanzas per post: a Prosody module of the benchmark
  (bench/lib/prosody/mod_bench_s2s_count.lua) counts every stanza each Prosody routes
  to the other domain, by sender, receiver and kind; the counts before and after the
  posts, divided by the posts;
* latency: one post at a time, from sending it to the last follower's receipt.

Followers are online for the channel server that notifies them. Before the inbox
(federation contract), capulet.lit's server notifies every remote follower itself, one
s2s stanza each, and needs their directed presence; with the inbox, montague.lit's server
notifies its own users from the events it receives once per domain, and needs theirs.
`--mode auto` (the default) sends directed presence to both and reads which it is from
the first notification's sender; `per-user` and `inbox` send it to one only.

usage: .venv/bin/python -m bench.fed_bench [--followers 1000] [--quick]
       (see bench/README.md)
"""

from __future__ import annotations

import argparse
import asyncio
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

if not __package__:  # run as a script, python bench/fed_bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.rawxmpp import Client, Component, XmppError, attr
from bench.lib.servers import CLK_TCK, HOST, Process, _cpu_ticks, _group_pids, free_port, spawn
from bench.xmpp_bench import (
    Cpu,
    Target,
    expect_ready,
    gather_bounded,
    ok,
    pipelined,
    publish_stanza,
    route_template,
    sized,
    token,
    wait_component,
)
from buddycloud.prosody import (
    PrivateProsody,
    ProsodySettings,
    free_loopback_addresses,
    is_installed,
)

ROOT = Path(__file__).resolve().parent.parent
CAPULET = "capulet.lit"
MONTAGUE = "montague.lit"
OWNER = "owner"
PASSWORD = "benchpass"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_COUNT = "urn:bench:s2s-count"
MODULES = Path(__file__).resolve().parent / "lib" / "prosody"
OPEN_CONCURRENCY = 50
# At least this many posts per delivery measurement: with 1,000 followers one takes long.
MIN_POSTS = 10
LATENCY_POSTS = 5
# Published figures of the same kind of machine (shared/testbed README sections 5 and 10),
# printed beside this run's for comparison.
BASELINES = {
    "s2s": "testbed: c2s -> s2s -> component IQ round trips, 50 in flight: 3,999/s",
    "size": "testbed: ~970-byte messages from a component through one Prosody: ~5,200/s",
    "sessions": "testbed/xmpp_bench: ~900-byte messages to 1,000 c2s clients: ~1,800-2,600/s",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def service_of(domain: str) -> str:
    return f"channels.{domain}"


def cpu_of(pid: int) -> Callable[[], float]:
    """CPU seconds so far of the process group led by `pid`."""
    return lambda: sum(_cpu_ticks(p) for p in _group_pids(pid)) / CLK_TCK


def waited_of(pid: int) -> Callable[[], float]:
    """Seconds the threads of `pid`'s process group have so far spent ready to run but
    waiting for a CPU (the kernel's run queue: /proc/<pid>/task/<tid>/schedstat)."""

    def waited() -> float:
        total = 0
        for member in _group_pids(pid):
            try:
                tasks = os.listdir(f"/proc/{member}/task")
            except OSError:
                continue
            for tid in tasks:
                try:
                    with open(f"/proc/{member}/task/{tid}/schedstat") as f:
                        total += int(f.read().split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        return total / 1e9

    return waited


# --- the two domains ---------------------------------------------------------------------


class CountingProsody(PrivateProsody):
    """The project's private Prosody with the benchmark's s2s counter on every host."""

    def write_config(self) -> Path:
        path = super().write_config()
        text = path.read_text()
        text = text.replace("plugin_paths = { ", f'plugin_paths = {{ "{MODULES}"; ', 1)
        text = text.replace("modules_enabled = { ", 'modules_enabled = { "bench_s2s_count"; ', 1)
        # Components load only what they inherit (dialback, s2s...) plus their own list.
        text = text.replace(
            "\n  component_secret = ", '\n  modules_enabled = { "bench_s2s_count" }\n'
            "  component_secret = ",
        )  # fmt: skip
        path.write_text(text)
        return path


@dataclass
class Domain:
    name: str
    address: str
    prosody: CountingProsody
    workdir: Path
    secrets: dict[str, str]
    server: Process | None = None

    @property
    def c2s_port(self) -> int:
        return self.prosody.settings.c2s_port

    @property
    def component_port(self) -> int:
        return self.prosody.settings.component_port

    @property
    def service(self) -> str:
        return service_of(self.name)

    def cpu(self) -> Callable[[], float]:
        pid = self.prosody.pid
        assert pid is not None
        return cpu_of(pid)


# The benchmark's own components are no subdomains of either domain, so that they stay out
# of the domains' disco#items, which channel server discovery walks (the routing component
# answers nothing).
ROUTE = "capulet-route.lit"
ECHO = "capulet-echo.lit"
SINK = "montague-sink.lit"


def domain_names(domain: str) -> tuple[str, ...]:
    """The names of `domain`'s Prosody that the other one reaches over s2s (dialback too)."""
    extra = (ROUTE, ECHO) if domain == CAPULET else (SINK,)
    return (domain, service_of(domain), f"topics.{domain}", *extra)


def start_domains(scratch: Path, multicast: bool) -> tuple[Domain, Domain]:
    """Both Prosody instances, started and federating (recipe A of the test bed)."""
    addresses = dict(zip((CAPULET, MONTAGUE), free_loopback_addresses(2), strict=True))
    hosts = tuple((n, a) for d, a in addresses.items() for n in domain_names(d))
    domains: list[Domain] = []
    try:
        for name, address in addresses.items():
            workdir = scratch / name
            workdir.mkdir(parents=True)
            jids = domain_names(name)[1:]
            keys = {jid: secrets.token_hex(12) for jid in jids if not jid.startswith("topics.")}
            settings = ProsodySettings(
                domain=name,
                component_jid=service_of(name),
                component_secret=keys[service_of(name)],
                base_dir=workdir / "prosody",
                c2s_port=free_port(),
                component_port=free_port(),
                s2s_port=5269,
                s2s_interface=address,
                hosts=hosts,
                multicast=multicast,
                extra_components=tuple(
                    (jid, key) for jid, key in keys.items() if jid != service_of(name)
                ),
            )
            domain = Domain(name, address, CountingProsody(settings), workdir, keys)
            domains.append(domain)
            domain.prosody.start(30.0)
    except BaseException:
        for domain in domains:
            domain.prosody.stop()
        raise
    return domains[0], domains[1]


def start_channel_server(domain: Domain, multicast: bool) -> Process:
    """`buddycloud migrate` then `buddycloud serve` for `domain`, SQLite in its workdir."""
    base = domain.workdir / "buddycloud"
    base.mkdir()
    config = base / "buddycloud.toml"
    # TXT lookups go to a port where nothing answers: discovery finds the channel servers
    # through disco, and never asks real DNS.
    config.write_text(
        "[server]\n"
        f'domain = "{domain.name}"\n'
        f'topics_domain = "topics.{domain.name}"\n'
        "[storage]\n"
        f'url = "sqlite:///{base}/buddycloud.db"\n'
        "[xmpp]\n"
        f'component_jid = "{domain.service}"\n'
        f'secret = "{domain.secrets[domain.service]}"\n'
        f'host = "{HOST}"\n'
        f"port = {domain.component_port}\n"
        f"multicast = {'true' if multicast else 'false'}\n"
        "[http]\n"
        f'listen = "{HOST}:{free_port()}"\n'
        "[federation]\n"
        f'nameservers = ["{HOST}:{free_port()}"]\n'
        "dns_timeout = 1\n"
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
        f"buddycloud-{domain.name}",
        [*argv, "serve", "--config", str(config)],
        base / "serve.log",
        env=env,
        cwd=ROOT,
    )


@dataclass
class Bed:
    capulet: Domain
    montague: Domain
    mode: str
    trivial: Process | None = None
    sink: Component | None = None
    owner: Client | None = None
    probe: Client | None = None  # a montague.lit user who follows nothing
    followers: list[Client] = field(default_factory=list)
    channel: Target | None = None

    @property
    def node(self) -> str:
        return f"/user/{OWNER}@{CAPULET}/posts"

    def waited_procs(self) -> dict[str, Callable[[], float]]:
        """Run-queue waiting of the two Prosody processes: on a machine shared with other
        work, the time they were ready to route but had no CPU."""
        procs = {}
        for domain in (self.capulet, self.montague):
            pid = domain.prosody.pid
            assert pid is not None
            procs[f"{domain.name.split('.')[0]}-prosody"] = waited_of(pid)
        return procs

    def cpu_procs(self) -> dict[str, Callable[[], float]]:
        procs = {"capulet-prosody": self.capulet.cpu(), "montague-prosody": self.montague.cpu()}
        for domain in (self.capulet, self.montague):
            if domain.server is not None:
                procs[f"{domain.name.split('.')[0]}-channels"] = domain.server.cpu_seconds
        if self.trivial is not None:
            procs["route"] = self.trivial.cpu_seconds
        procs["loadgen"] = lambda: sum(os.times()[:2])
        return procs

    def stop(self) -> None:
        for client in [*self.followers, self.owner, self.probe, self.sink]:
            if client is not None:
                client.close()
        for domain in (self.capulet, self.montague):
            if domain.server is not None:
                domain.server.stop()
        if self.trivial is not None:
            self.trivial.stop()
        for domain in (self.capulet, self.montague):
            domain.prosody.stop()


async def login(domain: Domain, user: str, resource: str) -> Client:
    return await Client.open(
        HOST, domain.c2s_port, domain.name, user, PASSWORD, resource=resource, register=True
    )


async def setup(scratch: Path, args: argparse.Namespace) -> Bed:
    capulet, montague = await asyncio.to_thread(start_domains, scratch, args.multicast)
    bed = Bed(capulet, montague, args.mode)
    try:
        log(f"prosody: {CAPULET} on {capulet.address}, {MONTAGUE} on {montague.address}")
        bed.trivial = spawn(
            "trivial",
            [
                sys.executable, "-m", "bench.lib.trivial_component", HOST,
                "--echo", ECHO, "--echo-port", str(capulet.component_port),
                "--echo-secret", capulet.secrets[ECHO],
                "--route", ROUTE, "--route-port", str(capulet.component_port),
                "--route-secret", capulet.secrets[ROUTE],
            ],
            scratch / "trivial.log",
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout_pipe=True,
        )  # fmt: skip
        await expect_ready(bed.trivial, 30)
        bed.sink = await Component.open(HOST, montague.component_port, SINK, montague.secrets[SINK])
        for domain in (capulet, montague):
            domain.server = start_channel_server(domain, args.multicast)
        bed.owner = await login(capulet, OWNER, "pub")
        bed.probe = await login(montague, "probe", "probe")
        await wait_component(bed.owner, capulet.service, 60)
        await wait_component(bed.probe, montague.service, 60)
        # The pair's s2s links, both ways, and capulet.lit's server seen from montague.lit.
        await wait_component(bed.probe, capulet.service, 60)
        await wait_component(bed.owner, montague.service, 60)
        reply = await bed.owner.iq(
            f"<iq type='set' to='{capulet.service}' id='reg'>"
            "<query xmlns='jabber:iq:register'/></iq>",
            "reg",
        )
        if not ok(reply):
            raise XmppError(f"registration with {capulet.service} failed: {reply[:300]!r}")
        bed.channel = Target("ours", capulet.service, bed.node, bed.owner)
        await add_followers(bed, args.followers)
        return bed
    except BaseException:
        bed.stop()
        raise


async def follow(bed: Bed, client: Client) -> None:
    """Follow the channel as a user does: through the home server, montague.lit's."""
    iq_id = "s" + secrets.token_hex(4)
    bare = client.jid.split("/")[0]
    reply = await client.iq(
        f"<iq type='set' to='{bed.montague.service}' id='{iq_id}'><pubsub xmlns='{NS_PUBSUB}'>"
        f"<subscribe node='{bed.node}' jid='{bare}'/></pubsub></iq>",
        iq_id,
        timeout=120,
    )
    if not ok(reply) or not re.search(rb"subscription=['\"]subscribed", reply):
        raise XmppError(f"{bare} could not follow {bed.node}: {reply[:400]!r}")


async def add_followers(bed: Bed, count: int) -> None:
    new: list[Client | None] = [None] * count

    async def open_one(k: int) -> None:
        new[k] = await login(bed.montague, f"f{k}", f"r{k}")

    t0 = time.perf_counter()
    await gather_bounded([lambda k=k: open_one(k) for k in range(count)], OPEN_CONCURRENCY)
    bed.followers = [c for c in new if c is not None]
    log(f"{count} users of {MONTAGUE} online ({time.perf_counter() - t0:.1f}s)")
    t0 = time.perf_counter()
    await gather_bounded([lambda c=c: follow(bed, c) for c in bed.followers], OPEN_CONCURRENCY)
    log(f"{count} followers of {bed.node} through {bed.montague.service} "
        f"({time.perf_counter() - t0:.1f}s)")  # fmt: skip
    # Online only once all follow: each new follower is announced to the online ones.
    services = {
        "auto": (bed.capulet.service, bed.montague.service),
        "per-user": (bed.capulet.service,),
        "inbox": (bed.montague.service,),
    }[bed.mode]

    async def online(client: Client) -> None:
        # An IQ after the presence takes the same path: once it is answered, the channel
        # server has read the presence, and knows the follower online.
        for service in services:
            client.send(f"<presence to='{service}'/>")
            await wait_component(client, service, 60)

    # The channel's server may still be sending the new followers' subscriptions to
    # montague.lit's (the inbox): each would be announced to every follower online by
    # then. One follower goes online first and waits for a post, which comes after them.
    t0 = time.perf_counter()
    await online(bed.followers[0])
    await barrier(bed, bed.followers[:1])
    await gather_bounded([lambda c=c: online(c) for c in bed.followers[1:]], OPEN_CONCURRENCY)
    log(f"{count} followers online for {' and '.join(services)} ({time.perf_counter() - t0:.1f}s)")


async def barrier(bed: Bed, followers: list[Client] | None = None) -> dict[str, int]:
    """Publish one post and wait until every follower (or each of `followers`) has it;
    record the notification. Returns how many got it from which sender (the mode)."""
    if followers is None:
        followers = bed.followers
    target = bed.channel
    assert target is not None
    mark = token()
    run = secrets.token_hex(3)
    reply = await target.publisher.iq(
        publish_stanza(target.service, target.node, run, 0, mark), f"{run}p0"
    )
    if not ok(reply):
        raise XmppError(f"publish to {target.service} failed: {reply[:400]!r}")
    needle = mark.encode()
    outs = await asyncio.gather(
        *(f.expect(re.escape(needle) + rb".*?</message>", 120) for f in followers)
    )
    senders: dict[str, int] = {}
    for out in outs:
        start = out.rfind(b"<message", 0, out.find(needle))
        sender = attr("from", out[start:]) or "?"
        senders[sender] = senders.get(sender, 0) + 1
    sample = outs[0][outs[0].rfind(b"<message", 0, outs[0].find(needle)) :]
    target.sample = sample
    target.sample_reply = reply
    target.sample_mark = needle
    target.sample_to = followers[0].jid
    target.marks_per_notification = sample.count(needle)
    return senders


def mode_of(bed: Bed, senders: dict[str, int]) -> str:
    if set(senders) == {bed.capulet.service}:
        return "per-user"
    if set(senders) == {bed.montague.service}:
        return "inbox"
    raise XmppError(f"notifications came from an unexpected mix of senders: {senders}")


# --- s2s counts ----------------------------------------------------------------------------


async def s2s_counts(client: Client, domain: str) -> dict[tuple[str, str, str], int]:
    iq_id = "c" + secrets.token_hex(4)
    reply = await client.iq(
        f"<iq type='get' to='{domain}' id='{iq_id}'><query xmlns='{NS_COUNT}'/></iq>", iq_id
    )
    if not ok(reply):
        raise XmppError(f"the s2s counter of {domain} did not answer: {reply[:300]!r}")
    counts = {}
    for tag in re.findall(rb"<count\b[^>]*>", reply):
        key = (attr("from", tag) or "", attr("to", tag) or "", attr("name", tag) or "")
        counts[key] = int(attr("n", tag) or 0)
    return counts


@dataclass
class S2s:
    """Stanzas each way between the two domains over an interval, by kind."""

    out: dict[str, int]  # capulet.lit -> montague.lit
    back: dict[str, int]  # montague.lit -> capulet.lit

    def text(self, per: int) -> str:
        def one(d: dict[str, int]) -> str:
            return (
                ", ".join(
                    f"{n} {kind} ({n / per:.4g} per post)" for kind, n in sorted(d.items()) if n
                )
                or "none"
            )

        return f"{CAPULET}->{MONTAGUE}: {one(self.out)}; back: {one(self.back)}"


class S2sMeter:
    def __init__(self, bed: Bed) -> None:
        self.bed = bed
        self.before: tuple[dict[tuple[str, str, str], int], ...] = ()

    async def read(self) -> tuple[dict[tuple[str, str, str], int], ...]:
        assert self.bed.owner is not None and self.bed.probe is not None
        return (
            await s2s_counts(self.bed.owner, CAPULET),
            await s2s_counts(self.bed.probe, MONTAGUE),
        )

    async def start(self) -> None:
        self.before = await self.read()

    async def stop(self) -> S2s:
        after = await self.read()

        def delta(i: int, to_domain: str) -> dict[str, int]:
            hosts = domain_names(to_domain)
            out: dict[str, int] = {}
            for key, n in after[i].items():
                _, to, kind = key
                if to in hosts:
                    out[kind] = out.get(kind, 0) + n - self.before[i].get(key, 0)
            return out

        return S2s(delta(0, MONTAGUE), delta(1, CAPULET))


# --- measurements --------------------------------------------------------------------------


async def route(bed: Bed, targets: list[str], n: int, template: str) -> None:
    """Have the routing component send `n` messages round-robin to `targets`."""
    assert bed.trivial is not None
    proc = bed.trivial.popen
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    stdin.write(json.dumps({"targets": targets, "n": n, "template": template}).encode() + b"\n")
    stdin.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, stdout.readline)
    if not line.startswith(b"SENT"):
        raise RuntimeError(f"routing component: {line!r} {bed.trivial.tail()}")


class Usage:
    """CPU use of every process, and run-queue waiting of the two Prosody processes, over
    one measured interval (percent of one core, percent of the wall time)."""

    def __init__(self, bed: Bed) -> None:
        self.cpu = Cpu(bed.cpu_procs())
        self.waited = Cpu(bed.waited_procs())

    def __enter__(self) -> Usage:
        self.cpu.__enter__()
        self.waited.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu.__exit__(*exc)
        self.waited.__exit__(*exc)

    def text(self) -> str:
        WAITED.append(dict(self.waited.used))
        return f"cpu: {self.cpu.text()}; waiting for a CPU: {self.waited.text()}"


# Run-queue waiting of each measurement, for the report.
WAITED: list[dict[str, float]] = []


async def ceiling_to_component(bed: Bed, n: int) -> tuple[float, float, str]:
    """Messages/s from the routing component to the sink component; and the s2s stanzas per
    message counted by the Prosody module (a check of the counter: it must be 1)."""
    assert bed.sink is not None and bed.channel is not None
    mark = token()
    template = route_template(bed.channel, ROUTE).replace("MARK", mark)
    meter = S2sMeter(bed)
    await meter.start()
    bed.sink.start_counting(mark.encode(), n * bed.channel.marks_per_notification)
    with Usage(bed) as usage:
        t0 = time.perf_counter()
        try:
            await route(bed, [SINK], n, template)
            await asyncio.wait_for(bed.sink.counted.wait(), 300)
        finally:
            bed.sink.stop_counting()
            bed.sink.buf.clear()
    rate = n / (bed.sink.done_at - t0)
    s2s = await meter.stop()
    return rate, s2s.out.get("message", 0) / n, usage.text()


async def ceiling_to_users(bed: Bed, per: int) -> tuple[float, str]:
    """Messages/s from the routing component to every follower's session, `per` each."""
    assert bed.channel is not None
    mark = token()
    template = route_template(bed.channel, ROUTE).replace("MARK", mark)
    followers = bed.followers
    for f in followers:
        f.start_counting(mark.encode(), per * bed.channel.marks_per_notification)
    with Usage(bed) as usage:
        t0 = time.perf_counter()
        try:
            await route(bed, [f.jid for f in followers], per * len(followers), template)
            await asyncio.wait_for(asyncio.gather(*(f.counted.wait() for f in followers)), 300)
        finally:
            for f in followers:
                f.stop_counting()
    return per * len(followers) / (max(f.done_at for f in followers) - t0), usage.text()


@dataclass
class Delivery:
    posts: int
    acked: float  # posts/s acknowledged to the owner
    delivered: float  # posts/s delivered to every follower
    notifications: float  # notifications/s
    s2s: S2s
    cpu: str


async def deliver(bed: Bed, n: int, window: int) -> Delivery:
    """Post `n` times, `window` in flight; wait until every follower has every post."""
    target = bed.channel
    assert target is not None
    meter = S2sMeter(bed)
    await meter.start()
    mark = token()
    followers = bed.followers
    for f in followers:
        f.start_counting(mark.encode(), n * target.marks_per_notification)
    run = secrets.token_hex(3)
    with Usage(bed) as cpu:
        t0 = time.perf_counter()
        try:
            acked = await pipelined(
                target.publisher,
                lambda i: publish_stanza(target.service, target.node, run, i, mark),
                n,
                window,
            )
            await asyncio.wait_for(asyncio.gather(*(f.counted.wait() for f in followers)), 600)
        finally:
            for f in followers:
                f.stop_counting()
        last = max(f.done_at for f in followers) - t0
    s2s = await meter.stop()
    return Delivery(n, n / acked, n / last, n * len(followers) / last, s2s, cpu.text())


async def latency(bed: Bed) -> tuple[float, float]:
    """One post alone: seconds until the first and until the last follower had it."""
    target = bed.channel
    assert target is not None
    mark = token()
    for f in bed.followers:
        f.start_counting(mark.encode(), target.marks_per_notification)
    run = secrets.token_hex(3)
    t0 = time.perf_counter()
    try:
        answer = asyncio.create_task(
            target.publisher.iq(
                publish_stanza(target.service, target.node, run, 0, mark), f"{run}p0"
            )
        )
        await asyncio.wait_for(asyncio.gather(*(f.counted.wait() for f in bed.followers)), 120)
        if not ok(await answer):
            raise XmppError("a post was refused")
    finally:
        for f in bed.followers:
            f.stop_counting()
    done = [f.done_at - t0 for f in bed.followers]
    return min(done), max(done)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Results:
    ceiling: list[float] = field(default_factory=list)
    counter_check: list[float] = field(default_factory=list)
    to_users: list[float] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)
    single: S2s | None = None  # the s2s stanzas of the latency posts, sent one at a time
    errors: list[str] = field(default_factory=list)
    # round -> measurement -> rate: the share of the ceiling is taken within each round
    rounds: dict[int, dict[str, float]] = field(default_factory=dict)
    round: int = 0

    def record(self, name: str, value: float) -> None:
        self.rounds.setdefault(self.round, {})[name] = value

    def shares(self) -> list[float]:
        """Notifications/s as a share of the ceiling of the same round."""
        return [
            r["notifications"] / r["ceiling"]
            for r in self.rounds.values()
            if "notifications" in r and r.get("ceiling")
        ]


async def run_rounds(bed: Bed, args: argparse.Namespace, results: Results) -> None:
    assert bed.channel is not None
    followers = len(bed.followers)
    # Warm-ups size each measurement to about --duration seconds.
    rate, _, _ = await ceiling_to_component(bed, 500)
    n_ceiling = sized(rate, 1, args.duration, 200, 200_000)
    rate, _ = await ceiling_to_users(bed, max(1, 500 // followers))
    per_user = sized(rate, followers, args.duration, 2, 10_000)
    warm = await deliver(bed, max(2, min(args.window, 500 // followers)), args.window)
    n_posts = sized(warm.notifications, followers, args.duration, MIN_POSTS, 20_000)
    log(f"sizes: {n_ceiling} messages to the sink, {per_user} per follower, {n_posts} posts")

    async def m_ceiling() -> str:
        rate, check, usage = await ceiling_to_component(bed, n_ceiling)
        results.ceiling.append(rate)
        results.record("ceiling", rate)
        results.counter_check.append(check)
        return f"s2s ceiling {rate:,.0f} msg/s (counted {check:g} s2s stanza per message); {usage}"

    async def m_users() -> str:
        rate, usage = await ceiling_to_users(bed, per_user)
        results.to_users.append(rate)
        return f"s2s to {followers} sessions {rate:,.0f} msg/s; {usage}"

    async def m_deliver() -> str:
        d = await deliver(bed, n_posts, args.window)
        results.deliveries.append(d)
        results.record("notifications", d.notifications)
        return (
            f"{d.posts} posts: {d.acked:,.0f} acked/s, {d.delivered:,.1f} delivered/s, "
            f"{d.notifications:,.0f} notifications/s; s2s stanzas {d.s2s.text(d.posts)}; "
            f"{d.cpu}"
        )

    systems: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("ceiling", m_ceiling),
        ("to-users", m_users),
        ("delivery", m_deliver),
    ]
    for r in range(args.rounds):
        results.round = r
        shift = r % len(systems)
        for name, measure in systems[shift:] + systems[:shift]:
            try:
                log(f"round {r + 1}: {await measure()}")
            except (XmppError, TimeoutError, RuntimeError, ConnectionError) as exc:
                results.errors.append(f"round {r + 1} {name}: {exc!r}")
                log(f"FAILED round {r + 1} {name}: {exc!r}")
    # One post at a time: nothing to batch, so each post's own s2s stanzas are counted too.
    meter = S2sMeter(bed)
    await meter.start()
    for _ in range(LATENCY_POSTS):
        try:
            first, last = await latency(bed)
        except (XmppError, TimeoutError) as exc:
            results.errors.append(f"latency: {exc!r}")
            continue
        results.latencies.append((first, last))
        log(f"latency: first follower {first * 1000:.0f} ms, last {last * 1000:.0f} ms")
    results.single = await meter.stop()
    log(f"s2s stanzas of {LATENCY_POSTS} single posts: {results.single.text(LATENCY_POSTS)}")


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(
    results: Results, bed_mode: str, args: argparse.Namespace, load: tuple[str, str], elapsed: float
) -> str:
    ds = results.deliveries
    ceiling = med(results.ceiling)
    to_users = med(results.to_users)
    notifications = med([d.notifications for d in ds])
    s2s_out = med([sum(d.s2s.out.values()) / d.posts for d in ds])
    s2s_back = med([sum(d.s2s.back.values()) / d.posts for d in ds])
    kinds = "; ".join(
        f"round {i + 1}, {d.posts} posts: {d.s2s.text(d.posts)}" for i, d in enumerate(ds)
    )
    lat_last = [last * 1000 for _, last in results.latencies]
    lat_first = [first * 1000 for first, _ in results.latencies]
    shares = results.shares()
    share = med(shares)
    lines = [
        f"Mode: {bed_mode} ({args.followers:,} followers on {MONTAGUE} of a channel on "
        f"{CAPULET}; posts by the owner over c2s, {args.window} in flight; multicast "
        f"{'on' if args.multicast else 'off'})",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| s2s routing ceiling: messages/s from a {CAPULET} component to a {MONTAGUE} "
        f"component | {ceiling:,.0f} | |",
        f"| s2s messages/s from a {CAPULET} component to the {args.followers:,} followers' "
        f"sessions | {to_users:,.0f} | |",
        f"| posts/s acknowledged to the owner | {med([d.acked for d in ds]):,.0f} | |",
        f"| posts/s delivered to every follower | {med([d.delivered for d in ds]):,.1f} | |",
        f"| cross-domain notifications/s | {notifications:,.0f} | |",
        f"| notifications/s / s2s ceiling, median of the rounds' shares "
        f"({', '.join(f'{100 * x:.0f} %' for x in shares)}) | **{100 * share:.1f} %** | >= 80 %: "
        f"**{'met' if share >= 0.8 else 'not met'}** |",
        f"| s2s stanzas per post, {CAPULET} -> {MONTAGUE} (one following domain) | "
        f"**{s2s_out:,.2f}** | 1: **{'met' if s2s_out <= 1.0 else 'not met'}** |",
        f"| s2s stanzas per post, {MONTAGUE} -> {CAPULET} | {s2s_back:,.2f} | |",
        f"| s2s stanzas per post, {CAPULET} -> {MONTAGUE}, posts sent one at a time | "
        + (
            f"{sum(results.single.out.values()) / LATENCY_POSTS:,.2f} | |"
            if results.single is not None
            else "– | |"
        ),
        f"| latency, post to first / last follower, median of {len(lat_last)} (ms) | "
        f"{med(lat_first):,.0f} / {med(lat_last):,.0f} (worst last {max(lat_last, default=0):,.0f})"
        " | |",
        "",
        f"Rounds: {args.rounds}, about {args.duration:g} s each measurement; medians. "
        f"Whole run {elapsed:.0f} s. Load average before: {load[0]}; after: {load[1]}.",
        f"s2s stanzas by kind: {kinds}.",
        "Counter check: the s2s counter counted "
        + ", ".join(f"{c:g}" for c in results.counter_check)
        + " stanza(s) per message of the ceiling (must be 1).",
        "Prosody waiting for a CPU (ready to run, none free), median over the measurements: "
        + ", ".join(
            f"{name} {med([w[name] for w in WAITED if name in w]):.0f} %"
            for name in ("capulet-prosody", "montague-prosody")
        )
        + " of the wall time.",
        "Compare: " + "; ".join(BASELINES.values()) + ".",
    ]
    if results.errors:
        lines += ["", "Failures:", *(f"- {e}" for e in results.errors)]
    return "\n".join(lines)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> int:
    if not is_installed():
        raise SystemExit("Prosody is not installed (apt-get install -y prosody)")
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    scratch = Path(tempfile.mkdtemp(prefix="fed-bench-"))
    results = Results()
    load_before = loadavg()
    t0 = time.perf_counter()
    mode = "?"
    bed: Bed | None = None
    try:
        bed = await setup(scratch, args)
        senders = await barrier(bed)
        detected = mode_of(bed, senders)
        if args.mode not in ("auto", detected):
            raise XmppError(f"--mode {args.mode}, but the notifications came as {detected}")
        mode = detected
        log(f"mode: {mode} (notifications from {', '.join(senders)})")
        log(f"notification {len(bed.channel.sample) if bed.channel else 0} B")
        await run_rounds(bed, args, results)
    except (XmppError, TimeoutError, RuntimeError, ConnectionError, OSError, ExceptionGroup) as exc:
        results.errors.append(f"setup: {exc!r}")
        log(f"FAILED: {exc!r}")
    finally:
        if bed is not None:
            bed.stop()
        if args.keep:
            log(f"scratch kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(report(results, mode, args, (load_before, loadavg()), time.perf_counter() - t0))
    return 1 if results.errors or not results.deliveries else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fed_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--followers", type=int, default=1000, help="default 1000")
    parser.add_argument("--window", type=int, default=10, help="posts in flight (default 10)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 4)")
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument(
        "--mode",
        choices=("auto", "per-user", "inbox"),
        default="auto",
        help="which channel server the followers are online for (default auto: both, and "
        "the first notification's sender tells which notifies them)",
    )
    parser.add_argument(
        "--no-multicast",
        dest="multicast",
        action="store_false",
        help="no XEP-0033 service on either Prosody: the channel servers send one stanza "
        "per recipient",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    if args.followers < 1 or args.window < 1:
        parser.error("--followers and --window must be at least 1")
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.duration is None:
        args.duration = 1.0 if args.quick else 4.0
    return args


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse_args())))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted; every process started was stopped")
        sys.exit(130)
