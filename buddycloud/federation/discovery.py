"""Which channel server serves a domain (ProtoXEP 2, reference 5.1).

Two ways are tried at once:

1. disco#items on the domain, then disco#info on each item: the one whose identity is
   category `pubsub`, type `channels` (ProtoXEP 2.2);
2. the DNS TXT record `_bcloud-server._tcp.<domain>`, `"v=1.0 server=<jid>"` (ProtoXEP
   2.3), whose server must then answer disco#info with that same identity: a record that
   points at anything but a channel server is ignored.

The disco answer wins when there is one (it is the spec's first method); the DNS answer
counts when disco finds nothing. Answers are cached for `ttl` seconds, a domain with no
channel server for `failure_ttl` seconds, and concurrent lookups of one domain share one
walk.

The same answer decides trust (ProtoXEP 10.1): a request acting for a user of a domain,
or an event about a domain's node, is accepted only from the server discovery names for
that domain, never from any other component of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from xml.etree.ElementTree import Element

from buddycloud.domain.errors import InvalidJid
from buddycloud.domain.jid import Jid
from buddycloud.federation.dns import TxtLookup
from buddycloud.xmpp.multicast import Query, QueryFailed
from buddycloud.xmpp.namespaces import NS_DISCO_INFO, NS_DISCO_ITEMS, qname

log = logging.getLogger(__name__)

DEFAULT_TTL = 600.0
DEFAULT_FAILURE_TTL = 30.0
# disco#items of a domain may list many services; at most this many are asked.
MAX_CANDIDATES = 20
_ITEMS = qname(NS_DISCO_ITEMS, "query")
_ITEM = qname(NS_DISCO_ITEMS, "item")
_INFO = qname(NS_DISCO_INFO, "query")
_IDENTITY = qname(NS_DISCO_INFO, "identity")


class ServerDiscovery:
    """Finds and caches the channel server of each domain.

    Args:
        query: sends an IQ get from this channel server and returns the answer's payload
            (the XMPP component's `query`).
        txt_lookup: the DNS TXT lookup.
        own_domain: this server's user domain; it is served by `own_jid`, without asking.
        own_jid: this channel server's JID.
        ttl: seconds a found server is remembered.
        failure_ttl: seconds a domain without a channel server is remembered as such.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        query: Query,
        txt_lookup: TxtLookup,
        *,
        own_domain: str,
        own_jid: Jid,
        ttl: float = DEFAULT_TTL,
        failure_ttl: float = DEFAULT_FAILURE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._query = query
        self._txt_lookup = txt_lookup
        self._own_domain = own_domain
        self._own_jid = own_jid
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self._clock = clock
        self._cache: dict[str, tuple[Jid | None, float]] = {}
        self._running: dict[str, asyncio.Future[Jid | None]] = {}

    async def channel_server(self, domain: str) -> Jid | None:
        """The JID of the channel server of `domain`, None when it has none we can find."""
        domain = domain.lower()
        if domain == self._own_domain:
            return self._own_jid
        cached = self._cache.get(domain)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        running = self._running.get(domain)
        if running is None:
            running = asyncio.ensure_future(self._discover(domain))
            self._running[domain] = running
            running.add_done_callback(lambda _: self._running.pop(domain, None))
        return await asyncio.shield(running)

    async def is_channel_server(self, domain: str, sender: Jid) -> bool:
        """Whether `sender` is the channel server discovery names for `domain`."""
        if sender.local or sender.resource:
            return False
        return await self.channel_server(domain) == sender

    def forget(self, domain: str) -> None:
        """Drop what is cached about `domain`: the next lookup asks again."""
        self._cache.pop(domain.lower(), None)

    async def _discover(self, domain: str) -> Jid | None:
        by_dns = asyncio.ensure_future(self._by_dns(domain))
        try:
            found = await self._by_disco(domain)
            how = "disco"
            if found is None:
                found = await by_dns
                how = "DNS"
        finally:
            by_dns.cancel()
        if found is None:
            log.info("found no channel server for %s (by disco or DNS)", domain)
            self._cache[domain] = (None, self._clock() + self.failure_ttl)
        else:
            log.info("the channel server of %s is %s (found by %s)", domain, found, how)
            self._cache[domain] = (found, self._clock() + self.ttl)
        return found

    async def _by_disco(self, domain: str) -> Jid | None:
        try:
            answer = await self._query(domain, Element(_ITEMS))
        except QueryFailed as exc:
            log.info("disco#items of %s failed: %s", domain, exc)
            return None
        if answer.tag != _ITEMS:
            return None
        candidates: list[Jid] = []
        for item in answer.findall(_ITEM):
            jid = _domain_jid(item.get("jid", ""))
            if jid is not None and item.get("node") is None and jid not in candidates:
                candidates.append(jid)
            if len(candidates) == MAX_CANDIDATES:
                break
        verdicts = await asyncio.gather(*(self._serves_channels(jid) for jid in candidates))
        return next((jid for jid, ok in zip(candidates, verdicts, strict=True) if ok), None)

    async def _by_dns(self, domain: str) -> Jid | None:
        named = await self._txt_lookup(domain)
        if named is None:
            return None
        if await self._serves_channels(named):
            return named
        log.warning(
            "the DNS record of %s names %s, which is not a channel server; ignored", domain, named
        )
        return None

    async def _serves_channels(self, jid: Jid) -> bool:
        """Whether `jid` answers disco#info with the identity pubsub/channels.

        Never this server itself: it serves its own domain only, and a remote domain that
        names it would send its users' requests round in a loop.
        """
        if jid == self._own_jid:
            return False
        try:
            answer = await self._query(str(jid), Element(_INFO))
        except QueryFailed:
            return False
        return answer.tag == _INFO and any(
            identity.get("category") == "pubsub" and identity.get("type") == "channels"
            for identity in answer.findall(_IDENTITY)
        )


def _domain_jid(raw: str) -> Jid | None:
    try:
        jid = Jid.parse(raw)
    except InvalidJid:
        return None
    return None if jid.local or jid.resource else jid
