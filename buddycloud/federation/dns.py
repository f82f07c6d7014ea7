"""The DNS half of channel server discovery: the `_bcloud-server._tcp.<domain>` TXT record.

ProtoXEP 2.3: a domain may delegate its channels to a server named in a TXT record,
`"v=1.0 server=<jid>"`. Queries go to the configured nameservers (`[federation]
nameservers`), or to the system's resolver when none are configured.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdtypes.ANY.TXT
import dns.resolver

from buddycloud.domain.errors import InvalidJid
from buddycloud.domain.jid import Jid

log = logging.getLogger(__name__)

SERVICE_LABEL = "_bcloud-server._tcp"
DEFAULT_DNS_TIMEOUT = 5.0
# A TXT record is at most a few hundred bytes; anything longer is not ours.
MAX_RECORD_LENGTH = 1024


class TxtLookup(Protocol):
    async def __call__(self, domain: str) -> Jid | None:
        """The channel server the domain's TXT record names, None when there is none."""


def record_name(domain: str) -> str:
    return f"{SERVICE_LABEL}.{domain}."


def parse_server_record(text: str) -> Jid | None:
    """The server a `v=1.0 server=<jid>` record names; None for any other text.

    Tokens are separated by spaces; `v` must be 1.x and `server` a bare domain JID (a
    trailing dot, as in the ProtoXEP's example, is dropped).
    """
    if len(text) > MAX_RECORD_LENGTH:
        return None
    fields: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep or key in fields:
            return None
        fields[key] = value
    version = fields.get("v", "")
    if version != "1" and not version.startswith("1."):
        return None
    server = fields.get("server", "").rstrip(".")
    if not server:
        return None
    try:
        jid = Jid.parse(server)
    except InvalidJid:
        return None
    if jid.local or jid.resource:
        return None
    return jid


class DnsTxtLookup:
    """TXT lookups through dnspython.

    Args:
        nameservers: (address, port) pairs to ask, or empty for the system's resolver.
        timeout: the longest a lookup takes, in seconds, retries included.
    """

    def __init__(
        self, nameservers: Sequence[tuple[str, int]] = (), *, timeout: float = DEFAULT_DNS_TIMEOUT
    ) -> None:
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(address, port) for address, port in nameservers
            ]
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        self._resolver = resolver

    async def __call__(self, domain: str) -> Jid | None:
        name = record_name(domain)
        try:
            answer = await self._resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except (dns.exception.DNSException, OSError) as exc:
            log.info("DNS lookup of %s failed: %s", name, exc)
            return None
        for record in answer:
            if not isinstance(record, dns.rdtypes.ANY.TXT.TXT):
                continue
            # One record may be split into several character-strings; they read as one.
            text = b"".join(record.strings).decode("utf-8", errors="replace")
            server = parse_server_record(text)
            if server is not None:
                return server
            log.info("ignored a TXT record of %s that is not v=1.0 server=<jid>", name)
        return None
