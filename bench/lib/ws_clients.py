"""Websocket clients for bench/http_bench.py: one process holding many signed-in sockets.

Each socket is a bare asyncio protocol (handshake, frame parsing, pong) so that thousands
fit in one process and the clients' own cost stays small beside the server's. The
process signs `--count` sockets in as `Bearer bench-<n>` for n from `--first`, says
`{"connected": n, "failed": m}` on stdout, then obeys commands on stdin:

  expect K   get ready for post "fan-out K": {"ready": K}; then, once every socket has it
             (or after 30 s), {"round": K, "received", "first", "last"}: how many sockets
             got it and the time.monotonic() of the first and last arrival
  close      close every socket and exit
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import sys
import time

KEY = base64.b64encode(os.urandom(16)).decode()


class Round:
    def __init__(self) -> None:
        self.marker = b""
        self.received = 0
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.Event()
        self.expected = 0


class Socket(asyncio.Protocol):
    def __init__(self, request: bytes, welcomed: asyncio.Future[bool], current: Round) -> None:
        self.request = request
        self.welcomed = welcomed
        self.current = current
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.marker = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self._fail()
                return
            self.upgraded = True
            self.buffer = self.buffer[end + 4 :]
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    break
                length, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                length, offset = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < offset + length:
                break
            payload = buffer[offset : offset + length]
            buffer = buffer[offset + length :]
            self._frame(opcode, payload)
        self.buffer = buffer

    def _frame(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == 0x1:
            current = self.current
            if current.marker and current.marker in payload and b'"type":"post"' in payload:
                now = time.monotonic()
                if not current.received:
                    current.first = now
                current.received += 1
                current.last = now
                if current.received == current.expected:
                    current.done.set()
            elif not self.welcomed.done() and b'"type":"welcome"' in payload:
                self.welcomed.set_result(True)
            elif not self.welcomed.done():
                self._fail()
        elif opcode == 0x9:  # ping: a pong with the same payload, masked with a zero key
            self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
        elif opcode == 0x8:
            self.transport.close()

    def _fail(self) -> None:
        if not self.welcomed.done():
            self.welcomed.set_result(False)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.welcomed.done():
            self.welcomed.set_result(False)


def say(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    current = Round()
    sockets: list[Socket] = []
    gate = asyncio.Semaphore(args.concurrency)

    async def open_one(number: int) -> bool:
        request = (
            f"GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer bench-{number}\r\n\r\n"
        ).encode()
        async with gate:
            welcomed: asyncio.Future[bool] = loop.create_future()
            try:
                _, protocol = await loop.create_connection(
                    lambda: Socket(request, welcomed, current), "127.0.0.1", args.port
                )
            except OSError:
                return False
            sockets.append(protocol)
            try:
                return await asyncio.wait_for(welcomed, 60)
            except TimeoutError:
                return False

    results = await asyncio.gather(
        *(open_one(number) for number in range(args.first, args.first + args.count))
    )
    say({"connected": sum(results), "failed": len(results) - sum(results)})

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        command, _, value = line.partition(" ")
        if command == "expect":
            current.marker = f'"fan-out {value}"'.encode()
            current.received = 0
            current.expected = sum(results)
            current.done = asyncio.Event()
            say({"ready": int(value)})
            try:
                await asyncio.wait_for(current.done.wait(), 30)
            except TimeoutError:
                pass
            say(
                {
                    "round": int(value),
                    "received": current.received,
                    "first": current.first,
                    "last": current.last,
                }
            )
        elif command == "close":
            break
    for protocol in sockets:
        if protocol.transport is not None:
            protocol.transport.close()
    say({"closed": len(sockets)})


if __name__ == "__main__":
    asyncio.run(main())
