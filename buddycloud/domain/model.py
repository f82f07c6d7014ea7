"""The channel model's value types: channels, nodes, roles, memberships, items, pages."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, TypeVar

from buddycloud.domain.errors import (
    InvalidConfiguration,
    InvalidJid,
    InvalidNodeId,
    InvalidPaging,
)
from buddycloud.domain.jid import Jid

NS_ATOM = "http://www.w3.org/2005/Atom"

# ProtoXEP table 4: the nodes every personal channel has. The list is configurable.
WELL_KNOWN_NODES: tuple[str, ...] = (
    "posts",
    "status",
    "public-key",
    "geoloc",
    "geoloc-past",
    "geoloc-future",
)
# Nodes whose items are Atom entries (ProtoXEP table 4); other well-known nodes carry
# their own payloads (XEP-0080 geoloc, XEP-0189 keys).
ATOM_NODES = frozenset({"posts", "status"})
SINGLE_ITEM_NODES = frozenset({"geoloc", "status", "public-key"})
NODE_PAYLOAD_TYPES: dict[str, str] = {
    "posts": NS_ATOM,
    "status": NS_ATOM,
    "public-key": "urn:xmpp:tmp:pubkey",
    "geoloc": "http://jabber.org/protocol/geoloc",
    "geoloc-past": "http://jabber.org/protocol/geoloc",
    "geoloc-future": "http://jabber.org/protocol/geoloc",
}

MAX_NODE_NAME = 128
_NODE_NAME = re.compile(r"^[^/\s\x00-\x1f\x7f]{1,128}$")


class Role(enum.Enum):
    """ProtoXEP table 7, with the XEP-0060 affiliation names. Ordered low to high."""

    OUTCAST = "outcast"
    NONE = "none"
    MEMBER = "member"
    PUBLISHER = "publisher"
    MODERATOR = "moderator"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    @classmethod
    def parse(cls, raw: str) -> Role:
        aliases = {"follower": "member", "follower+post": "publisher", "banned": "outcast"}
        try:
            return cls(aliases.get(raw, raw))
        except ValueError:
            raise InvalidConfiguration("affiliation", f"unknown role {raw[:40]!r}") from None


_ROLE_RANK = {role: rank for rank, role in enumerate(Role)}


class AccessModel(enum.Enum):
    """ProtoXEP table 3."""

    OPEN = "open"
    AUTHORIZE = "authorize"
    LOCAL = "local"

    @classmethod
    def parse(cls, raw: str) -> AccessModel:
        if raw == "whitelist":
            return cls.AUTHORIZE
        try:
            return cls(raw)
        except ValueError:
            raise InvalidConfiguration(
                "pubsub#access_model", f"unknown access model {raw[:40]!r}"
            ) from None


class ChannelType(enum.Enum):
    """ProtoXEP table 2."""

    PERSONAL = "personal"
    TOPIC = "topic"


class SubscriptionState(enum.Enum):
    NONE = "none"
    PENDING = "pending"
    SUBSCRIBED = "subscribed"
    INVITED = "invited"

    @classmethod
    def parse(cls, raw: str) -> SubscriptionState:
        try:
            return cls(raw)
        except ValueError:
            raise InvalidConfiguration(
                "subscription", f"unknown subscription state {raw[:40]!r}"
            ) from None


@dataclass(frozen=True, slots=True, order=True)
class NodeId:
    """A node of a channel: `/user/<channel-jid>/<name>`."""

    channel: Jid
    name: str

    @classmethod
    def parse(cls, raw: str) -> NodeId:
        """Parse a node id.

        Raises:
            InvalidNodeId: the id does not follow /user/<bare-jid>/<name>.
        """
        if not isinstance(raw, str) or not raw.startswith("/user/"):
            raise InvalidNodeId(str(raw), "must start with /user/")
        rest = raw[len("/user/") :]
        jid_text, slash, name = rest.partition("/")
        if not slash:
            raise InvalidNodeId(raw, "missing node name after the channel JID")
        try:
            channel = Jid.parse(jid_text)
        except InvalidJid as exc:
            raise InvalidNodeId(raw, exc.message) from None
        if not channel.local or not channel.is_bare:
            raise InvalidNodeId(raw, "the channel must be a bare user@domain JID")
        check_node_name(name, raw)
        return cls(channel, name)

    def __str__(self) -> str:
        return f"/user/{self.channel}/{self.name}"


def check_node_name(name: str, raw: str | None = None) -> None:
    """Raises InvalidNodeId unless `name` is one path segment of printable characters."""
    if not _NODE_NAME.match(name):
        raise InvalidNodeId(
            raw if raw is not None else name,
            f"the node name must be 1-{MAX_NODE_NAME} characters without '/', spaces "
            "or control characters",
        )


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """The metadata of ProtoXEP table 1, shared by every node of a channel (section 5.4)."""

    title: str
    description: str
    access_model: AccessModel
    default_role: Role
    creator: Jid
    channel_type: ChannelType
    created: datetime
    updated: datetime
    ephemeral: bool = False
    # Listed in discovery (disco#items, the firehose, the top lists); reading and following
    # still follow the access model.
    advertised: bool = True


@dataclass(frozen=True, slots=True)
class Channel:
    jid: Jid
    config: ChannelConfig


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a channel. Payload type and item limit are per node."""

    id: NodeId
    payload_type: str
    max_items: int | None
    created: datetime

    @property
    def is_atom(self) -> bool:
        return self.payload_type == NS_ATOM


@dataclass(frozen=True, slots=True)
class Membership:
    """One follow and one role per user and channel (ProtoXEP 5.4)."""

    channel: Jid
    jid: Jid
    role: Role
    subscription: SubscriptionState
    updated: datetime
    invited_by: Jid | None = None
    # A temporary subscription (`pubsub#expire=presence`): it lasts while the user is online
    # and changes no role.
    temporary: bool = False


@dataclass(frozen=True, slots=True)
class NodeMembership:
    """A membership as it shows on one node of its channel: following a channel follows
    each of its nodes, with the channel's one subscription state and role (ProtoXEP 5.4)."""

    node: Node
    channel: Channel
    membership: Membership


@dataclass(frozen=True, slots=True)
class Entry:
    """An Atom entry as the server understands it (ProtoXEP 6.3).

    `extensions` keeps the entry's other child elements, serialised, in order; the engine
    never looks inside them.
    """

    id: str
    title: str
    content: str
    content_type: str
    author: Jid
    published: datetime
    updated: datetime
    verb: str = "post"
    object_type: str = "note"
    in_reply_to: str | None = None
    target: str | None = None
    rating: int | None = None
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RawPayload:
    """A payload the engine does not interpret: one serialised XML element."""

    xml: str
    namespace: str


Payload = Entry | RawPayload


@dataclass(frozen=True, slots=True)
class Item:
    """An item of a node. `updated` is the last activity, bumped by replies (6.3.2).

    A retracted item stays as a tombstone (`deleted`), so followers learn of the deletion.
    """

    node: NodeId
    id: str
    author: Jid
    published: datetime
    updated: datetime
    payload: Payload | None
    in_reply_to: str | None = None
    deleted: bool = False

    @property
    def entry(self) -> Entry | None:
        return self.payload if isinstance(self.payload, Entry) else None


@dataclass(frozen=True, slots=True)
class Thread:
    """A parent item and its replies, newest activity first."""

    node: NodeId
    id: str
    updated: datetime
    items: tuple[Item, ...]


T = TypeVar("T")

DEFAULT_PAGE = 50
MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class PageRequest:
    """XEP-0059 result set management: at most `max` results after or before a cursor."""

    max: int = DEFAULT_PAGE
    after: str | None = None
    before: str | None = None
    # XEP-0059 §2.5: an empty <before/> asks for the last page.
    last_page: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max, int) or self.max < 0:
            raise InvalidPaging("max must be a non-negative integer")
        if self.max > MAX_PAGE:
            object.__setattr__(self, "max", MAX_PAGE)
        if self.after is not None and self.before is not None:
            raise InvalidPaging("after and before cannot both be given")
        if self.after == "" or self.before == "":
            # XEP-0059: an empty <before/> asks for the last page (`last_page`); a cursor
            # itself is never empty.
            raise InvalidPaging("a paging cursor cannot be empty")

    @property
    def backwards(self) -> bool:
        """True when the client pages towards the start of the list (`before`): the
        results next to its cursor are the page's last ones."""
        return self.before is not None or self.last_page


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a result set, with XEP-0059 first, last and count.

    `cursor_of` gives the cursor naming an item (what `first` and `last` hold), so that
    a page can be ended early with `keep`.

    `complete` tells whether the page reaches the end of the result set in the direction
    it was read (XEP-0313 `<fin complete>`); None when the store did not look.
    """

    items: list[T]
    count: int
    first: str | None = None
    last: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    complete: bool | None = None
    cursor_of: Callable[[T], str] | None = field(default=None, compare=False, repr=False)

    def keep(self, kept: int, *, from_end: bool = False) -> Page[T]:
        """This page with only its first `kept` items (its last ones, `from_end`, for a
        page read backwards), `first` and `last` naming the new ends; `count` is still
        the size of the whole result set, so a client continues from the new ends. A page
        cut short no longer reaches the end it was read towards (`complete`).

        Raises:
            ValueError: the page has no `cursor_of` to name its new ends.
        """
        if kept >= len(self.items):
            return self
        if self.cursor_of is None:
            raise ValueError("a page without cursor_of cannot be cut")
        complete = None if self.complete is None else False
        items = self.items[len(self.items) - kept :] if from_end else self.items[:kept]
        if not items:
            return replace(self, items=[], first=None, last=None, complete=complete)
        return replace(
            self,
            items=items,
            first=self.cursor_of(items[0]),
            last=self.cursor_of(items[-1]),
            complete=complete,
        )


@dataclass(frozen=True, slots=True)
class Account:
    """A user of the built-in user database: a bare JID of this server's domain.

    `password_hash` is an argon2id hash in its encoded form, never the password.
    """

    jid: Jid
    password_hash: str
    email: str
    created: datetime
