"""Shared test helpers for engine tests: a fake clock, an event recorder, the cast."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from buddycloud.domain.events import Event
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId
from buddycloud.services.config import EntryDraft


class FakeClock:
    """Time that moves only when a test says so (one millisecond per reading by default)."""

    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Recorder:
    events: list[Event] = field(default_factory=list)

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Event]:
        return [event for event in self.events if isinstance(event, kind)]

    def clear(self) -> None:
        self.events.clear()


JULIET = Jid.parse("juliet@capulet.lit")
ROMEO = Jid.parse("romeo@capulet.lit")
NURSE = Jid.parse("nurse@capulet.lit")
TYBALT = Jid.parse("tybalt@capulet.lit")
BENVOLIO = Jid.parse("benvolio@montague.lit")  # another domain
MERCUTIO = Jid.parse("mercutio@capulet.lit")


def posts(owner: Jid) -> NodeId:
    return NodeId(owner, "posts")


def text(content: str, **extra: str) -> EntryDraft:
    return EntryDraft(content=content, byte_size=len(content), **extra)  # type: ignore[arg-type]
