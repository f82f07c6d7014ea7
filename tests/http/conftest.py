"""A real server for HTTP tests: `buddycloud.app` built from a configuration, with uvicorn
listening on a free loopback port."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from http_support import MakeServer, Server, serve


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with serve(tmp_path) as running:
        yield running


@pytest.fixture
def make_server(tmp_path: Path) -> MakeServer:
    """`async with make_server(BUDDYCLOUD_HTTP_X="...") as server`: a server whose
    configuration has these variables besides the usual ones."""
    return functools.partial(serve, tmp_path)
