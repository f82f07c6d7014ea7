"""HTTP load for bench/http_bench.py: `wrk` when installed (Debian `wrk`), else a Python
generator of the same shape (several processes, keep-alive connections, one request in
flight per connection), both run outside the server's process."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Load:
    """One run: requests answered per second, how many were not 2xx, and by whom."""

    rate: float
    errors: int
    tool: str


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
    if body:
        lines.append(f"wrk.body = {_lua_string(body.decode())}")
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
    return Load(float(rate.group(1)), failed, "wrk")


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
    head += f"Content-Length: {len(body)}\r\n\r\n"
    request = head.encode() + body
    per_process = [connections // threads + (i < connections % threads) for i in range(threads)]
    with multiprocessing.get_context("spawn").Pool(threads) as pool:
        results = pool.starmap(
            _worker, [(port, request, count, seconds) for count in per_process if count]
        )
    done = sum(ok for ok, _ in results)
    errors = sum(bad for _, bad in results)
    return Load((done + errors) / seconds, errors, "python")


def _worker(port: int, request: bytes, connections: int, seconds: float) -> tuple[int, int]:
    return asyncio.run(_connections(port, request, connections, seconds))


async def _connections(port: int, request: bytes, count: int, seconds: float) -> tuple[int, int]:
    deadline = time.monotonic() + seconds
    ok = bad = 0

    async def one() -> None:
        nonlocal ok, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
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
