"""Unit tests of the client's token handling against a stand-in for the server's token
endpoint (the contract of docs/client-python.md): signing in, refreshing before expiry,
signing out. The same calls against the real server are in test_tokens.py."""

from __future__ import annotations

import base64

import httpx
import pytest

from buddycloud.client import Client, TooManyRequests, Unauthorized


class TokenEndpoint:
    """`POST/DELETE /api/auth/token` and `GET /api` as the contract says, with tokens
    that live `lifetime` seconds."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.seen: list[str | None] = []
        self.failures = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("authorization")
        if request.url.path == "/api/auth/token" and request.method == "POST":
            if header is not None and header.startswith("Bearer "):
                if not self._valid(header):
                    return self._refused()
                return self._issue()
            if request.content or header != basic("juliet", "right"):
                self.failures += 1
                if self.failures > 2:
                    return httpx.Response(
                        429,
                        json={"error": "too-many-requests", "message": "wait"},
                        headers={"Retry-After": "30"},
                    )
                return self._refused()
            return self._issue()
        if request.url.path == "/api/auth/token" and request.method == "DELETE":
            if not self._valid(header):
                return self._refused()
            self.revoked.update(self.issued)
            return httpx.Response(204)
        self.seen.append(header)
        return httpx.Response(204) if header is None or self._valid(header) else self._refused()

    def _valid(self, header: str | None) -> bool:
        if header is None or not header.startswith("Bearer "):
            return False
        token = header.removeprefix("Bearer ")
        return token in self.issued and token not in self.revoked

    def _issue(self) -> httpx.Response:
        token = f"token-{len(self.issued)}"
        self.issued.append(token)
        return httpx.Response(
            200,
            json={
                "token": token,
                "token_type": "Bearer",
                "expires_in": self.lifetime,
                "jid": "juliet@capulet.lit",
            },
        )

    @staticmethod
    def _refused() -> httpx.Response:
        return httpx.Response(401, json={"error": "not-authorized", "message": "no"})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def client_of(endpoint: TokenEndpoint) -> Client:
    return Client("http://server.test", transport=httpx.MockTransport(endpoint.handle))


async def test_a_signed_in_client_sends_its_token_and_keeps_it_while_it_is_fresh() -> None:
    endpoint = TokenEndpoint(lifetime=3600)
    async with client_of(endpoint) as client:
        token = await client.sign_in("juliet", "right")
        assert (token.token, token.jid, token.token_type) == (
            "token-0",
            "juliet@capulet.lit",
            "Bearer",
        )
        await client.check()
        await client.check()
        assert client.token == token
    assert endpoint.seen == ["Bearer token-0", "Bearer token-0"]


async def test_a_token_near_its_end_is_refreshed_before_the_request() -> None:
    endpoint = TokenEndpoint(lifetime=0)  # every token is due for refresh at once
    async with client_of(endpoint) as client:
        await client.sign_in("juliet", "right")
        await client.check()
        await client.check()
    assert endpoint.seen == ["Bearer token-1", "Bearer token-2"]


async def test_signing_out_revokes_and_leaves_a_guest() -> None:
    endpoint = TokenEndpoint(lifetime=3600)
    async with client_of(endpoint) as client:
        await client.sign_in("juliet", "right")
        await client.sign_out()
        assert client.token is None
        await client.check()  # a guest: no header at all
    assert endpoint.revoked == {"token-0"}
    assert endpoint.seen == [None]


async def test_refused_sign_ins_are_typed_errors_with_retry_after() -> None:
    endpoint = TokenEndpoint(lifetime=3600)
    async with client_of(endpoint) as client:
        for _ in range(2):
            with pytest.raises(Unauthorized) as refused:
                await client.sign_in("juliet", "wrong")
            assert refused.value.error == "not-authorized"
        with pytest.raises(TooManyRequests) as limited:
            await client.sign_in("juliet", "wrong")
        assert (limited.value.status, limited.value.retry_after) == (429, 30.0)
        assert client.token is None
