"""XMPP edge fixtures: a real engine over real storage, driven through a fake stream."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_support import FakeClock
from xmpp.support import SERVICE, Client, Harness

from buddycloud.domain.jid import Jid
from buddycloud.services.config import EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.base import Storage


@pytest.fixture
async def storage(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Storage]:
    """SQLite only: the edge's behaviour does not depend on the backend."""
    from buddycloud.storage.factory import open_storage

    path = tmp_path / "buddycloud.db"
    shutil.copyfile(sqlite_template, path)
    opened = await open_storage(f"sqlite:///{path}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def engine(storage: Storage) -> AsyncIterator[Engine]:
    config = EngineConfig(
        domain="capulet.lit",
        service_jid=Jid.parse(SERVICE),
        topics_domain="topics.capulet.lit",
        max_payload_bytes=4096,
    )
    yield Engine(storage, FakeClock(), config)


@pytest.fixture
def harness(engine: Engine) -> Harness:
    return Harness(engine)


@pytest.fixture
def juliet(harness: Harness) -> Client:
    return harness.client("juliet@capulet.lit/balcony")


@pytest.fixture
def romeo(harness: Harness) -> Client:
    return harness.client("romeo@capulet.lit/orchard")


@pytest.fixture
def nurse(harness: Harness) -> Client:
    return harness.client("nurse@capulet.lit/kitchen")
