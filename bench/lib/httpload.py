"""HTTP load for bench/http_bench.py: `wrk` when installed (Debian `wrk`), else a Python
generator of the same shape (several processes, keep-alive connections, one request in
flight per connection), both run outside the server's process.

`NUMBER` in a body is replaced by a number of its own in every request (`<thread>-<n>`),
so that each post of a run has its own text."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NUMBER = "#NUMBER#"


@dataclass(frozen=True)
class Load:
    """One run: requests answered per second, how many were not 2xx, and by whom;
    `requests` answered in all."""

    rate: float
    errors: int
    tool: str
    requests: int


def run(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    connections: int,
    threads: int,
    seconds: float,
) -> Load:
    if shutil.which("wrk"):
        return _wrk(port, method, path, headers, body, connections, threads, seconds)
    return _python(port, method, path, headers, body, connections, threads, seconds)


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _wrk(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    connections: int,
    threads: int,
    seconds: float,
) -> Load:
    lines = [f"wrk.method = {_lua_string(method)}"]
    text = body.decode()
    if NUMBER in text:
        before, _, after = text.partition(NUMBER)
        lines += [
            "local threads = 0",
            'function setup(thread) threads = threads + 1; thread:set("tid", threads) end',
            "local sent = 0",
            "function request()",
            "  sent = sent + 1",
            f"  local body = {_lua_string(before)} .. tid .. '-' .. sent .. {_lua_string(after)}",
            "  return wrk.format(nil, nil, nil, body)",
            "end",
        ]
    elif body:
        lines.append(f"wrk.body = {_lua_string(text)}")
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    lines.append(
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("non2xx %d\\n", summary.errors.status))\nend'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        output = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}{path}",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"non2xx (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if rate is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    total = re.search(r"(\d+) requests in", output)
    answered = int(total.group(1)) if total else round(float(rate.group(1)) * seconds)
    return Load(float(rate.group(1)), failed, "wrk", answered)


def _python(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    connections: int,
    threads: int,
    seconds: float,
) -> Load:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    per_process = [connections // threads + (i < connections % threads) for i in range(threads)]
    with multiprocessing.get_context("spawn").Pool(threads) as pool:
        results = pool.starmap(
            _worker,
            [
                (port, head.encode(), body, f"{index + 1}-", count, seconds)
                for index, count in enumerate(per_process)
                if count
            ],
        )
    done = sum(ok for ok, _ in results)
    errors = sum(bad for _, bad in results)
    return Load((done + errors) / seconds, errors, "python", done + errors)


def _worker(
    port: int, head: bytes, body: bytes, prefix: str, connections: int, seconds: float
) -> tuple[int, int]:
    return asyncio.run(_connections(port, head, body, prefix, connections, seconds))


async def _connections(
    port: int, head: bytes, body: bytes, prefix: str, count: int, seconds: float
) -> tuple[int, int]:
    deadline = time.monotonic() + seconds
    ok = bad = 0
    numbers = itertools.count(1)
    numbered = NUMBER.encode() in body

    def request() -> bytes:
        sent = (
            body.replace(NUMBER.encode(), f"{prefix}{next(numbers)}".encode()) if numbered else body
        )
        return head + f"Content-Length: {len(sent)}\r\n\r\n".encode() + sent

    async def one() -> None:
        nonlocal ok, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                writer.write(request())
                answer = await reader.readuntil(b"\r\n\r\n")
                status = int(answer[9:12])
                length = re.search(rb"(?i)content-length:\s*(\d+)", answer)
                if length:
                    await reader.readexactly(int(length.group(1)))
                if 200 <= status < 300:
                    ok += 1
                else:
                    bad += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return ok, bad
