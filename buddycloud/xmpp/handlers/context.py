"""What every IQ handler receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from xml.etree.ElementTree import Element

from buddycloud.domain.events import Event
from buddycloud.domain.jid import Jid
from buddycloud.services.engine import Engine
from buddycloud.xmpp.presence import OnlineUsers


class StanzaSink(Protocol):
    """Where the edge writes stanzas: the component's stream, or a fake one in tests."""

    def send(self, stanza: Element) -> None:
        """Send one stanza element (top-level tag without namespace: the stream's)."""

    def send_text(self, text: str) -> None:
        """Send one stanza already serialised (notifications are serialised once)."""

    def send_many(self, texts: Sequence[str]) -> None:
        """Send serialised stanzas together: one write for a whole notification fan-out."""


EventRenderer = Callable[[Event], list[str]]
"""The serialised children of the messages that announce an event (notifications.py)."""


@dataclass(frozen=True, slots=True)
class Edge:
    """The collaborators handlers share, built once by the router."""

    engine: Engine
    service_jid: Jid
    sink: StanzaSink
    max_payload_bytes: int
    online: OnlineUsers
    # The largest stanza the XMPP server accepts from the component ([xmpp]
    # max_stanza_bytes); every reply and notification is made to fit.
    max_stanza_bytes: int
    # Replayed events (the inbox sync) look exactly like the live notifications.
    render_event: EventRenderer
    # Bare JIDs whose personal channel was checked since start (available presence creates
    # a local user's channel; presence is frequent, registration costs a transaction).
    channel_checked: set[Jid] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class IqRequest:
    """An IQ get/set addressed to the component.

    `payload` is the IQ's single child (`<pubsub/>`, `<query/>`), `requester` the sender's
    full JID as routed by the XMPP server (which authenticated it). `room` is how many
    bytes the result's child may take: the stanza size limit less the result's envelope.
    """

    edge: Edge
    requester: Jid
    payload: Element
    room: int

    @property
    def engine(self) -> Engine:
        return self.edge.engine

    @property
    def service(self) -> str:
        return str(self.edge.service_jid)


IqHandler = Callable[[IqRequest], Awaitable[Element | None]]
