"""The HTTP edge under load, on loopback, in one run (docs/benchmarks.md, "HTTP edge").

    .venv/bin/python -m bench.http_bench              # ~3 min; apt-get install wrk first
    .venv/bin/python -m bench.http_bench --quick      # smoke run, ~1 min

1. REST, with `wrk` (or a Python generator of the same shape) in other processes against
   the server of bench/lib/http_server.py (`serve`'s own setup: SQLite, uvicorn):
   - the ceiling: `GET /api` without credentials, the cheapest answer the same uvicorn
     and application give (204 after the error funnel, CORS and routing);
   - reads: a page of 20 posts, `GET /api/owner@bench.lit/content/posts?max=20`, signed in
     with Basic;
   - posts: `POST /api/<user>/content/posts`, signed in, each acknowledged only once
     durable: to `writer@bench.lit`'s channel, which nobody follows, then to the owner's,
     with the followers of the fan-out (skipped when the server has no such route).
2. Websocket fan-out, with 1,000 and then 10,000 signed-in sockets of as many followers,
   held by client processes of bench/lib/ws_clients.py: the server's memory per idle
   socket (RSS growth / sockets), then, for each of `--rounds` posts, the time from the
   call that publishes it until the last socket has it (`time.monotonic()`, one clock for
   every process on the machine), and the server's CPU time (all threads) from that call
   until the last socket has it: it moves less with the machine's load than the time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import math
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.lib import httpload
from bench.lib.http_server import BENCH_PASSWORD, OWNER, WRITER

PAGE = f"/api/{OWNER}/content/posts"
POST_NUMBERS = itertools.count(1)  # each post of the run has its own text


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Child:
    """A benchmark process in its own session, spoken to in JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name

    @classmethod
    async def start(cls, name: str, *argv: str, log_path: Path) -> Child:
        with open(log_path, "ab") as errors:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=errors,
                start_new_session=True,
                limit=1 << 20,
            )
        return cls(process, name)

    async def read(self, timeout: float = 120.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited (status {await self.process.wait()})")
        message: dict[str, Any] = json.loads(line)
        return message

    async def ask(self, command: str, timeout: float = 120.0) -> dict[str, Any]:
        self.send(command)
        return await self.read(timeout)

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")

    async def stop(self) -> None:
        if self.process.returncode is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()


@dataclass
class FanOut:
    sockets: int
    memory_per_socket: float
    connect_seconds: float
    latencies: list[float] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    """One load run and the server's CPU time (all threads, user + system) per request."""

    load: httpload.Load
    cpu: float

    @property
    def rate(self) -> float:
        return self.load.rate


@dataclass
class Results:
    # the ceiling and the reads are measured in alternating rounds
    ceiling: list[Run] = field(default_factory=list)
    reads: list[Run] = field(default_factory=list)
    # (channel, its followers, the run) of each posts run
    posts: list[tuple[str, int, Run]] = field(default_factory=list)
    posts_note: str = ""
    fan_outs: list[FanOut] = field(default_factory=list)

    @property
    def ceiling_rate(self) -> float:
        return statistics.median(run.rate for run in self.ceiling)


def cpu_seconds(pid: int) -> float:
    """User and system time of a process so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    pid: int, method: str, path: str, headers: dict[str, str], body: bytes, **load: Any
) -> Run:
    before = cpu_seconds(pid)
    result = await asyncio.to_thread(
        httpload.run, load.pop("port"), method, path, headers, body, **load
    )
    return Run(result, (cpu_seconds(pid) - before) / max(1, result.requests))


def probe(port: int, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body or None, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def bench_rest(port: int, pid: int, args: argparse.Namespace, results: Results) -> None:
    basic = "Basic " + base64.b64encode(f"{OWNER}:{BENCH_PASSWORD}".encode()).decode()
    signed = {"Authorization": basic}
    run = {
        "port": port,
        "connections": args.connections,
        "threads": args.threads,
        "seconds": args.seconds,
    }
    assert probe(port, "GET", f"{PAGE}?max=20", signed, b"") == 200  # also caches the sign-in
    for round_number in range(1, args.rest_rounds + 1):
        log(
            f"REST round {round_number}/{args.rest_rounds}: ceiling GET /api, "
            f"{args.connections} connections, {args.seconds} s"
        )
        results.ceiling.append(await measure(pid, "GET", "/api", {}, b"", **run))
        log(f"REST round {round_number}/{args.rest_rounds}: reads GET {PAGE}?max=20")
        results.reads.append(await measure(pid, "GET", f"{PAGE}?max=20", signed, b"", **run))
        log(
            f"  ceiling {results.ceiling[-1].rate:,.0f} req/s, reads "
            f"{results.reads[-1].rate:,.0f} req/s "
            f"({results.reads[-1].rate / results.ceiling[-1].rate:.0%})"
        )
    body = json.dumps({"content": f"a post over REST {httpload.NUMBER} " + "x" * 200}).encode()
    headers = {**signed, "Content-Type": "application/json"}
    status = probe(port, "POST", PAGE, headers, body.replace(httpload.NUMBER.encode(), b"0"))
    if status in (404, 405):
        results.posts_note = f"not measured: POST {PAGE} answers {status} on this build"
        log(results.posts_note)
        return
    if status != 201:
        raise RuntimeError(f"POST {PAGE} answered {status}")
    writer = "Basic " + base64.b64encode(f"{WRITER}:{BENCH_PASSWORD}".encode()).decode()
    writer_page = f"/api/{WRITER}/content/posts"
    writer_headers = {**headers, "Authorization": writer}
    assert probe(port, "POST", writer_page, writer_headers, b'{"content": "first"}') == 201
    for channel, path, followers, sent in (
        (WRITER, writer_page, 0, writer_headers),
        (OWNER, PAGE, args.followers, headers),
    ):
        log(f"REST posts: POST {path} ({followers} followers)")
        posted = await measure(pid, "POST", path, sent, body, **run)
        results.posts.append((str(channel), followers, posted))


async def bench_fan_out(
    server: Child, port: int, sockets: int, args: argparse.Namespace, scratch: Path
) -> FanOut:
    before = await server.ask("status")
    assert before["connected"] == 0, before
    processes = max(1, math.ceil(sockets / args.per_process))
    log(f"fan-out: connecting {sockets} sockets from {processes} processes")
    started = time.monotonic()
    clients: list[Child] = []
    try:
        for index in range(processes):
            first = 1 + index * args.per_process
            count = min(args.per_process, sockets - index * args.per_process)
            clients.append(
                await Child.start(
                    f"clients {index}",
                    "-m",
                    "bench.lib.ws_clients",
                    f"--port={port}",
                    f"--first={first}",
                    f"--count={count}",
                    log_path=scratch / "clients.log",
                )
            )
        connected = [await client.read(300) for client in clients]
        failed = sum(report["failed"] for report in connected)
        if failed:
            raise RuntimeError(f"{failed} sockets failed to connect; see {scratch}/clients.log")
        connect_seconds = time.monotonic() - started
        status = await server.ask("status")
        assert status["connected"] == sockets, status
        memory = (status["rss"] - before["rss"]) / sockets
        log(f"  connected in {connect_seconds:.1f} s; {memory / 1024:.1f} KiB per socket")
        result = FanOut(sockets, memory, connect_seconds)
        for _ in range(args.rounds):
            number = next(POST_NUMBERS)
            for client in clients:
                client.send(f"expect {number}")
            for client in clients:
                assert (await client.read())["ready"] == number
            posted = await server.ask(f"post {number}")
            rounds = [await client.read(60) for client in clients]
            cpu = (await server.ask("status"))["cpu"] - posted["cpu"]
            received = sum(report["received"] for report in rounds)
            if not received:
                raise RuntimeError(f"no socket received post {number}")
            last = max(report["last"] for report in rounds if report["received"])
            result.latencies.append(last - posted["t0"])
            result.received.append(received)
            result.cpu.append(cpu)
            log(
                f"  post: {received}/{sockets} sockets, the last after "
                f"{(last - posted['t0']) * 1000:.0f} ms (publish returned after "
                f"{(posted['t1'] - posted['t0']) * 1000:.1f} ms; server CPU "
                f"{cpu * 1000:.1f} ms)"
            )
        return result
    finally:
        for client in clients:
            client.send("close")
        for client in clients:
            await client.stop()
        deadline = time.monotonic() + 60
        while (await server.ask("status"))["connected"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # polling the server's count until the sockets are gone


def report(results: Results, args: argparse.Namespace, elapsed: float) -> str:
    lines = [
        f"HTTP edge benchmark, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{platform.node()} ({os.cpu_count()} CPUs, shared), Python {platform.python_version()}, "
        f"{elapsed:.0f} s",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    if results.ceiling:
        ceiling = results.ceiling_rate
        ceiling_cpu = statistics.median(run.cpu for run in results.ceiling)
        lines.append(
            f"| ceiling: `GET /api`, {args.connections} connections "
            f"({results.ceiling[0].load.tool}), median of {len(results.ceiling)} | "
            f"{ceiling:,.0f} req/s; server CPU "
            f"{ceiling_cpu * 1e6:,.0f} µs per request | |"
        )
        shares = [
            read.rate / top.rate for read, top in zip(results.reads, results.ceiling, strict=True)
        ]
        reads_cpu = statistics.median(run.cpu for run in results.reads)
        lines.append(
            f"| REST reads: `GET {PAGE}?max=20`, signed in, median of {len(results.reads)} | "
            f"{statistics.median(run.rate for run in results.reads):,.0f} req/s, "
            f"**{statistics.median(shares):.0%} of the ceiling** (rounds: "
            f"{', '.join(f'{share:.0%}' for share in shares)}); server CPU "
            f"{reads_cpu * 1e6:,.0f} µs per request ({reads_cpu / ceiling_cpu:.1f}x the "
            "ceiling's) | ≥ 50 % of the ceiling |"
        )
        for channel, followers, posts in results.posts:
            lines.append(
                f"| REST posts: `POST /api/{channel}/content/posts`, signed in, each answered "
                f"once durable; {followers:,} followers | {posts.rate:,.0f} posts/s "
                f"({posts.rate / ceiling:.0%} of the ceiling); server CPU "
                f"{posts.cpu * 1e6:,.0f} µs per post | |"
            )
    if results.posts_note:
        lines.append(f"| REST posts | {results.posts_note} | |")
    for fan in results.fan_outs:
        worst = max(fan.latencies)
        median = statistics.median(fan.latencies)
        complete = all(received == fan.sockets for received in fan.received)
        lines.append(
            f"| fan-out to {fan.sockets:,} sockets: post to last socket, median / worst of "
            f"{len(fan.latencies)} | {median * 1000:,.0f} / {worst * 1000:,.0f} ms"
            f"{'' if complete else ' (some sockets missed posts)'} | "
            f"{'≤ 1 s' if fan.sockets >= 10_000 else ''} |"
        )
        cpu = statistics.median(fan.cpu)
        lines.append(
            f"| fan-out to {fan.sockets:,} sockets: server CPU from post to last socket, median of "
            f"{len(fan.cpu)} | {cpu * 1000:,.1f} ms ({cpu / fan.sockets * 1e6:.1f} µs per "
            "socket) | |"
        )
        lines.append(
            f"| server memory per idle socket ({fan.sockets:,} open) | "
            f"{fan.memory_per_socket / 1024:.1f} KiB | ≤ 50 KiB |"
        )
    runs = [*results.ceiling, *results.reads, *(run for _, _, run in results.posts)]
    errors = [run.load.errors for run in runs if run.load.errors]
    if errors:
        lines.append("")
        lines.append(f"non-2xx answers or socket errors: {errors}")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, 1,000 sockets only")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each REST run")
    parser.add_argument(
        "--rest-rounds", type=int, default=3, help="alternating runs of the ceiling and reads"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="load generator threads")
    parser.add_argument("--sockets", default="1000,10000", help="fan-out sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=5, help="posts per fan-out size")
    parser.add_argument("--per-process", type=int, default=2500, help="sockets per client process")
    parser.add_argument("--no-rest", action="store_true")
    parser.add_argument("--no-fan-out", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.sockets, args.rounds, args.rest_rounds = 3.0, "1000", 3, 1
    sizes = [int(size) for size in args.sockets.split(",") if size]
    args.followers = max(sizes, default=0)
    started = time.monotonic()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="http-bench-") as directory:
        scratch = Path(directory)
        log(f"starting the server ({args.followers} followers); logs in {scratch}")
        server = await Child.start(
            "server",
            "-m",
            "bench.lib.http_server",
            f"--dir={scratch}",
            f"--followers={args.followers}",
            log_path=scratch / "server.log",
        )
        try:
            ready = await server.read(600)
            port = int(ready["port"])
            if not args.no_rest:
                await bench_rest(port, int(ready["pid"]), args, results)
            if not args.no_fan_out:
                for size in sizes:
                    results.fan_outs.append(await bench_fan_out(server, port, size, args, scratch))
            server.send("quit")
        except BaseException:
            log_tail = (scratch / "server.log").read_text(errors="replace")[-3000:]
            log(f"server log ends with:\n{log_tail}")
            raise
        finally:
            await server.stop()
    print(report(results, args, time.monotonic() - started))


if __name__ == "__main__":
    asyncio.run(main())
