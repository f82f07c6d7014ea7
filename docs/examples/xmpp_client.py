"""A Buddycloud channel client over XMPP, with slixmpp (docs/clients.md).

Signs in, tells the channel service it is online (directed presence), creates its
channel (in-band registration), publishes a post, follows another user's channel, catches
up on what it missed (urn:xmpp:mam:tmp), then prints the notifications that arrive.

    python docs/examples/xmpp_client.py juliet@capulet.lit --service channels.capulet.lit \\
        --follow romeo@capulet.lit --post "O Romeo" --wait 1

The password is read from the environment variable XMPP_PASSWORD. `--host`/`--port` name
the XMPP server when DNS does not; `--plain` allows a server without TLS (a test bed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS_CLIENT = "jabber:client"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_ATOM = "http://www.w3.org/2005/Atom"
NS_REGISTER = "jabber:iq:register"
NS_MAM = "urn:xmpp:mam:tmp"


def posts_node(jid: str) -> str:
    return f"/user/{jid}/posts"


class ChannelClient:
    def __init__(self, jid: str, password: str, service: str, *, plain: bool) -> None:
        self.service = service
        self.stream = ClientXMPP(jid, password)
        if plain:  # a private test bed without TLS; never on a public server
            self.stream.enable_starttls = False
            self.stream.enable_direct_tls = False
            self.stream.enable_plaintext = True
            self.stream["feature_mechanisms"].unencrypted_plain = True
        # slixmpp's 'message' event is only fired for messages with a body; pubsub
        # notifications have none, so match the <event/> element itself.
        self.stream.register_handler(
            Callback(
                "channel notifications",
                MatchXPath(f"{{{NS_CLIENT}}}message/{{{NS_EVENT}}}event"),
                self.on_notification,
            )
        )
        # The catch-up's results: each holds a past notification, forwarded.
        self.stream.register_handler(
            Callback(
                "catch-up results",
                MatchXPath(f"{{{NS_CLIENT}}}message/{{{NS_MAM}}}result"),
                lambda _: self.replayed.append(1),
            )
        )
        self.notifications: asyncio.Queue[str] = asyncio.Queue()
        self.replayed: list[int] = []

    def on_notification(self, message: Any) -> None:
        event = message.xml.find(f"{{{NS_EVENT}}}event")
        for items in event.findall(f"{{{NS_EVENT}}}items"):
            for item in items.findall(f"{{{NS_EVENT}}}item"):
                content = item.findtext(f"{{{NS_ATOM}}}entry/{{{NS_ATOM}}}content", "")
                line = f"notification: {items.get('node')} {item.get('id')}: {content}"
                self.notifications.put_nowait(line)

    async def connect(self, host: str | None, port: int) -> None:
        started = asyncio.get_running_loop().create_future()
        self.stream.add_event_handler("session_start", lambda _: started.set_result(None))
        self.stream.add_event_handler(
            "failed_all_auth", lambda _: started.set_exception(SystemExit("sign-in refused"))
        )
        self.stream.connect(host, port) if host else self.stream.connect()
        await asyncio.wait_for(started, 30)
        # Initial presence: the XMPP server delivers what waited while offline.
        self.stream.send_presence()
        # Directed presence: the channel service sends this resource notifications.
        self.stream.send_presence(pto=self.service)

    async def iq(self, type_: str, payload: str) -> ET.Element:
        iq = self.stream.make_iq(ito=self.service, itype=type_)
        iq.append(ET.fromstring(payload))
        reply = await iq.send(timeout=30)
        return reply.xml

    async def register(self) -> None:
        """Create this user's channel; a second time changes nothing."""
        try:
            await self.iq("set", f"<query xmlns='{NS_REGISTER}'/>")
        except IqError as error:
            if error.condition != "conflict":
                raise

    async def publish(self, text: str) -> str:
        jid = self.stream.boundjid.bare
        entry = f"<entry xmlns='{NS_ATOM}'><content type='text'>{escape(text)}</content></entry>"
        reply = await self.iq(
            "set",
            f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{posts_node(jid)}'>"
            f"<item>{entry}</item></publish></pubsub>",
        )
        item = reply.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish/{{{NS_PUBSUB}}}item")
        return item.get("id", "") if item is not None else ""

    async def follow(self, channel: str) -> str:
        jid = self.stream.boundjid.bare
        reply = await self.iq(
            "set",
            f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{posts_node(channel)}' jid='{jid}'/>"
            "</pubsub>",
        )
        subscription = reply.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}subscription")
        return subscription.get("subscription", "") if subscription is not None else ""

    async def catch_up(self, since: datetime) -> int:
        """Replays, as notifications, every change since `since` in the followed channels."""
        start = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        before = len(self.replayed)
        # The results arrive before the IQ's answer, on the same ordered path.
        await self.iq("get", f"<query xmlns='{NS_MAM}'><start>{start}</start></query>")
        return len(self.replayed) - before


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def main(args: argparse.Namespace) -> int:
    password = os.environ.get("XMPP_PASSWORD")
    if not password:
        print("set XMPP_PASSWORD", file=sys.stderr)
        return 2
    client = ChannelClient(args.jid, password, args.service, plain=args.plain)
    await client.connect(args.host, args.port)
    try:
        await client.register()
        print(f"channel: {posts_node(client.stream.boundjid.bare)}", flush=True)
        if args.post:
            print(f"published: {await client.publish(args.post)}", flush=True)
        if args.follow:
            print(f"following {args.follow}: {await client.follow(args.follow)}", flush=True)
        since = datetime.now(UTC) - timedelta(hours=args.catch_up_hours)
        replayed = await client.catch_up(since)
        print(f"caught up: {replayed} notifications", flush=True)
        print("listening", flush=True)
        for _ in range(args.wait):
            print(await asyncio.wait_for(client.notifications.get(), 60), flush=True)
    finally:
        await client.stream.disconnect()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jid")
    parser.add_argument("--service", required=True, help="the channel service's JID")
    parser.add_argument("--host", help="the XMPP server's address (default: by DNS)")
    parser.add_argument("--port", type=int, default=5222)
    parser.add_argument("--plain", action="store_true", help="allow a server without TLS")
    parser.add_argument("--post", help="publish this text in your channel")
    parser.add_argument("--follow", help="follow this user's channel")
    parser.add_argument("--catch-up-hours", type=float, default=24)
    parser.add_argument("--wait", type=int, default=0, help="notifications to wait for")
    sys.exit(asyncio.run(main(parser.parse_args())))
