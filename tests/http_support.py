"""HTTP test support: a real server: `buddycloud.app` built from a configuration, with uvicorn
listening on a free loopback port, and httpx clients speaking to it over the socket."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

from buddycloud.app import App

DOMAIN = "capulet.lit"
PASSWORD = "balcony-at-midnight"


@dataclass
class Server:
    app: App
    url: str

    def client(self, user: str | None = None, password: str = PASSWORD) -> httpx.AsyncClient:
        """A client signed in as `user` (HTTP Basic), or anonymous."""
        headers = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    async def add_user(self, name: str, password: str = PASSWORD) -> None:
        async with self.client() as anonymous:
            answer = await anonymous.post(
                "/api/account",
                json={"username": name, "password": password, "email": f"{name}@example.org"},
            )
            assert answer.status_code == 200, answer.text
