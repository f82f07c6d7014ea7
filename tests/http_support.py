"""HTTP test support: a real server: `buddycloud.app` built from a configuration, with uvicorn
listening on a free loopback port, and httpx clients speaking to it over the socket."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from buddycloud.app import App, build
from buddycloud.config import load_config

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


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, **environ: str) -> AsyncIterator[Server]:
    """A server on SQLite under `tmp_path`, on a free loopback port unless `environ` (more
    `BUDDYCLOUD_*` variables, which win over these) says otherwise."""
    config = load_config(
        None,
        {
            "BUDDYCLOUD_SERVER_DOMAIN": DOMAIN,
            "BUDDYCLOUD_STORAGE_URL": f"sqlite:///{tmp_path}/buddycloud.db",
            "BUDDYCLOUD_HTTP_LISTEN": "127.0.0.1:0",
            **environ,
        },
    )
    app = await build(config)
    try:
        await app.start()
        host = app.http.host
        yield Server(app, f"http://{f'[{host}]' if ':' in host else host}:{app.http.port}")
    finally:
        await app.close()
