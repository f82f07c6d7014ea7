"""Mutation fuzzing through Prosody: thousands of mutated stanzas of every operation family,
from an owner, a moderator, a follower, a banned user, a stranger and an anonymous guest at
once, pipelined. Nothing may knock the service over (issue: clients of the original servers
work unchanged):

- no reply is `internal-server-error`, and no error text leaks code or storage details;
- every IQ is answered, each within IQ_TIMEOUT;
- the component's stream is never closed by the XMPP server: a probe keeps asking the
  component for disco#info and is answered quickly throughout, and the component connected
  once and never had to reconnect (its log);
- the server logged no traceback (a notification listener that fails is only logged);
- every acknowledged publish is still readable at the end, unless a change the run saw
  succeed explains why not (a retraction, a deleted channel, an unregistered author, a
  node that keeps only its newest items).

The stanzas come from `e2e.fuzzing.generate`, seeded by BUDDYCLOUD_FUZZ_SEED (SEED by
default): every failure names the seed, the sender and the stanza, so it can be replayed.
Each sender sends its stanzas in order for BUDDYCLOUD_FUZZ_SECONDS (SECONDS), at most
BUDDYCLOUD_FUZZ_STANZAS in all (STANZAS): the run takes the same time on any machine, and
a slower one sends fewer of the same stanzas.

The run has a channel server of its own on a fresh database, so that what it deletes or
unregisters leaves the session's server untouched.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

import pytest
from e2e.conftest import Connect, XmppServer, write_server_config
from e2e.fuzzing import FAMILIES, MAX_PAYLOAD_BYTES, Mutator, Stanza, Targets, generate
from e2e.harness import (
    NS,
    NS_DISCO_INFO,
    NS_OWNER,
    NS_PUBSUB,
    NS_REGISTER,
    NS_STANZAS,
    NS_TOMBSTONES,
    REGISTER,
    TOPICS_DOMAIN,
    Client,
    Reply,
    ServerProcess,
    create,
    entry,
    items_request,
    publish,
    set_affiliation,
    set_subscription,
    subscribe,
)
from slixmpp.xmlstream.xmlstream import NotConnectedError

SEED = int(os.environ.get("BUDDYCLOUD_FUZZ_SEED", "1105"))
# The run sends for SECONDS, at most STANZAS stanzas, at least MINIMUM (else the machine
# is too slow for the test to say much, and it fails saying so).
SECONDS = float(os.environ.get("BUDDYCLOUD_FUZZ_SECONDS", "45"))
STANZAS = int(os.environ.get("BUDDYCLOUD_FUZZ_STANZAS", "20000"))
MINIMUM = 3000
WINDOW = 8  # requests in flight per sender
IQ_TIMEOUT = 20.0
PROBE_INTERVAL = 0.5
PROBE_TIMEOUT = 5.0
# What must never appear in an error's text unless the request itself said it: traces,
# code, storage details, memory addresses.
LEAKS = re.compile(
    r'Traceback|File "|\w+\.py\b|sqlite|sqlalchemy|psycopg|\w+Error\(|0x[0-9a-f]{6,}'
)

# role -> the user who plays it (None: an anonymous guest)
SENDERS: dict[str, str | None] = {
    "owner": "juliet",
    "moderator": "mercutio",
    "follower": "romeo",
    "banned": "tybalt",
    "stranger": "benvolio",
    "guest": None,
}
OPEN = f"/user/fuzz-open@{TOPICS_DOMAIN}/posts"
STATUS = f"/user/fuzz-open@{TOPICS_DOMAIN}/status"
CLOSED = f"/user/fuzz-closed@{TOPICS_DOMAIN}/posts"
SEED_IDS = ("seed-1", "seed-2", "seed-3", "seed-r1")
CLOSED_IDS = ("closed-1",)


@pytest.fixture
async def fuzz_server(
    request: pytest.FixtureRequest, server: ServerProcess, xmpp_server: XmppServer, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    """A channel server of the run's own, on a fresh database, in place of the session's:
    PostgreSQL when BUDDYCLOUD_TEST_POSTGRES names one (concurrent writes race there as
    in production), SQLite otherwise."""
    storage_url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    if os.environ.get("BUDDYCLOUD_TEST_POSTGRES"):
        storage_url = request.getfixturevalue("empty_postgres_url")
    config = write_server_config(tmp_path, xmpp_server, storage_url)
    scratch = ServerProcess(config, tmp_path, xmpp_server.c2s_port)
    await asyncio.to_thread(server.stop)
    try:
        await asyncio.to_thread(scratch.start)
        yield scratch
    finally:
        status = await asyncio.to_thread(scratch.stop)
        await asyncio.to_thread(server.start)
    assert status == 0, scratch.log_tail()


# --- setting up ------------------------------------------------------------------------


async def setup(connect: Connect) -> tuple[dict[str, Client], Targets]:
    """Log everyone in and give each their role on two topic channels of Juliet's."""
    clients: dict[str, Client] = {}
    for role, user in SENDERS.items():
        clients[role] = await connect(user, resource="fuzz")
        if user is not None:
            await clients[role].ok("set", REGISTER)
    owner = clients["owner"]
    await owner.ok("set", create(OPEN))
    await owner.ok("set", create(STATUS))
    await owner.ok("set", create(CLOSED, {"pubsub#access_model": "authorize"}))
    for role in ("moderator", "follower", "banned"):
        await clients[role].ok("set", subscribe(OPEN, clients[role].bare))
        await clients[role].ok("set", subscribe(CLOSED, clients[role].bare))
        await owner.ok("set", set_subscription(CLOSED, clients[role].bare, "subscribed"))
    await owner.ok("set", set_affiliation(OPEN, clients["moderator"].bare, "moderator"))
    await owner.ok("set", set_affiliation(OPEN, clients["follower"].bare, "publisher"))
    for node in (OPEN, CLOSED):
        await owner.ok("set", set_affiliation(node, clients["banned"].bare, "outcast"))
    # The stranger's follow request on the closed channel awaits the moderators' answer.
    await clients["stranger"].ok("set", subscribe(CLOSED, clients["stranger"].bare))
    for item_id in SEED_IDS[:3]:
        await owner.ok("set", publish(OPEN, entry(f"seed post {item_id}"), item_id))
    await clients["follower"].ok(
        "set", publish(OPEN, entry("a reply", in_reply_to=SEED_IDS[0]), SEED_IDS[3])
    )
    await owner.ok("set", publish(CLOSED, entry("closed post"), CLOSED_IDS[0]))
    targets = Targets(
        users={role: client.bare for role, client in clients.items()},
        open_node=OPEN,
        closed_node=CLOSED,
        status_node=STATUS,
        seed_ids=SEED_IDS,
        closed_ids=CLOSED_IDS,
        pending=clients["stranger"].bare,
    )
    return clients, targets


# --- sending -----------------------------------------------------------------------------


@dataclass
class Outcome:
    stanza: Stanza
    reply: Reply | None  # None: a message (no reply expected)
    seconds: float


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    # Set when the service is down or a sender lost its stream: nothing more is sent, so
    # that a broken run fails in seconds rather than after every IQ's timeout.
    aborted: asyncio.Event = field(default_factory=asyncio.Event)
    why: list[str] = field(default_factory=list)

    def abort(self, why: str) -> None:
        self.why.append(why)
        self.aborted.set()


async def send_all(
    client: Client, stanzas: Iterator[Stanza], count: int, deadline: float, run: Run
) -> None:
    """Send up to `count` of `stanzas` until `deadline`, WINDOW at a time."""
    window = asyncio.Semaphore(WINDOW)

    async def one(stanza: Stanza) -> None:
        started = time.monotonic()
        try:
            if stanza.kind == "message":
                type_ = f" type='{stanza.message_type}'" if stanza.message_type else ""
                await client.send_raw(
                    f"<message to={quoteattr(stanza.to)} id='fz-{stanza.number}'{type_}>"
                    f"{stanza.payload}</message>"
                )
                run.outcomes.append(Outcome(stanza, None, 0.0))
                return
            reply = await client.raw_iq(
                stanza.kind,
                stanza.payload,
                to=stanza.to,
                timeout=IQ_TIMEOUT,
                id_suffix=stanza.id_suffix,
            )
        except NotConnectedError:
            run.abort(f"the XMPP server closed the stream of {stanza.sender}")
            return
        except AssertionError:
            run.unanswered.append(stanza.describe(SEED))
            return
        finally:
            window.release()
        run.outcomes.append(Outcome(stanza, reply, time.monotonic() - started))

    sending: set[asyncio.Task[None]] = set()
    for stanza in itertools.islice(stanzas, count):
        await window.acquire()
        if run.aborted.is_set() or time.monotonic() > deadline:
            window.release()
            break
        task = asyncio.create_task(one(stanza))
        sending.add(task)
        task.add_done_callback(sending.discard)
    await asyncio.gather(*sending)


@dataclass
class Probe:
    """Asks the component for disco#info every PROBE_INTERVAL until stopped; a probe not
    answered by the component within PROBE_TIMEOUT stops the run."""

    client: Client
    run: Run
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                reply = await self.client.iq(
                    "get", f"<query xmlns='{NS_DISCO_INFO}'/>", timeout=PROBE_TIMEOUT
                )
            except AssertionError as exc:
                self.failures.append(str(exc))
            else:
                self.latencies.append(time.monotonic() - started)
                if not reply.ok or reply.find("info:query/info:identity") is None:
                    self.failures.append(f"the component did not answer the probe: {reply}")
            if self.failures:
                self.run.abort(f"the probe went unanswered: {self.failures[0]}")
                return
            try:
                await asyncio.wait_for(stop.wait(), PROBE_INTERVAL)
            except TimeoutError:
                pass


# --- what the run changed ------------------------------------------------------------------


def channel_of(node: str) -> str:
    return node.removeprefix("/user/").partition("/")[0]


def local_id(item_id: str) -> str:
    return item_id.rsplit(",", 1)[-1] if item_id.startswith("tag:") else item_id


@dataclass
class Changes:
    """What the run's successful requests did that can make an acknowledged post vanish."""

    users: dict[str, str]  # role -> bare JID
    published: dict[tuple[str, str], str] = field(default_factory=dict)  # (node, id) -> JID
    retracted: set[tuple[str, str]] = field(default_factory=set)
    deleted_channels: set[str] = field(default_factory=set)
    unregistered: set[str] = field(default_factory=set)
    capped_nodes: set[str] = field(default_factory=set)
    created_by: dict[str, str] = field(default_factory=dict)  # channel -> bare JID

    def record(self, outcome: Outcome) -> None:
        reply = outcome.reply
        if reply is None or not reply.ok:
            return
        sent = outcome.stanza.element
        sender = self.users[outcome.stanza.sender]
        published = reply.find("pubsub:pubsub/pubsub:publish")
        if published is not None:
            for item in published.findall("pubsub:item", NS):
                key = (published.get("node", ""), local_id(item.get("id", "")))
                self.published[key] = sender
        retract = sent.find(f"{{{NS_PUBSUB}}}retract")
        if retract is not None:
            for item in retract.findall(f"{{{NS_PUBSUB}}}item"):
                self.retracted.add((retract.get("node", ""), local_id(item.get("id", ""))))
        delete = sent.find(f"{{{NS_OWNER}}}delete")
        if delete is not None:
            self.deleted_channels.add(channel_of(delete.get("node", "")))
        if sent.find(f"{{{NS_REGISTER}}}remove") is not None:
            self.unregistered.add(sender)
        text = outcome.stanza.payload
        for tag in (f"{{{NS_PUBSUB}}}create", f"{{{NS_OWNER}}}configure"):
            found = sent.find(tag)
            if found is None:
                continue
            node = found.get("node", "")
            if "pubsub#max_items" in text:
                self.capped_nodes.add(node)
            if tag.endswith("create"):
                self.created_by.setdefault(channel_of(node), sender)
                if "ephemeral" in text:
                    self.deleted_channels.add(channel_of(node))

    def explains(self, node: str, item_id: str) -> bool:
        channel = channel_of(node)
        author = self.published.get((node, item_id))
        return (
            (node, item_id) in self.retracted
            or channel in self.deleted_channels
            or channel in self.unregistered
            or self.created_by.get(channel) in self.unregistered
            or author in self.unregistered
            or node in self.capped_nodes
            or node.rpartition("/")[2] in ("status", "geoloc", "public-key")
        )


def is_tombstone(reply: Reply) -> bool:
    item = reply.find("pubsub:pubsub/pubsub:items/pubsub:item")
    return item is None or item.find(f"{{{NS_TOMBSTONES}}}deleted-entry") is not None


async def unreadable(clients: dict[str, Client], changes: Changes) -> list[tuple[str, str]]:
    """Acknowledged posts that nobody can read any more."""
    by_node: dict[str, list[str]] = {}
    for node, item_id in changes.published:
        by_node.setdefault(node, []).append(item_id)
    missing: list[tuple[str, str]] = []
    window = asyncio.Semaphore(32)

    async def read(reader: Client, node: str, item_id: str) -> None:
        async with window:
            reply = await reader.iq("get", items_request(node, item_id=item_id))
        if not reply.ok or is_tombstone(reply):
            missing.append((node, item_id))

    for node, ids in by_node.items():
        reader = None
        for client in clients.values():
            if (await client.iq("get", items_request(node, max_items=1))).ok:
                reader = client
                break
        if reader is None:
            missing.extend((node, item_id) for item_id in ids)
            continue
        await asyncio.gather(*(read(reader, node, item_id) for item_id in ids))
    return missing


# --- the test ------------------------------------------------------------------------------


def tracebacks(log: str) -> list[str]:
    """Each traceback in the server's log, with the line before it (what was handled)."""
    found: list[str] = []
    lines = log.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = number + 1
            while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end]):
                end += 1
            found.append("\n".join(lines[max(number - 1, 0) : end + 1]))
    return found


def problems_of(outcome: Outcome) -> list[str]:
    reply = outcome.reply
    if reply is None:
        return []
    found = []
    if reply.element.get("from") != outcome.stanza.to:
        found.append(f"answered by {reply.element.get('from')!r}, not the component")
    if reply.condition == "internal-server-error":
        found.append("internal-server-error")
    sent = outcome.stanza.payload
    for text in reply.element.iter(f"{{{NS_STANZAS}}}text"):
        # Error texts may quote a short prefix of the input, which may hold anything.
        if any(leak not in sent for leak in LEAKS.findall(text.text or "")):
            found.append(f"an error text that leaks: {text.text!r}")
    return [f"{problem}: {outcome.stanza.describe(SEED)}\n  reply: {reply.text[:600]}"
            for problem in found]  # fmt: skip


def message_errors(clients: dict[str, Client]) -> list[str]:
    """Error messages from the component that say internal-server-error."""
    found = []
    for role, client in clients.items():
        for message in client.messages:
            if message.get("type") != "error":
                continue
            if message.find("client:error/stanzas:internal-server-error", NS) is not None:
                found.append(f"{role}: {ET.tostring(message, encoding='unicode')[:600]}")
    return found


@pytest.mark.parametrize("xmpp_server", ["prosody"], indirect=True)
async def test_mutated_stanzas_of_every_family_never_knock_the_service_over(
    connect: Connect, fuzz_server: ServerProcess
) -> None:
    started = time.monotonic()
    clients, targets = await setup(connect)
    plan = {role: generate(SEED, role, targets) for role in clients}
    run = Run()
    probe = Probe(await connect("laurence", resource="probe"), run)
    stop = asyncio.Event()
    probing = asyncio.create_task(probe.watch(stop))
    sending = time.monotonic()
    deadline = sending + SECONDS
    try:
        await asyncio.gather(
            *(
                send_all(clients[role], stanzas, STANZAS // len(clients), deadline, run)
                for role, stanzas in plan.items()
            )
        )
    finally:
        stop.set()
        await probing
    sent_in = time.monotonic() - sending

    sent = len(run.outcomes) + len(run.unanswered)
    furthest = max((outcome.stanza.number + 1 for outcome in run.outcomes), default=0)
    replay = (
        f"(replay: BUDDYCLOUD_FUZZ_SEED={SEED} BUDDYCLOUD_FUZZ_STANZAS={furthest * len(clients)} "
        "BUDDYCLOUD_FUZZ_SECONDS=900)"
    )
    # What says most about a failure first: the service went down, then single stanzas.
    log = fuzz_server.log_path.read_text(errors="replace")
    assert log.count(" connected to ") == 1, f"the component reconnected {replay}:\n{log[-3000:]}"
    assert run.why == [], f"the run stopped {replay}: {run.why}"

    changes = Changes(targets.users)
    for outcome in run.outcomes:
        changes.record(outcome)
    # Every client's stanzas have been handled; one more round trip each, and every
    # error message the component sent them has arrived.
    for client in clients.values():
        await client.sync()
    lost = [key for key in await unreadable(clients, changes) if not changes.explains(*key)]

    problems = [problem for outcome in run.outcomes for problem in problems_of(outcome)]
    log = fuzz_server.log_path.read_text(errors="replace")
    print(
        f"fuzz seed {SEED}: {sent} stanzas from {len(clients)} senders in {sent_in:.1f} s "
        f"({sent / sent_in:.0f}/s), {len(changes.published)} posts acknowledged, "
        f"probe worst {max(probe.latencies, default=0):.2f} s; "
        f"whole test {time.monotonic() - started:.1f} s"
    )
    tally = Counter(
        (o.stanza.family, "ok" if o.reply.ok else (o.reply.condition or "?"))
        for o in run.outcomes
        if o.reply is not None
    )
    for family in sorted(FAMILIES):
        row = {k[1]: n for k, n in tally.items() if k[0] == family}
        print(f"  {family:34} {row}")
    assert log.count(" connected to ") == 1, f"the component reconnected {replay}:\n{log[-3000:]}"
    families = {outcome.stanza.family for outcome in run.outcomes}
    assert families == set(FAMILIES), f"families never sent: {set(FAMILIES) - families}"
    assert sent >= MINIMUM, f"only {sent} stanzas in {SECONDS:g} s: too slow to say much"
    assert probe.failures == [], f"the probe went unanswered {replay}: {probe.failures[:3]}"
    assert run.unanswered == [], (
        f"{len(run.unanswered)} IQs unanswered in {IQ_TIMEOUT:g} s {replay}, e.g.\n"
        + "\n".join(run.unanswered[:5])
    )
    assert problems == [], (
        f"{len(problems)} bad replies {replay}, e.g.\n"
        + "\n".join(problems[:8])
        + "\nwhat the server logged of it:\n"
        + "\n".join(tracebacks(log)[:3])
    )
    assert message_errors(clients) == [], replay
    errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert errors == [], f"the server logged errors {replay}:\n{log[-6000:]}"
    assert lost == [], f"{len(lost)} acknowledged posts are gone {replay}: {lost[:10]}"


def test_a_seed_always_gives_the_same_well_formed_stanzas() -> None:
    """What the fuzz test relies on, without a server: the stanzas of a seed can be made
    again to replay a failure, every one is well-formed XML within the XMPP server's size
    limit (anything else closes the sender's stream, not the component's), and every
    mutation is drawn."""
    users = {role: f"{user or 'guest'}@capulet.lit" for role, user in SENDERS.items()}
    targets = Targets(users, OPEN, CLOSED, STATUS, SEED_IDS, CLOSED_IDS, users["stranger"])

    def first(seed: int, role: str) -> list[Stanza]:
        return list(itertools.islice(generate(seed, role, targets), 400))

    payloads = [stanza.payload for stanza in first(SEED, "owner")]
    assert payloads == [stanza.payload for stanza in first(SEED, "owner")]
    assert payloads != [stanza.payload for stanza in first(SEED + 1, "owner")]
    mutations: set[str] = set()
    for role in SENDERS:
        for stanza in first(SEED, role):
            wrapped = f"<iq xmlns='jabber:client' type='get' id='x'>{stanza.payload}</iq>"
            parser = expat.ParserCreate(namespace_separator=" ")
            parser.Parse(wrapped, True)  # raises on anything not well-formed
            assert len(stanza.payload.encode()) <= MAX_PAYLOAD_BYTES
            mutations.update(m for m in stanza.mutations if not m.startswith("message-type"))
    assert mutations == set(Mutator(random.Random(0), targets).mutations) | {
        "iq-type-swapped",
        "to-resource",
        "id-odd",
    }
