"""Who is asking: the `Authorization` header of a request turned into a requester.

- `Basic base64(user:password)`: the password is checked by the `[auth] methods` that
  check passwords (`database`, `remote`, `xmpp`), in their configured order; the first that
  says yes wins (a user without `@` is of this server's domain, reference 9.1).
- `Bearer <token>`: a token this server issued (`POST /api/auth/token`), or, with the
  `secret` method, one the app signed with the shared secret (buddycloud/http/tokens.py).
- No header at all is an anonymous guest, who reads what the access models let guests
  read. A header that is present but malformed or wrong answers 401 `not-authorized`,
  whatever the reason; it never falls back to anonymous.

Checking a password costs an argon2 hash (or a call to the app or the XMPP server), so a
success is remembered for `cache_seconds` under a digest of the credentials (never the
password itself), failures never; concurrent first sign-ins with the same credentials share
one check. Failed sign-ins are counted per account and per client address
(buddycloud/http/limits.py); past the limits sign-ins are refused with 429 for a while.

A token is good while its user's sign-in generation is the one it carries: signing out,
changing the password or deleting the account raises it. The generation is read from the
storage at most every `GENERATION_SECONDS` per user and at once after a change made by this
process, so another worker honours a revocation within that time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from buddycloud.domain.errors import InvalidJid, NotAuthenticated, SignInUnavailable
from buddycloud.domain.jid import Jid
from buddycloud.http.limits import FailureWindow
from buddycloud.http.tokens import (
    ISSUER,
    TokenClaims,
    issue,
    issuer_of,
    verify_app_token,
    verify_server_token,
)
from buddycloud.services.engine import Engine
from buddycloud.services.ports import PasswordCheck

log = logging.getLogger(__name__)

CACHE_SIZE = 10_000
GENERATION_SECONDS = 5.0
# The guest every anonymous HTTP request acts as: a user of an anonymous domain, which the
# engine lets read and nothing else.
ANONYMOUS_LOCALPART = "anonymous"
MAX_HEADER = 8192
MAX_USERNAME = 1024
MAX_PASSWORD = 4096
WRONG = "the username or password is wrong"
TOKEN_KEY = "token_key"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """How users sign in: `[auth]` (buddycloud/config.py, docs/config.md)."""

    methods: tuple[str, ...] = ("database",)
    secret: str | None = None
    token_key: str | None = None
    token_lifetime: int = 900
    session_lifetime: int = 7 * 24 * 3600
    cache_seconds: float = 60.0
    max_account_failures: int = 10
    max_address_failures: int = 100
    failure_window: float = 900.0


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks. `token` holds the claims of the bearer token they signed in with."""

    jid: Jid
    anonymous: bool
    token: TokenClaims | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    jid: Jid


class Authenticator:
    def __init__(
        self,
        engine: Engine,
        settings: AuthSettings | None = None,
        *,
        checks: Mapping[str, PasswordCheck] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Args:
        checks: the password checks of the `remote` and `xmpp` methods, by name; each
            method of `settings.methods` but `database` and `secret` needs one.
        clock: wall-clock seconds, for token times.
        """
        self._engine = engine
        self.settings = settings or AuthSettings()
        self._clock = clock
        self._domain = engine.config.domain
        self._checks: list[tuple[str, PasswordCheck]] = []
        for method in self.settings.methods:
            if method == "database":
                self._checks.append((method, engine.check_password))
            elif method != "secret":
                if checks is None or method not in checks:
                    raise ValueError(f"the {method} sign-in method needs its password check")
                self._checks.append((method, checks[method]))
        self._cache: OrderedDict[bytes, tuple[Jid, float]] = OrderedDict()
        self._checking: dict[bytes, asyncio.Future[Jid | None]] = {}
        self._generations: dict[Jid, tuple[int, float]] = {}
        self._registered: set[Jid] = set()
        self._key: str | None = self.settings.token_key
        window = self.settings.failure_window
        self._account_failures = FailureWindow(self.settings.max_account_failures, window)
        self._address_failures = FailureWindow(self.settings.max_address_failures, window)
        self.anonymous = Requester(
            Jid(ANONYMOUS_LOCALPART, f"anon.{engine.config.domain}"), anonymous=True
        )

    async def authenticate(self, header: str | None, *, client: str | None = None) -> Requester:
        """The requester an `Authorization` header names.

        Args:
            client: the client's address, for counting its failures.

        Raises:
            NotAuthenticated: the header is malformed, of an unknown scheme, or its
                credentials or token are wrong.
            TooManyFailures: too many sign-ins failed lately for the account or address.
            SignInUnavailable: a method could not check the password in time, and none
                said yes.
        """
        if header is None:
            return self.anonymous
        address = client or "unknown"
        self._address_failures.check(address)
        try:
            return await self._authenticate(header, address)
        except NotAuthenticated:
            self._address_failures.fail(address)
            raise

    async def sign_in(self, username: str, password: str, *, client: str | None) -> Requester:
        """The user whose username and password these are (a JSON sign-in).

        Raises: as `authenticate`.
        """
        address = client or "unknown"
        self._address_failures.check(address)
        try:
            key = hashlib.sha256(f"{username}\x00{password}".encode()).digest()
            return await self._password(key, username, password)
        except NotAuthenticated:
            self._address_failures.fail(address)
            raise

    async def _authenticate(self, header: str, address: str) -> Requester:
        if len(header) > MAX_HEADER:
            raise NotAuthenticated("the Authorization header is too long")
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "basic":
            return await self._basic(value.strip())
        if scheme.lower() == "bearer":
            return await self._bearer(value.strip())
        raise NotAuthenticated(f"unknown authorization scheme {scheme[:20]!r}; use Basic or Bearer")

    async def _basic(self, value: str) -> Requester:
        key = hashlib.sha256(value.encode()).digest()
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise NotAuthenticated("malformed Basic credentials") from None
        username, colon, password = decoded.partition(":")
        if not colon:
            raise NotAuthenticated("Basic credentials are user:password")
        return await self._password(key, username, password)

    def _cached(self, key: bytes) -> Requester | None:
        cached = self._cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return Requester(cached[0], anonymous=False)
        return None

    async def _password(self, key: bytes, username: str, password: str) -> Requester:
        cached = self._cached(key)
        if cached is not None:
            return cached
        if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
            raise NotAuthenticated(WRONG)
        try:
            jid: Jid | None = self._engine.account_jid(username)
        except InvalidJid:
            jid = None
        account = str(jid) if jid is not None else username.strip().lower()
        self._account_failures.check(account)
        # Concurrent sign-ins with the same credentials (a page opening several requests
        # at once) wait for the first one's check instead of hashing again.
        pending = self._checking.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._check(jid, password))
            self._checking[key] = pending
            pending.add_done_callback(lambda _: self._checking.pop(key, None))
            leader = True
        else:
            leader = False
        found = await asyncio.shield(pending)
        if found is None:
            if leader:
                self._account_failures.fail(account)
            raise NotAuthenticated(WRONG)
        self._account_failures.clear(account)
        if leader:
            log.info("%s signed in", found)  # once per check, not per request
        if self.settings.cache_seconds > 0:
            self._cache[key] = (found, time.monotonic() + self.settings.cache_seconds)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return Requester(found, anonymous=False)

    async def _check(self, jid: Jid | None, password: str) -> Jid | None:
        """The user when a method says the password is theirs, else None.

        Raises:
            SignInUnavailable: no method said yes, and one could not answer.
        """
        unavailable: SignInUnavailable | None = None
        if jid is None:
            # No method is asked about a name that cannot be a user here; the hash is
            # computed all the same, so the answer takes as long.
            if any(method == "database" for method, _ in self._checks):
                await self._engine.check_password(None, password)
            return None
        for method, check in self._checks:
            try:
                if await check(jid, password):
                    if method != "database":
                        await self._ensure_registered(jid)
                    return jid
            except SignInUnavailable as exc:
                log.warning("the %s sign-in method could not check a password: %s", method, exc)
                unavailable = exc
        if unavailable is not None:
            # Why is in the log; the caller learns only that it may try again later.
            raise SignInUnavailable("the credentials could not be checked now; try again later")
        return None

    async def _ensure_registered(self, jid: Jid) -> None:
        """Users of the `secret`, `remote` and `xmpp` methods get their personal channel
        the first time they sign in, as users of the built-in database do when their
        account is made."""
        if jid not in self._registered:
            await self._engine.register(jid)
            if len(self._registered) >= CACHE_SIZE:
                self._registered.clear()  # registering again is harmless, only slower
            self._registered.add(jid)

    async def _bearer(self, token: str) -> Requester:
        if not token:
            raise NotAuthenticated("a Bearer token is needed after Bearer")
        if issuer_of(token) == ISSUER:
            claims = verify_server_token(token, await self.token_key(), self._domain)
            if claims.generation != await self._generation(claims.jid):
                raise NotAuthenticated("the token was revoked: its user signed out")
            return Requester(claims.jid, anonymous=False, token=claims)
        if "secret" in self.settings.methods and self.settings.secret is not None:
            claims = verify_app_token(token, self.settings.secret, self._domain)
            await self._ensure_registered(claims.jid)
            return Requester(claims.jid, anonymous=False, token=claims)
        raise NotAuthenticated("the token was not issued by this server")

    async def token_key(self) -> str:
        """The key issued tokens are signed with: `[auth] token_key`, else the server's."""
        if self._key is None:
            self._key = await self._engine.server_key(TOKEN_KEY)
        return self._key

    async def _generation(self, jid: Jid) -> int:
        now = time.monotonic()
        known = self._generations.get(jid)
        if known is not None and known[1] > now:
            return known[0]
        generation = await self._engine.sign_in_generation(jid)
        if len(self._generations) >= CACHE_SIZE:
            self._generations.clear()
        self._generations[jid] = (generation, now + GENERATION_SECONDS)
        return generation

    async def issue(self, requester: Requester) -> IssuedToken:
        """A new token for a signed-in requester: a new session for one who signed in with
        a password (or an app's token), the same session for one with a server token.

        Raises:
            NotAuthenticated: the session is over (`session_lifetime` after signing in).
        """
        now = int(self._clock())
        claims = requester.token
        start = now if claims is None or claims.generation is None else claims.session_start
        end = start + self.settings.session_lifetime
        if now >= end:
            raise NotAuthenticated("the session is over: sign in again")
        expires = min(now + self.settings.token_lifetime, end)
        generation = await self._engine.sign_in_generation(requester.jid)
        self._generations[requester.jid] = (generation, time.monotonic() + GENERATION_SECONDS)
        token = issue(
            await self.token_key(),
            TokenClaims(requester.jid, start, generation),
            now=now,
            expires=expires,
        )
        return IssuedToken(token, expires - now, requester.jid)

    async def sign_out(self, requester: Requester) -> None:
        """Revoke every token issued to the requester."""
        await self._engine.end_sign_ins(requester.jid)
        self.forget(requester.jid)

    def forget(self, jid: Jid) -> None:
        """Drop what is remembered of an account's sign-ins (its password changed, it
        signed out, or it went): cached passwords and its sign-in generation."""
        for key in [k for k, (cached, _) in self._cache.items() if cached == jid]:
            del self._cache[key]
        self._generations.pop(jid, None)
