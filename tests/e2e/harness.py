"""End-to-end harness: the server as a real process, real XMPP clients through real Prosody.

- `ServerProcess` runs `python -m buddycloud serve --config FILE` and knows when it is
  ready: when a client's disco#info to the component is answered by the component itself.
- `Client` is a slixmpp ClientXMPP user that sends raw IQ XML, awaits the reply as a
  `Reply`, and keeps every incoming message so tests can `await wait_for(predicate)`.

Nothing here sleeps to synchronise: every wait is for a condition, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import escape, quoteattr

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Iq
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatcherId, MatchXPath

T = TypeVar("T")

DOMAIN = "capulet.lit"
ANON_DOMAIN = "anon.capulet.lit"  # guests log in with SASL ANONYMOUS (reference 5.3)
TOPICS_DOMAIN = "topics.capulet.lit"
SERVICE = "channels.capulet.lit"
TIMEOUT = 10.0

NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_OWNER = "http://jabber.org/protocol/pubsub#owner"
NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_REGISTER = "jabber:iq:register"
NS_SEARCH = "jabber:iq:search"
NS_DATA = "jabber:x:data"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_MAM = "urn:xmpp:mam:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_BC = "http://buddycloud.org/v1"
NS_BC_ERRORS = "http://buddycloud.org/v1/errors"
NS_ATOM = "http://www.w3.org/2005/Atom"
NS_THREAD = "http://purl.org/syndication/thread/1.0"
NS_TOMBSTONES = "http://purl.org/atompub/tombstones/1.0"
NS_ACTIVITY = "http://activitystrea.ms/spec/1.0/"
NS_REVIEW = "http://activitystrea.ms/schema/1.0/review"

# Prefixes for ElementTree paths in tests: reply.find("pubsub:pubsub/pubsub:items").
NS = {
    "client": NS_CLIENT,
    "stanzas": NS_STANZAS,
    "pubsub": NS_PUBSUB,
    "owner": NS_OWNER,
    "event": NS_EVENT,
    "errors": NS_ERRORS,
    "info": NS_DISCO_INFO,
    "items": NS_DISCO_ITEMS,
    "register": NS_REGISTER,
    "search": NS_SEARCH,
    "data": NS_DATA,
    "rsm": NS_RSM,
    "mam": NS_MAM,
    "forward": NS_FORWARD,
    "bc": NS_BC,
    "atom": NS_ATOM,
    "thr": NS_THREAD,
    "ts": NS_TOMBSTONES,
    "activity": NS_ACTIVITY,
    "review": NS_REVIEW,
}

USERS = (
    "juliet",
    "romeo",
    "benvolio",
    "tybalt",
    "mercutio",
    "paris",
    "nurse",
    "laurence",
    "balthasar",
    "probe",
    "rosaline",  # unregisters
)


def password_of(user: str) -> str:
    return f"{user}pass"


def run_sync(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop in a worker thread, from any context."""
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, work).result()


# --- replies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """An IQ reply (result or error) as received."""

    element: ET.Element

    @property
    def type(self) -> str:
        return self.element.get("type", "")

    @property
    def ok(self) -> bool:
        return self.type == "result"

    def find(self, path: str) -> ET.Element | None:
        return self.element.find(path, NS)

    def findall(self, path: str) -> list[ET.Element]:
        return self.element.findall(path, NS)

    @property
    def error(self) -> ET.Element | None:
        return self.element.find("client:error", NS)

    @property
    def condition(self) -> str | None:
        """The RFC 6120 defined condition of an error reply, e.g. 'forbidden'."""
        error = self.error
        if error is None:
            return None
        for child in error:
            namespace, _, name = child.tag[1:].partition("}")
            if namespace == NS_STANZAS and name != "text":
                return name
        return None

    @property
    def app_conditions(self) -> set[str]:
        """Application-specific error conditions (pubsub#errors, buddycloud errors)."""
        error = self.error
        if error is None:
            return set()
        names = set()
        for child in error:
            namespace, _, name = child.tag[1:].partition("}")
            if namespace != NS_STANZAS:
                names.add(name)
        return names

    @property
    def text(self) -> str:
        return ET.tostring(self.element, encoding="unicode")

    def __repr__(self) -> str:
        return f"Reply({self.text})"


def xml_text(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")


# --- the client --------------------------------------------------------------------------


class Client:
    """One XMPP user connected through the private Prosody's c2s port."""

    def __init__(
        self,
        user: str | None,
        c2s_port: int,
        *,
        resource: str = "e2e",
        domain: str = DOMAIN,
        service: str = SERVICE,
    ) -> None:
        """`user` None: an anonymous guest of ANON_DOMAIN, named by the server at login.

        `domain` is the user's XMPP domain and `service` their home channel server, where
        requests go unless they name another address.
        """
        self.user = user or "guest"
        self.c2s_port = c2s_port
        self.service = service
        self.stream = ClientXMPP(
            f"{user}@{domain}/{resource}" if user else f"{ANON_DOMAIN}/{resource}",
            password_of(user) if user else "",
            plugin_config={
                "feature_mechanisms": {"unencrypted_plain": True, "unencrypted_scram": True}
            },
        )
        # No TLS anywhere in the private test bed (testbed README section 3.1).
        self.stream.enable_starttls = False
        self.stream.enable_direct_tls = False
        self.stream.enable_plaintext = True
        self.stream.register_handler(
            Callback("e2e messages", MatchXPath(f"{{{NS_CLIENT}}}message"), self._on_message)
        )
        self.messages: list[ET.Element] = []
        self._arrived = asyncio.Event()
        self._ids = itertools.count(1)

    @property
    def full(self) -> str:
        return str(self.stream.boundjid.full)

    @property
    def bare(self) -> str:
        return str(self.stream.boundjid.bare)

    async def connect(self, *, presence: bool = True, timeout: float = TIMEOUT) -> None:
        """Log in; with `presence`, become available and tell the channel service.

        Directed presence is how the service learns which resources are online and gets
        notifications (reference section 4); one round trip afterwards makes sure the
        service has seen it.
        """
        started = asyncio.get_running_loop().create_future()

        def on_start(_: Any) -> None:
            if not started.done():
                started.set_result(None)

        def on_failure(event: Any) -> None:
            if not started.done():
                started.set_exception(AssertionError(f"{self.bare} could not log in: {event}"))

        self.stream.add_event_handler("session_start", on_start)
        self.stream.add_event_handler("failed_all_auth", on_failure)
        self.stream.add_event_handler("connection_failed", on_failure)
        self.stream.connect("127.0.0.1", self.c2s_port)
        await asyncio.wait_for(started, timeout)
        if presence:
            # Initial presence makes the XMPP server deliver stored (offline) messages;
            # directed presence makes the channel service count this resource as online.
            self.stream.send_presence()
            self.stream.send_presence(pto=self.service)
            await self.sync()

    async def disconnect(self) -> None:
        if self.stream.transport is not None:
            await self.stream.disconnect(wait=2.0)
        self.stream.cancel_connection_attempt()

    async def send_raw(self, xml: str) -> None:
        self.stream.send_raw(xml)

    def _new_iq(self, type_: str, payload: str, to: str) -> Iq:
        element = ET.fromstring(
            f"<iq xmlns='{NS_CLIENT}' type={quoteattr(type_)} to={quoteattr(to)}>{payload}</iq>"
        )
        iq = Iq(self.stream, xml=element)
        iq["id"] = f"e2e-{self.user}-{next(self._ids)}"
        return iq

    async def iq(
        self, type_: str, payload: str, *, to: str | None = None, timeout: float = TIMEOUT
    ) -> Reply:
        """Send `<iq type=type_ to=to>payload</iq>` and return the reply, result or error;
        `to` is the home channel server unless given."""
        iq = self._new_iq(type_, payload, to or self.service)
        try:
            reply = await iq.send(timeout=timeout)
        except IqError as exc:
            return Reply(exc.iq.xml)
        except IqTimeout:
            raise AssertionError(f"no reply within {timeout} s to {payload[:300]}") from None
        return Reply(reply.xml)

    async def raw_iq(
        self,
        type_: str,
        payload: str,
        *,
        to: str | None = None,
        timeout: float = TIMEOUT,
        id_suffix: str = "",
    ) -> Reply:
        """Like `iq`, with `payload` sent byte for byte: slixmpp's serialiser drops
        namespaced attributes (such as `bc:ephemeral`), which other clients send.
        `id_suffix` ends the stanza's id (which stays unique) with anything."""
        iq_id = f"e2e-{self.user}-raw-{next(self._ids)}{id_suffix}"
        arrived: asyncio.Future[ET.Element] = asyncio.get_running_loop().create_future()

        def on_reply(stanza: Any) -> None:
            if stanza["type"] in ("result", "error") and not arrived.done():
                arrived.set_result(stanza.xml)

        self.stream.register_handler(Callback(iq_id, MatcherId(iq_id), on_reply, once=True))
        self.stream.send_raw(
            f"<iq type={quoteattr(type_)} to={quoteattr(to or self.service)} "
            f"id={quoteattr(iq_id)}>{payload}</iq>"
        )
        try:
            return Reply(await asyncio.wait_for(arrived, timeout))
        except TimeoutError:
            raise AssertionError(f"no reply within {timeout} s to {payload[:300]}") from None
        finally:
            self.stream.remove_handler(iq_id)

    async def ok(self, type_: str, payload: str, *, to: str | None = None) -> Reply:
        """Like `iq`, and fail the test unless the reply is a result."""
        reply = await self.iq(type_, payload, to=to)
        assert reply.ok, f"{self.bare}: expected a result for {payload[:300]}, got {reply.text}"
        return reply

    async def sync(self) -> None:
        """A round trip through the service.

        Stanzas from the service to this client travel one ordered path (component stream,
        then this client's session), so once this returns, everything the service sent to
        us before answering has arrived.
        """
        await self.ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>")

    # messages

    def _on_message(self, message: Any) -> None:
        self.messages.append(message.xml)
        self._arrived.set()

    def received(self, predicate: Callable[[ET.Element], bool]) -> list[ET.Element]:
        """Messages received so far that match, without consuming them."""
        return [message for message in self.messages if predicate(message)]

    async def wait_for(
        self, predicate: Callable[[ET.Element], bool], timeout: float = TIMEOUT
    ) -> ET.Element:
        """The first received message matching `predicate` (consumed), waiting if needed."""
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.messages):
                if predicate(message):
                    del self.messages[index]
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = "\n".join(xml_text(m)[:400] for m in self.messages) or "(none)"
                raise AssertionError(
                    f"{self.bare}: no matching message within {timeout} s; received:\n{got}"
                )
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass


# --- message predicates ----------------------------------------------------------------


def event_items(message: ET.Element, node: str) -> list[ET.Element]:
    """The `<item>` elements of a pubsub#event `<items node=node>` notification."""
    found = []
    for items in message.findall("event:event/event:items", NS):
        if items.get("node") == node:
            found.extend(items.findall("event:item", NS))
    return found


def event_retracts(message: ET.Element, node: str) -> list[str]:
    ids = []
    for items in message.findall("event:event/event:items", NS):
        if items.get("node") == node:
            ids.extend(r.get("id", "") for r in items.findall("event:retract", NS))
    return ids


def has_item(node: str, item_id: str) -> Callable[[ET.Element], bool]:
    def predicate(message: ET.Element) -> bool:
        return any(item.get("id") == item_id for item in event_items(message, node))

    return predicate


def has_retract(node: str, item_id: str) -> Callable[[ET.Element], bool]:
    def predicate(message: ET.Element) -> bool:
        return item_id in event_retracts(message, node)

    return predicate


def mentions(text: str) -> Callable[[ET.Element], bool]:
    """Any message whose XML contains `text` (a unique marker put in a post)."""

    def predicate(message: ET.Element) -> bool:
        return text in xml_text(message)

    return predicate


def subscription_event(node: str, jid: str, state: str) -> Callable[[ET.Element], bool]:
    def predicate(message: ET.Element) -> bool:
        return any(
            sub.get("node") == node and sub.get("jid") == jid and sub.get("subscription") == state
            for sub in message.findall("event:event/event:subscription", NS)
        )

    return predicate


def affiliation_event(node: str, jid: str, role: str) -> Callable[[ET.Element], bool]:
    """A role change notification (`<affiliations node><affiliation jid affiliation/>`)."""

    def predicate(message: ET.Element) -> bool:
        return any(
            a.get("jid") == jid and a.get("affiliation") == role
            for block in message.findall("event:event/event:affiliations", NS)
            if block.get("node") == node
            for a in block.findall("event:affiliation", NS)
        )

    return predicate


def authorization_form(node: str, subscriber: str) -> Callable[[ET.Element], bool]:
    """The subscribe_authorization form sent to owners and moderators (reference §4)."""

    def predicate(message: ET.Element) -> bool:
        for form in message.findall("data:x", NS):
            values = form_values(form)
            if (
                values.get("FORM_TYPE") == [f"{NS_PUBSUB}#subscribe_authorization"]
                and values.get("pubsub#node") == [node]
                and values.get("pubsub#subscriber_jid") == [subscriber]
            ):
                return True
        return False

    return predicate


def form_values(form: ET.Element) -> dict[str, list[str]]:
    """var -> values of a jabber:x:data form."""
    return {
        field.get("var", ""): [value.text or "" for value in field.findall("data:value", NS)]
        for field in form.findall("data:field", NS)
    }


# --- stanza payload builders ------------------------------------------------------------


def posts(jid: str) -> str:
    return f"/user/{jid}/posts"


def topic(name: str) -> str:
    """The posts node of the topic channel `name` on this server's topics domain."""
    return posts(f"{name}@{TOPICS_DOMAIN}")


def entry(content: str, *, in_reply_to: str | None = None, extra: str = "") -> str:
    reply = (
        f"<thr:in-reply-to xmlns:thr='{NS_THREAD}' ref={quoteattr(in_reply_to)}/>"
        if (in_reply_to)
        else ""
    )
    return (
        f"<entry xmlns='{NS_ATOM}'><content type='text'>{escape(content)}</content>"
        f"{reply}{extra}</entry>"
    )


def rating_entry(target: str, rating: str, *, parent: str | None = None) -> str:
    """A rating of `target` (ProtoXEP 6.3.4): in-reply-to the thread, target the post."""
    return entry(
        "rating",
        in_reply_to=parent or target,
        extra=(
            f"<activity:verb xmlns:activity='{NS_ACTIVITY}'>rated</activity:verb>"
            f"<activity:target xmlns:activity='{NS_ACTIVITY}'><id>{escape(target)}</id>"
            "</activity:target>"
            f"<review:rating xmlns:review='{NS_REVIEW}'>{escape(rating)}</review:rating>"
        ),
    )


def publish(node: str, payload: str, item_id: str | None = None) -> str:
    id_attribute = f" id={quoteattr(item_id)}" if item_id else ""
    return (
        f"<pubsub xmlns='{NS_PUBSUB}'><publish node={quoteattr(node)}>"
        f"<item{id_attribute}>{payload}</item></publish></pubsub>"
    )


def items_request(node: str, *, item_id: str | None = None, max_items: int | None = None) -> str:
    inner = f"<item id={quoteattr(item_id)}/>" if item_id else ""
    max_attribute = f" max_items='{max_items}'" if max_items is not None else ""
    return (
        f"<pubsub xmlns='{NS_PUBSUB}'><items node={quoteattr(node)}{max_attribute}>{inner}"
        "</items></pubsub>"
    )


def retract(node: str, item_id: str, *, notify: bool = True) -> str:
    notify_attribute = "" if notify else " notify='false'"
    return (
        f"<pubsub xmlns='{NS_PUBSUB}'><retract node={quoteattr(node)}{notify_attribute}>"
        f"<item id={quoteattr(item_id)}/></retract></pubsub>"
    )


def subscribe(node: str, jid: str) -> str:
    return (
        f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node={quoteattr(node)} jid={quoteattr(jid)}/>"
        "</pubsub>"
    )


def temporary_subscribe(node: str, jid: str) -> str:
    """A subscription that lasts while the user is online (`pubsub#expire=presence`)."""
    options = (
        "<options><x xmlns='jabber:x:data' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'>"
        "<value>http://jabber.org/protocol/pubsub#subscribe_options</value></field>"
        "<field var='pubsub#expire'><value>presence</value></field></x></options>"
    )
    return subscribe(node, jid).replace("</pubsub>", options + "</pubsub>")


def unsubscribe(node: str, jid: str) -> str:
    return (
        f"<pubsub xmlns='{NS_PUBSUB}'><unsubscribe node={quoteattr(node)} "
        f"jid={quoteattr(jid)}/></pubsub>"
    )


def config_form(fields: dict[str, str], form_type: str = "submit") -> str:
    rendered = "".join(
        f"<field var={quoteattr(var)}><value>{escape(value)}</value></field>"
        for var, value in fields.items()
    )
    return (
        f"<x xmlns='{NS_DATA}' type='{form_type}'><field var='FORM_TYPE' type='hidden'>"
        f"<value>{NS_PUBSUB}#node_config</value></field>{rendered}</x>"
    )


def create(node: str, fields: dict[str, str] | None = None) -> str:
    configure = f"<configure>{config_form(fields)}</configure>" if fields else ""
    return f"<pubsub xmlns='{NS_PUBSUB}'><create node={quoteattr(node)}/>{configure}</pubsub>"


def configure_set(node: str, fields: dict[str, str]) -> str:
    return (
        f"<pubsub xmlns='{NS_OWNER}'><configure node={quoteattr(node)}>{config_form(fields)}"
        "</configure></pubsub>"
    )


def configure_get(node: str) -> str:
    return f"<pubsub xmlns='{NS_OWNER}'><configure node={quoteattr(node)}/></pubsub>"


def set_affiliation(node: str, jid: str, affiliation: str) -> str:
    return (
        f"<pubsub xmlns='{NS_OWNER}'><affiliations node={quoteattr(node)}>"
        f"<affiliation jid={quoteattr(jid)} affiliation={quoteattr(affiliation)}/>"
        "</affiliations></pubsub>"
    )


def set_subscription(node: str, jid: str, state: str) -> str:
    return (
        f"<pubsub xmlns='{NS_OWNER}'><subscriptions node={quoteattr(node)}>"
        f"<subscription jid={quoteattr(jid)} subscription={quoteattr(state)}/>"
        "</subscriptions></pubsub>"
    )


REGISTER = f"<query xmlns='{NS_REGISTER}'/>"


def published_id(reply: Reply) -> str:
    """The item id a publish result names."""
    item = reply.find("pubsub:pubsub/pubsub:publish/pubsub:item")
    assert item is not None and item.get("id"), f"publish result without an item id: {reply}"
    return item.get("id", "")


def local_id(item_id: str) -> str:
    """The local part of an item id, whether local or global (`tag:service,node,id`)."""
    return item_id.rsplit(",", 1)[-1] if item_id.startswith("tag:") else item_id


def item_ids(reply: Reply, node: str | None = None) -> list[str]:
    """Local ids of the items in an items/recent-items result, in order."""
    found = []
    for items in reply.findall("pubsub:pubsub/pubsub:items"):
        if node is None or items.get("node") == node:
            found.extend(local_id(item.get("id", "")) for item in items.findall("pubsub:item", NS))
    return found


# --- the server process -----------------------------------------------------------------


class ServerProcess:
    """`python -m buddycloud serve --config FILE` as a child process."""

    def __init__(
        self,
        config_path: Path | None,
        workdir: Path,
        c2s_port: int,
        *,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        domain: str = DOMAIN,
        service: str = SERVICE,
    ) -> None:
        self.config_path = config_path
        self.domain = domain
        self.service = service
        self.workdir = workdir
        self.c2s_port = c2s_port
        self.args = args
        self.extra_env = env or {}
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        """Start the process without waiting for anything."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUDDYCLOUD_")}
        env.update(self.extra_env)
        command = [sys.executable, "-m", "buddycloud", "serve", *self.args]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once the component answers through Prosody."""
        self.spawn()
        run_sync(self.wait_ready(timeout))

    async def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        """Wait until the server's output contains `text`; return the output so far."""
        deadline = time.monotonic() + timeout
        while True:
            output = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if text in output:
                return output
            if not self.running:
                raise AssertionError(f"the server exited before saying {text!r}:\n{output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not say {text!r} in {timeout} s:\n{output}")
            await asyncio.sleep(0.05)  # polling interval of a condition with a deadline

    async def http_url(self, timeout: float = 30.0) -> str:
        """Where the running server's HTTP API listens (the last start's log line)."""
        marker = "HTTP API listening on "
        output = await self.wait_for_log(marker, timeout)
        line = output[output.rindex(marker) + len(marker) :].split()[0]
        return line.removesuffix("/api")

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the component answers disco#info (so its handshake with Prosody is done)."""
        probe = Client(
            "probe", self.c2s_port, resource="ready", domain=self.domain, service=self.service
        )
        deadline = time.monotonic() + timeout
        await probe.connect(presence=False)
        try:
            while True:
                if not self.running:
                    raise AssertionError(f"the server exited:\n{self.log_tail()}")
                reply = await probe.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>")
                # Before the component connects, Prosody answers for it with an error.
                if reply.ok:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the server did not answer within {timeout} s: {reply}\n{self.log_tail()}"
                    )
                await asyncio.sleep(0.05)  # polling interval of a condition with a deadline
        finally:
            await probe.disconnect()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait; returns the exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(
                    f"the server ignored SIGTERM for {timeout} s\n{self.log_tail()}"
                ) from None
        return process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


@contextlib.asynccontextmanager
async def another_server(
    server: ServerProcess, env: dict[str, str]
) -> AsyncIterator[ServerProcess]:
    """The session's server stopped, and its configuration and database served meanwhile
    by a second process whose environment adds `env` (`BUDDYCLOUD_*` overrides), with its
    own log; the session's server runs again afterwards."""
    status = await asyncio.to_thread(server.stop)
    assert status == 0, f"the server exited with {status} on SIGTERM\n{server.log_tail()}"
    workdir = server.workdir / f"other-{next(_others)}"
    workdir.mkdir()
    other = ServerProcess(server.config_path, workdir, server.c2s_port, env=env)
    try:
        await asyncio.to_thread(other.start)
        yield other
    finally:
        status = await asyncio.to_thread(other.stop)
        await asyncio.to_thread(server.start)
    assert status == 0, f"the server exited with {status} on SIGTERM\n{other.log_tail()}"


_others = itertools.count(1)
