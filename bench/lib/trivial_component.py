"""Trivial XEP-0114 components that measure the XMPP server's own ceilings.

* echo: answers every IQ get/set with an empty result, reading no more of the stanza than
  its opening tag. Round trips through it are the server's IQ routing ceiling.
* route: on a command read from stdin, sends pre-formatted messages to online clients as
  fast as the server accepts them. Delivery rate is the server's message routing ceiling.
* ideal publisher: once told by a command, the echo component answers each publish IQ
  with a pre-formatted reply and, in the same write, a pre-formatted notification to each
  of a list of clients: the wire traffic of a pubsub service that costs nothing and takes
  no time. Its notification rate is the best any component can reach when the same
  publishes also go through the server.

All are written against raw sockets, so the server, not this process, is what saturates.

usage: python -m bench.lib.trivial_component HOST --echo JID --echo-port P --echo-secret S
       --route JID --route-port P --route-secret S

stdin commands (one JSON object per line):
* {"targets": [full JIDs], "n": N, "template": "<message to='{to}' ...>...</message>"}:
  route; answered on stdout with `SENT <n> <seconds>`;
* {"ideal": {"targets": [full JIDs], "reply": "<iq type='result' to='{to}' id='{id}'...",
  "notification": "<message to='{to}' ...>...MARK...</message>", "mark": REGEX}}: from
  now on, a publish IQ (an IQ set holding `<publish `) is answered with `reply` and
  followed by `notification` to every target, MARK replaced by what REGEX finds in the
  IQ; answered with `IDEAL`.
`READY` is printed once both components are connected.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time

from bench.lib.rawxmpp import Component

_IQ_HEAD = re.compile(rb"<iq\b([^>]*)>")
_ATTR = re.compile(rb"(\w+)=(['\"])(.*?)\2")


_WHOLE_IQ = re.compile(rb"<iq\b([^>]*?)(?:/>|>(.*?)</iq>)", re.DOTALL)


class IdealPublisher:
    """What the echo component sends for each publish once told to act as a pubsub service."""

    def __init__(self, command: dict[str, object]) -> None:
        targets = command["targets"]
        assert isinstance(targets, list)
        reply, notification, mark = command["reply"], command["notification"], command["mark"]
        assert isinstance(reply, str) and isinstance(notification, str) and isinstance(mark, str)
        self.reply = reply.encode()
        head, tail = notification.encode().split(b"MARK", 1)
        self.copies = [(head.replace(b"{to}", t.encode()), tail) for t in targets]
        self.mark = re.compile(mark.encode())

    def answer(self, attrs: dict[bytes, bytes], body: bytes) -> bytes:
        found = self.mark.search(body)
        mark = found.group(0) if found else b""
        reply = self.reply.replace(b"{to}", attrs.get(b"from", b"")).replace(
            b"{id}", attrs.get(b"id", b"")
        )
        return reply + b"".join(head + mark + tail for head, tail in self.copies)


class EchoComponent(Component):
    """Answers IQ get/set with `<iq type='result'/>` once the handshake is done."""

    serving = False
    answered = 0
    ideal: IdealPublisher | None = None

    def data_received(self, data: bytes) -> None:
        if not self.serving:
            super().data_received(data)
            return
        if self.ideal is not None:
            self._publish_received(data, self.ideal)
            return
        self.buf += data
        end = 0
        out = []
        for match in _IQ_HEAD.finditer(self.buf):
            attrs = {k: v for k, _, v in _ATTR.findall(match.group(1))}
            end = match.end()
            if attrs.get(b"type") not in (b"get", b"set"):
                continue
            out.append(
                b"<iq type='result' to='%s' from='%s' id='%s'/>"
                % (attrs.get(b"from", b""), attrs.get(b"to", b""), attrs.get(b"id", b""))
            )
        if end:
            # Keep only what may hold an incomplete opening tag.
            del self.buf[:end]
        cut = self.buf.rfind(b"<")
        if cut > 0:
            del self.buf[:cut]
        elif cut < 0:
            self.buf.clear()
        if out:
            self.answered += len(out)
            self.send(b"".join(out))

    def _publish_received(self, data: bytes, ideal: IdealPublisher) -> None:
        """Whole IQs are read (the mark is inside); what follows the last one is kept."""
        self.buf += data
        end = 0
        out = []
        for match in _WHOLE_IQ.finditer(self.buf):
            end = match.end()
            attrs = {k: v for k, _, v in _ATTR.findall(match.group(1))}
            if attrs.get(b"type") not in (b"get", b"set"):
                continue
            body = match.group(2) or b""
            if attrs.get(b"type") == b"set" and b"<publish " in body:
                out.append(ideal.answer(attrs, body))
            else:
                out.append(
                    b"<iq type='result' to='%s' from='%s' id='%s'/>"
                    % (attrs.get(b"from", b""), attrs.get(b"to", b""), attrs.get(b"id", b""))
                )
        if end:
            del self.buf[:end]
        if out:
            self.answered += len(out)
            self.send(b"".join(out))


async def route(component: Component, targets: list[str], n: int, template: str) -> float:
    """Send `n` messages round-robin over `targets`; return the seconds spent writing."""
    prefix, suffix = template.split("{to}", 1)
    stanzas = [(prefix + to + suffix).encode() for to in targets]
    t0 = time.perf_counter()
    batch: list[bytes] = []
    for i in range(n):
        batch.append(stanzas[i % len(stanzas)])
        if len(batch) == 64:
            component.send(b"".join(batch))
            batch.clear()
            await component.drain()
    if batch:
        component.send(b"".join(batch))
    await component.drain()
    return time.perf_counter() - t0


async def main(args: argparse.Namespace) -> None:
    echo = await EchoComponent.open(args.host, args.echo_port, args.echo, args.echo_secret)
    echo.buf.clear()
    echo.serving = True
    router = await Component.open(args.host, args.route_port, args.route, args.route_secret)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        command = json.loads(line)
        if "ideal" in command:
            echo.ideal = IdealPublisher(command["ideal"])
            echo.buf.clear()
            print("IDEAL", flush=True)
            continue
        router.buf.clear()
        seconds = await route(router, command["targets"], command["n"], command["template"])
        print(f"SENT {command['n']} {seconds:.3f}", flush=True)
    echo.close()
    router.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("--echo", required=True, help="JID of the echo component")
    parser.add_argument("--echo-port", type=int, required=True)
    parser.add_argument("--echo-secret", required=True)
    parser.add_argument("--route", required=True, help="JID of the routing component")
    parser.add_argument("--route-port", type=int, required=True)
    parser.add_argument("--route-secret", required=True)
    asyncio.run(main(parser.parse_args()))
