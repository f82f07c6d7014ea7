"""Who is asking: the `Authorization` header of a request turned into a requester.

`Basic base64(user:password)` is checked against the built-in user database (a user
without `@` is of this server's domain, reference 9.1). No header at all is an anonymous
guest, who reads what the access models let guests read. A header that is present but
malformed or wrong answers 401; it never falls back to anonymous.

Checking a password costs an argon2 hash on purpose, so a success is remembered for
`CACHE_SECONDS` under a digest of the header (never the password itself); failures are
never cached. Changing or resetting a password forgets the account's cached sign-ins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

from buddycloud.domain.errors import NotAuthenticated
from buddycloud.domain.jid import Jid
from buddycloud.services.engine import Engine

CACHE_SECONDS = 60.0
CACHE_SIZE = 10_000
# The guest every anonymous HTTP request acts as: a user of an anonymous domain, which the
# engine lets read and nothing else.
ANONYMOUS_LOCALPART = "anonymous"
MAX_HEADER = 8192


@dataclass(frozen=True, slots=True)
class Requester:
    jid: Jid
    anonymous: bool


class Authenticator:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: OrderedDict[bytes, tuple[Jid, float]] = OrderedDict()
        self.anonymous = Requester(
            Jid(ANONYMOUS_LOCALPART, f"anon.{engine.config.domain}"), anonymous=True
        )

    async def authenticate(self, header: str | None) -> Requester:
        """The requester an `Authorization` header names.

        Raises:
            NotAuthenticated: the header is malformed, of an unknown scheme, or its
                credentials are wrong.
        """
        if header is None:
            return self.anonymous
        if len(header) > MAX_HEADER:
            raise NotAuthenticated("the Authorization header is too long")
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "basic":
            return await self._basic(value.strip())
        raise NotAuthenticated(f"unknown authorization scheme {scheme[:20]!r}; use Basic")

    async def _basic(self, value: str) -> Requester:
        key = hashlib.sha256(value.encode()).digest()
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return Requester(cached[0], anonymous=False)
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise NotAuthenticated("malformed Basic credentials") from None
        username, colon, password = decoded.partition(":")
        if not colon:
            raise NotAuthenticated("Basic credentials are user:password")
        jid = await self._engine.authenticate(username, password)
        self._cache[key] = (jid, now + CACHE_SECONDS)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return Requester(jid, anonymous=False)

    def forget(self, jid: Jid) -> None:
        """Drop the cached sign-ins of an account (its password changed, or it went)."""
        for key in [k for k, (cached, _) in self._cache.items() if cached == jid]:
            del self._cache[key]
