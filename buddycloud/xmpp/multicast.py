"""XEP-0033 multicast: one notification stanza for all of its recipients.

Where the XMPP server offers Extended Stanza Addressing (ejabberd's `mod_multicast`, or
the Prosody module this project ships for `--with-prosody`), the component sends each
notification once, with the followers' full JIDs as `bcc` addresses, and the XMPP server
delivers a copy to each. The server then parses one stanza instead of one per follower,
and the component writes one.

The service is found as XEP-0033 section 2.1 says: disco#info on the server's domain, and
when that does not list the feature, disco#info on each item of its disco#items. Its
limit of addresses per message comes from the same answer (section 7).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from buddycloud.xmpp.errors import MalformedStanza
from buddycloud.xmpp.forms import find_form
from buddycloud.xmpp.namespaces import NS_ADDRESS, NS_DISCO_INFO, NS_DISCO_ITEMS, qname
from buddycloud.xmpp.xml import quote_attribute

log = logging.getLogger(__name__)

# When the service advertises no limit: ejabberd's default for senders of other domains.
DEFAULT_LIMIT = 20
# Never more addresses in one stanza, whatever the service allows: keeps stanzas small.
MAX_ADDRESSES = 500
# disco#items of a server may list many services; at most this many are asked.
MAX_CANDIDATES = 20


class QueryFailed(Exception):
    """An IQ the component sent got an error answer, or none in time."""


class QueryTimeout(QueryFailed):
    """An IQ the component sent got no answer in time."""


Query = Callable[[str, Element], Awaitable[Element]]
"""Send an IQ get with this payload to that JID; the answer's payload.

Raises:
    QueryFailed
"""


@dataclass(frozen=True, slots=True)
class MulticastService:
    """An XEP-0033 service and the most addresses it takes in one message."""

    jid: str
    limit: int

    @property
    def quoted_jid(self) -> str:
        return quote_attribute(self.jid)


def parse_service(jid: str, info: Element) -> MulticastService | None:
    """The multicast service a disco#info answer from `jid` describes, or None."""
    features = {feature.get("var") for feature in info.iter(qname(NS_DISCO_INFO, "feature"))}
    if NS_ADDRESS not in features:
        return None
    limit = DEFAULT_LIMIT
    try:
        form = find_form(info, NS_ADDRESS)
    except MalformedStanza:
        form = None
    advertised = form.get("message") if form is not None else None
    if advertised is not None:
        advertised = advertised.strip()
        if advertised == "infinite":
            limit = MAX_ADDRESSES
        elif advertised.isascii() and advertised.isdigit():
            limit = int(advertised)
    if limit < 2:
        return None  # one address per stanza is no multicast at all
    return MulticastService(jid, min(limit, MAX_ADDRESSES))


async def discover(query: Query, domain: str, *, own_jid: str) -> MulticastService | None:
    """The XMPP server's multicast service, or None when it has none (or does not say)."""
    try:
        service = parse_service(domain, await query(domain, Element(qname(NS_DISCO_INFO, "query"))))
        if service is not None:
            return service
        items = await query(domain, Element(qname(NS_DISCO_ITEMS, "query")))
    except QueryFailed as exc:
        log.info("no multicast service found at %s: %s", domain, exc)
        return None
    candidates: list[str] = []
    for item in items.iter(qname(NS_DISCO_ITEMS, "item")):
        jid = item.get("jid")
        if jid and not item.get("node") and jid != own_jid and jid not in candidates:
            candidates.append(jid)
    candidates = candidates[:MAX_CANDIDATES]
    answers = await asyncio.gather(
        *(query(jid, Element(qname(NS_DISCO_INFO, "query"))) for jid in candidates),
        return_exceptions=True,
    )
    for jid, answer in zip(candidates, answers, strict=True):
        if isinstance(answer, Element):
            service = parse_service(jid, answer)
            if service is not None:
                return service
    return None
