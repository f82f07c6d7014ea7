"""What the server answers, as typed values, and the readers that check the JSON.

Every reader takes the parsed JSON of one answer and raises `UnexpectedAnswer` naming what
was not as the API describes (docs/http.md, docs/websocket.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from buddycloud.client.errors import UnexpectedAnswer

T = TypeVar("T")


class Role(StrEnum):
    """A user's role in a channel (ProtoXEP table 7; `publisher` is "follower+post",
    `member` "follower", `outcast` banned)."""

    OWNER = "owner"
    MODERATOR = "moderator"
    PUBLISHER = "publisher"
    MEMBER = "member"
    NONE = "none"
    OUTCAST = "outcast"


class Subscription(StrEnum):
    """Where a follow stands."""

    SUBSCRIBED = "subscribed"
    PENDING = "pending"
    INVITED = "invited"
    NONE = "none"


class AccessModel(StrEnum):
    """Who may read a channel (docs/permissions.md)."""

    OPEN = "open"
    AUTHORIZE = "authorize"
    WHITELIST = "whitelist"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token from `POST /api/auth/token`."""

    token: str
    token_type: str
    expires_in: float
    jid: str


@dataclass(frozen=True, slots=True)
class Media:
    id: str
    channel: str


@dataclass(frozen=True, slots=True)
class Post:
    """An entry (reference 9.1 "Entry JSON").

    Attributes:
        id: the item's id in its node.
        reply_to: the parent's id, for a reply.
        content: the text; None for another payload (then `payload` holds its XML).
        media: the media it names, or None.
        source: `<channel>/<node>`, in live events only.
    """

    id: str
    author: str
    published: datetime
    updated: datetime
    content: str | None
    media: tuple[Media, ...] | None = None
    reply_to: str | None = None
    payload: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list (XEP-0059): `first` and `last` are the cursors to pass as
    `before`/`after` for the pages beside it; `count` counts the whole list."""

    items: list[T]
    first: str | None
    last: str | None
    count: int


@dataclass(frozen=True, slots=True)
class Thread:
    """A post with its replies (`id` is the parent's)."""

    id: str
    updated: datetime
    posts: list[Post]


@dataclass(frozen=True, slots=True)
class ChannelMetadata:
    title: str | None
    description: str | None
    access_model: AccessModel
    creation_date: datetime | None
    channel_type: str
    default_affiliation: Role


@dataclass(frozen=True, slots=True)
class Follower:
    """A user's role in a channel."""

    jid: str
    role: Role


@dataclass(frozen=True, slots=True)
class Follow:
    """A user's follow of a channel, approved or not."""

    jid: str
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class Following:
    """A node the signed-in user follows (or asked to, or holds a role in): `state` is
    the role, or `pending`/`invited` while the follow is not accepted."""

    channel: str
    node: str
    state: Role | Subscription


@dataclass(frozen=True, slots=True)
class FoundPost:
    """A content search result."""

    id: str
    author: str
    content: str | None
    published: datetime
    updated: datetime
    channel: str
    node: str
    reply_to: str | None


@dataclass(frozen=True, slots=True)
class FoundChannel:
    """A metadata search result."""

    jid: str
    title: str | None
    description: str | None
    creation_date: datetime | None
    channel_type: str
    default_affiliation: Role


@dataclass(frozen=True, slots=True)
class SearchResults(Generic[T]):
    """`items` after skipping `index` results, of `count` in all."""

    items: list[T]
    index: int
    count: int


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """What is new in one node for `GET /api/sync?summary=true` (the user's own posts left
    out of the counts)."""

    mentions_count: int
    total_count: int
    last_post: datetime | None
    last_mention: datetime | None


# --- live events (docs/websocket.md) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostEvent:
    """A new post, or with `update` an edit of one."""

    cursor: int
    channel: str
    node: str
    update: bool
    post: Post


@dataclass(frozen=True, slots=True)
class RetractEvent:
    cursor: int
    channel: str
    node: str
    id: str


@dataclass(frozen=True, slots=True)
class SubscriptionEvent:
    cursor: int
    channel: str
    jid: str
    subscription: Subscription
    invited_by: str | None


@dataclass(frozen=True, slots=True)
class AffiliationEvent:
    cursor: int
    channel: str
    jid: str
    role: Role


@dataclass(frozen=True, slots=True)
class ConfigurationEvent:
    cursor: int
    channel: str
    nodes: list[str]
    metadata: ChannelMetadata


@dataclass(frozen=True, slots=True)
class NodeDeletedEvent:
    cursor: int
    channel: str
    node: str


@dataclass(frozen=True, slots=True)
class FollowRequestEvent:
    """Someone asks to follow a closed channel: approve with `Client.approve`."""

    cursor: int
    channel: str
    node: str
    jid: str


@dataclass(frozen=True, slots=True)
class Resync:
    """Events after the client's cursor are no longer kept (or it was not this server's):
    reload what is shown; every event after `cursor` follows."""

    cursor: int
    reason: str


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event type this client does not know yet, as the server sent it."""

    cursor: int
    type: str
    fields: dict[str, Any]


Event = (
    PostEvent
    | RetractEvent
    | SubscriptionEvent
    | AffiliationEvent
    | ConfigurationEvent
    | NodeDeletedEvent
    | FollowRequestEvent
    | Resync
    | UnknownEvent
)


# --- readers ---------------------------------------------------------------------------------


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise UnexpectedAnswer(f"{what} is not a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise UnexpectedAnswer(f"{what} is not a JSON array")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise UnexpectedAnswer(f"{key!r} is not a string in {_brief(data)}")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise UnexpectedAnswer(f"{key!r} is not a string in {_brief(data)}")
    return value


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnexpectedAnswer(f"{key!r} is not an integer in {_brief(data)}")
    return value


def _time(data: Mapping[str, Any], key: str) -> datetime:
    text = _str(data, key)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UnexpectedAnswer(f"{key!r} is not an ISO-8601 time: {text[:40]!r}") from None


def _opt_time(data: Mapping[str, Any], key: str) -> datetime | None:
    return _time(data, key) if data.get(key) is not None else None


def _enum(kind: type[T], value: Any, what: str) -> T:
    try:
        return kind(value)  # type: ignore[call-arg]
    except ValueError:
        raise UnexpectedAnswer(f"{what} {str(value)[:40]!r} is not known") from None


def _brief(data: Any) -> str:
    return repr(data)[:120]


def read_token(value: Any) -> Token:
    data = _object(value, "the token answer")
    expires_in = data.get("expires_in")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        raise UnexpectedAnswer("'expires_in' is not a number in the token answer")
    return Token(_str(data, "token"), _str(data, "token_type"), expires_in, _str(data, "jid"))


def read_post(value: Any) -> Post:
    data = _object(value, "an entry")
    media: tuple[Media, ...] | None = None
    if data.get("media") is not None:
        media = tuple(
            Media(_str(one, "id"), _str(one, "channel"))
            for one in (_object(raw, "a medium") for raw in _list(data["media"], "media"))
        )
    return Post(
        id=_str(data, "id"),
        author=_str(data, "author"),
        published=_time(data, "published"),
        updated=_time(data, "updated"),
        content=_opt_str(data, "content"),
        media=media,
        reply_to=_opt_str(data, "replyTo"),
        payload=_opt_str(data, "payload"),
        source=_opt_str(data, "source"),
    )


def read_posts(value: Any) -> list[Post]:
    return [read_post(raw) for raw in _list(value, "a page of posts")]


def read_thread(value: Any) -> Thread:
    data = _object(value, "a thread")
    return Thread(_str(data, "id"), _time(data, "updated"), read_posts(data.get("items")))


def read_metadata(value: Any) -> ChannelMetadata:
    data = _object(value, "the metadata")
    return ChannelMetadata(
        title=_opt_str(data, "title"),
        description=_opt_str(data, "description"),
        access_model=_enum(AccessModel, data.get("access_model"), "access model"),
        creation_date=_opt_time(data, "creation_date"),
        channel_type=_str(data, "channel_type"),
        default_affiliation=_enum(Role, data.get("default_affiliation"), "role"),
    )


def read_followers(value: Any) -> list[Follower]:
    data = _object(value, "the followers")
    return [Follower(jid, _enum(Role, role, "role")) for jid, role in data.items()]


def read_follow_list(value: Any) -> list[Follow]:
    follows = []
    for raw in _list(value, "the follows"):
        data = _object(raw, "a follow")
        subscription = _enum(Subscription, data.get("subscription"), "subscription")
        follows.append(Follow(_str(data, "jid"), subscription))
    return follows


def read_state(value: Any) -> Role | Subscription:
    """A role, or `pending`/`invited` (reference row 16)."""
    if value in (Subscription.PENDING, Subscription.INVITED):
        return Subscription(value)
    return _enum(Role, value, "role")


def read_following(value: Any) -> list[Following]:
    found = []
    for key, state in _object(value, "the followed channels").items():
        channel, _, node = key.partition("/")
        found.append(Following(channel, node, read_state(state)))
    return found


def read_found_post(value: Any) -> FoundPost:
    data = _object(value, "a search result")
    node = _str(data, "parent_fullid")
    return FoundPost(
        id=_str(data, "id"),
        author=_str(data, "author"),
        content=_opt_str(data, "content"),
        published=_time(data, "published"),
        updated=_time(data, "updated"),
        channel=_str(data, "parent_simpleid"),
        node=node.rsplit("/", 1)[-1],
        reply_to=_opt_str(data, "in_reply_to"),
    )


def read_found_channel(value: Any) -> FoundChannel:
    data = _object(value, "a search result")
    return FoundChannel(
        jid=_str(data, "jid"),
        title=_opt_str(data, "title"),
        description=_opt_str(data, "description"),
        creation_date=_opt_time(data, "creationDate"),
        channel_type=_str(data, "channelType"),
        default_affiliation=_enum(Role, data.get("defaultAffiliation"), "role"),
    )


def read_search(value: Any) -> tuple[list[Any], int, int]:
    """The items (unread), `index` and `count` of a search answer."""
    data = _object(value, "the search answer")
    rsm = _object(data.get("rsm"), "rsm")
    return _list(data.get("items"), "items"), _int(rsm, "index"), _int(rsm, "count")


def read_sync(value: Any) -> dict[str, list[Post]]:
    return {node: read_posts(posts) for node, posts in _object(value, "sync").items()}


def read_sync_summary(value: Any) -> dict[str, SyncSummary]:
    summaries = {}
    for node, raw in _object(value, "sync").items():
        data = _object(raw, "a summary")
        summaries[node] = SyncSummary(
            mentions_count=_int(data, "mentionsCount"),
            total_count=_int(data, "totalCount"),
            last_post=_opt_time(data, "lastPost"),
            last_mention=_opt_time(data, "lastMention"),
        )
    return summaries


def read_event(data: Mapping[str, Any]) -> Event:
    """A live event message (one with a `cursor`)."""
    cursor = _int(data, "cursor")
    kind = _str(data, "type")
    match kind:
        case "post":
            update = data.get("update") is True
            post = read_post(data.get("entry"))
            return PostEvent(cursor, _str(data, "channel"), _str(data, "node"), update, post)
        case "retract":
            return RetractEvent(cursor, _str(data, "channel"), _str(data, "node"), _str(data, "id"))
        case "subscription":
            return SubscriptionEvent(
                cursor,
                _str(data, "channel"),
                _str(data, "jid"),
                _enum(Subscription, data.get("subscription"), "subscription"),
                _opt_str(data, "invitedBy"),
            )
        case "affiliation":
            role = _enum(Role, data.get("affiliation"), "role")
            return AffiliationEvent(cursor, _str(data, "channel"), _str(data, "jid"), role)
        case "configuration":
            nodes = [str(node) for node in _list(data.get("nodes"), "nodes")]
            metadata = read_metadata(data.get("metadata"))
            return ConfigurationEvent(cursor, _str(data, "channel"), nodes, metadata)
        case "node-deleted":
            return NodeDeletedEvent(cursor, _str(data, "channel"), _str(data, "node"))
        case "follow-request":
            return FollowRequestEvent(
                cursor, _str(data, "channel"), _str(data, "node"), _str(data, "jid")
            )
    return UnknownEvent(cursor, kind, dict(data))
