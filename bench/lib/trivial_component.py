"""Trivial XEP-0114 components that measure the XMPP server's own ceilings.

* echo: answers every IQ get/set with an empty result, reading no more of the stanza than
  its opening tag. Round trips through it are the server's IQ routing ceiling.
* route: on a command read from stdin, sends pre-formatted messages to online clients as
  fast as the server accepts them. Delivery rate is the server's message routing ceiling.

Both are written against raw sockets, so the server, not this process, is what saturates.

usage: python -m bench.lib.trivial_component HOST --echo JID --echo-port P --echo-secret S
       --route JID --route-port P --route-secret S

stdin commands (one JSON object per line): {"targets": [full JIDs], "n": N,
"template": "<message to='{to}' ...>...</message>"}. Each is answered on stdout with
`SENT <n> <seconds>`. `READY` is printed once both components are connected.
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


class EchoComponent(Component):
    """Answers IQ get/set with `<iq type='result'/>` once the handshake is done."""

    serving = False
    answered = 0

    def data_received(self, data: bytes) -> None:
        if not self.serving:
            super().data_received(data)
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
