"""The `remote` sign-in method: the app's own API says whether a password is good.

The request (docs/auth.md, "remote"):

    POST <[auth] remote_url>
    Content-Type: application/json
    {"username": "juliet@capulet.lit", "localpart": "juliet", "domain": "capulet.lit",
     "password": "..."}

The answers understood: 200 with a JSON object whose `ok` is `true` (the password is
good) or `false` (it is not); 401, 403 or 404 (it is not). Anything else, a redirect, a
body that is not such JSON, no answer within `[auth] remote_timeout` (connecting
included) or no connection at all makes the check unavailable: `SignInUnavailable`, which
answers 503 unless another method says yes. Nothing here remembers answers: the
authenticator remembers successes for `[auth] cache_seconds`, and never a failure.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx

from buddycloud import __version__
from buddycloud.domain.errors import SignInUnavailable
from buddycloud.domain.jid import Jid

log = logging.getLogger(__name__)

MAX_ANSWER = 64 * 1024
REFUSALS = frozenset({401, 403, 404})


class RemoteCheck:
    """Asks the app at `url`, within `timeout` seconds per check."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, user: Jid, password: str) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._ask(user, password)
        except TimeoutError:
            raise self._unavailable(f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            # The exception's text names the URL and the cause, never the body sent.
            raise self._unavailable(f"{type(exc).__name__}: {exc}"[:200]) from None

    async def _ask(self, user: Jid, password: str) -> bool:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                headers={"User-Agent": f"buddycloud/{__version__}"},
            )
        body = {
            "username": str(user.bare),
            "localpart": user.local,
            "domain": user.domain,
            "password": password,
        }
        async with self._client.stream("POST", self.url, json=body) as response:
            if response.status_code in REFUSALS:
                return False
            if response.status_code != 200:
                raise self._unavailable(f"answered {response.status_code}")
            raw = b""
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) > MAX_ANSWER:
                    raise self._unavailable(f"answered more than {MAX_ANSWER} bytes")
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._unavailable("answered 200 with a body that is not JSON") from None
        ok = answer.get("ok") if isinstance(answer, dict) else None
        if not isinstance(ok, bool):
            raise self._unavailable('answered 200 without "ok": true or false')
        return ok

    def _unavailable(self, reason: str) -> SignInUnavailable:
        return SignInUnavailable(f"the app's sign-in API at {self.url} {reason}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
