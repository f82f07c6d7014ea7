"""A real server for HTTP tests: `buddycloud.app` built from a configuration, with uvicorn
listening on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from http_support import DOMAIN, Server

from buddycloud.app import build
from buddycloud.config import load_config


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    config = load_config(
        None,
        {
            "BUDDYCLOUD_SERVER_DOMAIN": DOMAIN,
            "BUDDYCLOUD_STORAGE_URL": f"sqlite:///{tmp_path}/buddycloud.db",
            "BUDDYCLOUD_HTTP_LISTEN": "127.0.0.1:0",
        },
    )
    app = await build(config)
    try:
        await app.start()
        yield Server(app, f"http://127.0.0.1:{app.http.port}")
    finally:
        await app.close()
