"""Durable outbound delivery: events on this server's channels, once per following domain.

The listener (`Outbox.__call__`) renders each event on a channel this server serves ONCE,
with the XMPP Notifier's `render`, and queues it durably for every other domain whose
users are in its audience (`Engine.following_domains`) before it returns: the user's
answer comes after the event is queued. Their home servers notify them.

Then one worker per domain with queued events sends them to the domain's channel server
(found by discovery) in inbox IQs (docs/federation.md, the contract):

    <iq type="set"><inbox xmlns="http://buddycloud.org/v1#inbox"><event/>…</inbox></iq>

- oldest first, as many as fit in `MAX_BATCH_BYTES` (at least one), one IQ in flight
  per domain, so the order is kept;
- `result`: the batch is delivered and leaves the queue;
- an error of type `wait`, a routing error (`remote-server-not-found`,
  `remote-server-timeout`), no answer in time, no channel server found, or no stream to
  the XMPP server: the batch stays and is tried again after 1, 2, 4… seconds, at most
  `retry_max`;
- any other error: the batch is refused for good; it is dropped, logged, and its
  conditions (never the remote text) become the domain's last error.

A domain is retried at once when it is heard from: any stanza from its channel server
(`heard_from`, called by the component). Each domain has its own worker: a dead or slow
domain delays no other. What is queued survives a restart; `start` resumes every domain
with queued events. Delivery is at least once: a batch whose answer was lost is sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol
from xml.etree.ElementTree import Element

from buddycloud.domain.events import Event, ItemPublished
from buddycloud.domain.jid import Jid
from buddycloud.services.engine import Engine
from buddycloud.storage.base import OutboxEntry
from buddycloud.xmpp.fitting import fits
from buddycloud.xmpp.multicast import QueryFailed, QueryTimeout
from buddycloud.xmpp.namespaces import NS_INBOX, NS_STANZAS, split_tag
from buddycloud.xmpp.notifications import ENVELOPE_BOUND, Notifier
from buddycloud.xmpp.xml import utf8_size

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 64 * 1024
MAX_BATCH_ROWS = 256
DEFAULT_RETRY_MIN = 1.0
DEFAULT_RETRY_MAX = 30.0
DEFAULT_TIMEOUT = 10.0
# Errors the XMPP servers on the way answer when the channel server cannot be reached now.
RETRIED_CONDITIONS = frozenset({"remote-server-not-found", "remote-server-timeout"})
_OPEN = f'<inbox xmlns="{NS_INBOX}">'
_CLOSE = "</inbox>"


class ChannelServers(Protocol):
    """Discovery (`ServerDiscovery`): each domain's channel server."""

    async def channel_server(self, domain: str) -> Jid | None: ...

    def forget(self, domain: str) -> None: ...


class Request(Protocol):
    async def __call__(
        self, type_: str, to: str, payload: Element | str, *, timeout: float
    ) -> Element:
        """Send an IQ; its answer (result or error). Raises QueryFailed, QueryTimeout."""


Sleep = Callable[[float], Awaitable[None]]


@dataclass(eq=False)
class _Domain:
    """One remote domain's delivery: its worker and what wakes it."""

    name: str
    server: str | None = None
    worker: asyncio.Task[None] | None = None
    more: bool = False  # something was queued since the worker last read the queue
    waiting: bool = False  # the worker waits before trying again
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Outbox:
    """The engine listener that queues events for other domains, and their delivery.

    Args:
        engine: the channel engine (which domains an event goes to, the queue).
        discovery: finds each domain's channel server.
        notifier: the XMPP Notifier, whose `render` renders each event.
        request: sends an IQ from this server's component (`ChannelComponent.request`).
        retry_min: seconds before the first retry of a failed batch; doubled each time.
        retry_max: the longest wait between two tries (`[federation] retry_max`).
        timeout: seconds an inbox IQ, discovery included, may take.
        sleep: waits that many seconds (tests pass their own clock's).
    """

    def __init__(
        self,
        engine: Engine,
        discovery: ChannelServers,
        notifier: Notifier,
        request: Request,
        *,
        retry_min: float = DEFAULT_RETRY_MIN,
        retry_max: float = DEFAULT_RETRY_MAX,
        timeout: float = DEFAULT_TIMEOUT,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.engine = engine
        self.discovery = discovery
        self.notifier = notifier
        self._request = request
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.timeout = timeout
        self._sleep = sleep
        self._domains: dict[str, _Domain] = {}
        # Each channel server's JID -> the domains it serves (for `heard_from`).
        self._by_server: dict[str, set[str]] = {}
        self._running = True
        # An event larger than this cannot travel in a stanza the XMPP server accepts.
        self.max_event_bytes = notifier.max_stanza_bytes - ENVELOPE_BOUND - len(_OPEN + _CLOSE)
        self.max_batch_bytes = min(MAX_BATCH_BYTES, self.max_event_bytes)

    # --- queueing (the engine listener) ----------------------------------------------------

    async def __call__(self, event: Event) -> None:
        domains = self.engine.following_domains(event)
        if not domains:
            return
        body = self._body(event)
        if body is None:
            return
        await self.engine.enqueue_outbox(domains, body)
        for domain in domains:
            self._kick(self._domain(domain))

    def _body(self, event: Event) -> str | None:
        """The event's `<event>` elements, rendered once; None when there are none or they
        cannot travel (a published item too large travels without its payload)."""
        body = "".join(self.notifier.render(event))
        if not body or fits(body, self.max_event_bytes):
            return body or None
        if isinstance(event, ItemPublished):
            return self.notifier.item_stub(event)
        log.warning(
            "a %s event of %d bytes does not fit in a stanza under [xmpp] max_stanza_bytes; "
            "not sent to other domains",
            type(event).__name__,
            utf8_size(body),
        )
        return None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume delivery to every domain with queued events (left from the last run)."""
        self._running = True
        for status in await self.engine.outbox_status():
            state = self._domain(status.domain)
            if status.server is not None:
                self._learn(state, status.server)
            if status.depth:
                log.info("resuming delivery to %s (queued: %d)", status.domain, status.depth)
                self._kick(state)

    async def stop(self) -> None:
        """Stop every worker; what is queued stays for the next start."""
        self._running = False
        workers = [state.worker for state in self._domains.values() if state.worker is not None]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    def heard_from(self, sender: str) -> None:
        """A stanza from `sender` reached the component: when it is a domain's channel
        server, that domain's queue is tried again at once."""
        domains = self._by_server.get(sender)
        if not domains:
            return
        for name in domains:
            state = self._domains[name]
            if state.waiting:
                log.info("heard from %s: retrying %s now", sender, name)
                self.discovery.forget(name)
                state.wake.set()

    def retry_now(self) -> None:
        """Try every waiting domain again at once (the stream to the XMPP server is back)."""
        for state in self._domains.values():
            if state.waiting:
                state.wake.set()

    def pending(self) -> dict[str, bool]:
        """Each known domain -> whether a worker delivers to it now (tests, diagnostics)."""
        return {name: state.worker is not None for name, state in self._domains.items()}

    # --- delivery -------------------------------------------------------------------------

    def _domain(self, name: str) -> _Domain:
        state = self._domains.get(name)
        if state is None:
            state = self._domains[name] = _Domain(name)
        return state

    def _learn(self, state: _Domain, server: str) -> None:
        if state.server == server:
            return
        if state.server is not None:
            self._by_server.get(state.server, set()).discard(state.name)
        state.server = server
        self._by_server.setdefault(server, set()).add(state.name)

    def _kick(self, state: _Domain) -> None:
        state.more = True
        if state.worker is None and self._running:
            state.worker = asyncio.create_task(self._deliver(state), name=f"outbox-{state.name}")

    async def _deliver(self, state: _Domain) -> None:
        failures = 0
        try:
            while True:
                state.more = False
                try:
                    batch = await self.engine.outbox_batch(
                        state.name, max_bytes=self.max_batch_bytes, max_rows=MAX_BATCH_ROWS
                    )
                    if not batch:
                        if state.more:
                            continue
                        return
                    sent = await self._send(state, batch)
                except Exception:
                    log.exception("delivery to %s failed", state.name)
                    sent = False
                if sent:
                    if failures:
                        log.info("%s is reachable again after %d tries", state.name, failures)
                    failures = 0
                    continue
                failures += 1
                await self._pause(state, min(self.retry_min * 2 ** (failures - 1), self.retry_max))
        finally:
            state.worker = None

    async def _pause(self, state: _Domain, seconds: float) -> None:
        """Wait `seconds`, or until the domain is heard from."""
        state.wake.clear()
        state.waiting = True
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(state.wake.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            state.waiting = False
            sleeper.cancel()
            woken.cancel()

    async def _send(self, state: _Domain, batch: list[OutboxEntry]) -> bool:
        """Send one batch; True when it left the queue (delivered or refused for good)."""
        domain = state.name
        sequences = [entry.sequence for entry in batch]
        payload = _OPEN + "".join([entry.body for entry in batch]) + _CLOSE
        server: Jid | None = None
        try:
            async with asyncio.timeout(self.timeout):
                server = await self.discovery.channel_server(domain)
                if server is None:
                    return await self._failed(state, None, "no channel server found")
                self._learn(state, str(server))
                answer = await self._request("set", str(server), payload, timeout=self.timeout)
        except (TimeoutError, QueryTimeout):
            return await self._failed(state, server, f"no answer within {self.timeout:g} s")
        except QueryFailed as exc:
            return await self._failed(state, server, f"not sent: {exc}")
        type_ = answer.get("type")
        if type_ == "result":
            await self.engine.outbox_delivered(domain, sequences, str(server))
            log.debug("delivered %d events to %s (%s)", len(batch), domain, server)
            return True
        if type_ != "error":
            return await self._failed(state, server, "answered with something other than a result")
        kind, condition = _error_of(answer)
        described = f"answered {kind or 'an'} error {condition or '(no condition)'}"
        if kind == "wait" or condition in RETRIED_CONDITIONS:
            return await self._failed(state, server, described)
        log.warning(
            "%s refused a batch of %d events for %s for good (%s); dropped",
            server,
            len(batch),
            domain,
            described,
        )
        await self.engine.outbox_refused(domain, sequences, str(server), f"refused: {described}")
        return True

    async def _failed(self, state: _Domain, server: Jid | None, error: str) -> bool:
        if server is None:
            log.info("could not deliver to %s: %s", state.name, error)
        else:
            log.info("could not deliver to %s (%s): %s", state.name, server, error)
        await self.engine.outbox_failed(
            state.name, str(server) if server is not None else None, error
        )
        return False


def _error_of(answer: Element) -> tuple[str, str]:
    """The type and stanza error condition of an `<iq type="error">`: never its text."""
    for child in answer:
        if isinstance(child.tag, str) and split_tag(child.tag)[1] == "error":
            condition = next(
                (
                    split_tag(c.tag)[1]
                    for c in child
                    if isinstance(c.tag, str)
                    and split_tag(c.tag)[0] == NS_STANZAS
                    and split_tag(c.tag)[1] != "text"
                ),
                "",
            )
            return child.get("type", "")[:20], condition[:60]
    return "", ""
