"""JIDs as value types (RFC 7622), validated once when they enter the system."""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

from buddycloud.domain.errors import InvalidJid

_MAX_PART = 1023
# RFC 7622 §3.3.1: these may not appear in a localpart.
_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@")
_DOMAIN_FORBIDDEN = frozenset(" \"&'/:<>@\\[]")


def _check_part(value: str, what: str, forbidden: frozenset[str], raw: str) -> None:
    if not value:
        raise InvalidJid(raw, f"empty {what}")
    if len(value.encode("utf-8")) > _MAX_PART:
        raise InvalidJid(raw, f"{what} longer than {_MAX_PART} bytes")
    for char in value:
        if char in forbidden:
            raise InvalidJid(raw, f"{what} contains {char!r}")
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn") or (category == "Zs" and what != "resource"):
            raise InvalidJid(raw, f"{what} contains a control, space or unassigned character")


@dataclass(frozen=True, slots=True, order=True)
class Jid:
    """An XMPP address. `local` and `resource` are empty strings when absent."""

    local: str
    domain: str
    resource: str = ""

    @classmethod
    def parse(cls, raw: str) -> Jid:
        """Parse and normalise a JID string.

        Raises:
            InvalidJid: the string is not a valid JID.
        """
        if cls is Jid and isinstance(raw, str):
            # Every stanza names the same few senders and services: validate each once.
            return _parse_cached(raw)
        return cls._parse(raw)

    @classmethod
    def _parse(cls, raw: str) -> Jid:
        if not isinstance(raw, str) or not raw:
            raise InvalidJid(str(raw), "empty JID")
        rest, slash, resource = raw.partition("/")
        if slash and not resource:
            raise InvalidJid(raw, "empty resource")
        local, at, domain = rest.rpartition("@")
        if not at:
            local, domain = "", rest
        elif not local:
            raise InvalidJid(raw, "empty localpart")
        domain = domain.rstrip(".").lower()
        local = unicodedata.normalize("NFKC", local).lower()
        _check_part(domain, "domain", _DOMAIN_FORBIDDEN, raw)
        if local:
            _check_part(local, "localpart", _LOCAL_FORBIDDEN, raw)
        if resource:
            _check_part(resource, "resource", frozenset(), raw)
        return cls(local, domain, resource)

    @property
    def bare(self) -> Jid:
        return Jid(self.local, self.domain) if self.resource else self

    @property
    def is_bare(self) -> bool:
        return not self.resource

    def __str__(self) -> str:
        text = f"{self.local}@{self.domain}" if self.local else self.domain
        return f"{text}/{self.resource}" if self.resource else text


@functools.lru_cache(maxsize=16384)
def _parse_cached(raw: str) -> Jid:
    return Jid._parse(raw)
