"""Engine fixtures: a real engine over each real storage backend, a fake clock, recorded events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from engine_support import FakeClock, Recorder

from buddycloud.domain.jid import Jid
from buddycloud.services.config import EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.storage.base import Storage


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def engine(storage: Storage, clock: FakeClock, recorder: Recorder) -> AsyncIterator[Engine]:
    config = EngineConfig(
        domain="capulet.lit",
        service_jid=Jid.parse("channels.capulet.lit"),
        topics_domain="topics.capulet.lit",
        max_payload_bytes=4096,
    )
    engine = Engine(storage, clock, config)
    engine.add_listener(recorder)
    yield engine
