"""The engine's settings and the request/answer types the edges exchange with it."""

from __future__ import annotations

from dataclasses import dataclass

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    WELL_KNOWN_NODES,
    AccessModel,
    Channel,
    ChannelType,
    Node,
    Role,
)

__all__ = ["ConfigUpdate", "EngineConfig", "EntryDraft", "NodeView"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How this server runs its channels."""

    domain: str
    service_jid: Jid
    topics_domain: str | None = None
    well_known_nodes: tuple[str, ...] = WELL_KNOWN_NODES
    max_payload_bytes: int = 65536
    personal_access_model: AccessModel = AccessModel.OPEN
    personal_default_role: Role = Role.PUBLISHER
    topic_access_model: AccessModel = AccessModel.OPEN
    topic_default_role: Role = Role.MEMBER
    anonymous_domains: frozenset[str] = frozenset()
    # How many recent items a first follow of another domain's channel copies here.
    backfill: int = 50

    def is_anonymous(self, jid: Jid) -> bool:
        """Whether `jid` is an anonymous guest: a user of one of `anonymous_domains`, or of
        any domain whose first label is `anon` (the convention of reference section 5.3,
        which also covers other servers' guests)."""
        domain = jid.domain
        return domain in self.anonymous_domains or domain.startswith("anon.")


@dataclass(frozen=True, slots=True)
class ConfigUpdate:
    """A configuration change; None leaves a field as it is."""

    title: str | None = None
    description: str | None = None
    access_model: AccessModel | None = None
    default_role: Role | None = None
    payload_type: str | None = None
    max_items: int | None = None
    ephemeral: bool | None = None
    channel_type: ChannelType | None = None
    advertised: bool | None = None


@dataclass(frozen=True, slots=True)
class NodeView:
    """A node with its channel's configuration, as configure-get and disco#info show it."""

    channel: Channel
    node: Node
    num_subscribers: int
