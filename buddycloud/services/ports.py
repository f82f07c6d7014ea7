"""What the engine needs from the outside world, as protocols."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from buddycloud.domain.events import Event


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC. Never returns the same instant twice."""


class EventListener(Protocol):
    async def __call__(self, event: Event) -> None: ...
