"""A real server for the Python client's tests: uvicorn on a loopback socket
(tests/http_support.py), and clients of `buddycloud.client` signed in to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from http_support import PASSWORD, Server, serve

from buddycloud.client import Client


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with serve(tmp_path) as running:
        await running.add_user("juliet")
        await running.add_user("romeo")
        await running.add_user("paris")
        yield running


@pytest.fixture
async def juliet(server: Server) -> AsyncIterator[Client]:
    async with Client(server.url, username="juliet", password=PASSWORD) as client:
        yield client


@pytest.fixture
async def romeo(server: Server) -> AsyncIterator[Client]:
    async with Client(server.url, username="romeo", password=PASSWORD) as client:
        yield client


@pytest.fixture
async def paris(server: Server) -> AsyncIterator[Client]:
    async with Client(server.url, username="paris", password=PASSWORD) as client:
        yield client


@pytest.fixture
async def guest(server: Server) -> AsyncIterator[Client]:
    async with Client(server.url) as client:
        yield client
