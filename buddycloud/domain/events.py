"""Domain events: one for every change, delivered to listeners through the notifier.

Each event names the channel and its `audience`: the followers allowed to see it, computed
once by the engine so that listeners never re-derive permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import Channel, ChannelConfig, Item, Membership, Node, NodeId


@dataclass(frozen=True, slots=True)
class ItemPublished:
    node: Node
    item: Item
    audience: tuple[Jid, ...]
    is_update: bool = False


@dataclass(frozen=True, slots=True)
class ItemRetracted:
    node: Node
    tombstone: Item
    audience: tuple[Jid, ...]
    notify: bool = True


@dataclass(frozen=True, slots=True)
class SubscriptionChanged:
    """A follower's subscription to the channel changed.

    `node` is the node the request named (the channel's posts node when none did): the
    membership holds for every node, the notification names the one the user asked about.
    With `with_role`, the same notification also tells the follower's role, as the original
    servers did when a subscription came with a role or ended (reference section 4).
    """

    channel: Channel
    node: NodeId
    membership: Membership
    audience: tuple[Jid, ...]
    with_role: bool = False


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """A follower's role changed and their subscription did not (else: `SubscriptionChanged`
    with `with_role`). `node` as in `SubscriptionChanged`."""

    channel: Channel
    node: NodeId
    membership: Membership
    audience: tuple[Jid, ...]


@dataclass(frozen=True, slots=True)
class ConfigurationChanged:
    channel: Channel
    previous: ChannelConfig
    nodes: tuple[NodeId, ...]
    audience: tuple[Jid, ...]


@dataclass(frozen=True, slots=True)
class NodeDeleted:
    node: NodeId
    audience: tuple[Jid, ...]


@dataclass(frozen=True, slots=True)
class AuthorizationRequested:
    """A follow request waits for approval; `audience` are the owner and moderators."""

    channel: Channel
    node: NodeId
    subscriber: Jid
    audience: tuple[Jid, ...]


Event = (
    ItemPublished
    | ItemRetracted
    | SubscriptionChanged
    | RoleChanged
    | ConfigurationChanged
    | NodeDeleted
    | AuthorizationRequested
)


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """An event replayed from the archive (reference row 32), as it happened or, where
    the state kept holds less, as the change now stands: `id` is its place in the archive
    (an RSM cursor), `at` when it happened; the event's audience is the one asking."""

    id: str
    at: datetime
    event: Event
