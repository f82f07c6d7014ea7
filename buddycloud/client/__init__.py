"""A Python client of Buddycloud's REST API and live websocket (docs/client-python.md).

    async with Client("http://127.0.0.1:8080", username="juliet", password="...") as client:
        post = await client.publish("juliet@capulet.lit", "O Romeo, Romeo!")
        async with client.events() as events:
            async for event in events:
                ...

It speaks HTTP and JSON only, and imports nothing of the server.
"""

from __future__ import annotations

from buddycloud.client.errors import (
    ApiError,
    BadRequest,
    BuddycloudError,
    Conflict,
    Forbidden,
    LiveClosed,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    UnexpectedAnswer,
)
from buddycloud.client.live import LiveEvents
from buddycloud.client.models import (
    AccessModel,
    AffiliationEvent,
    ChannelMetadata,
    ConfigurationEvent,
    Event,
    Follow,
    Follower,
    Following,
    FollowRequestEvent,
    FoundChannel,
    FoundPost,
    Media,
    NodeDeletedEvent,
    Page,
    Post,
    PostEvent,
    Resync,
    RetractEvent,
    Role,
    SearchResults,
    Subscription,
    SubscriptionEvent,
    SyncSummary,
    Thread,
    Token,
    UnknownEvent,
)
from buddycloud.client.rest import Client

__all__ = [
    "AccessModel",
    "AffiliationEvent",
    "ApiError",
    "BadRequest",
    "BuddycloudError",
    "ChannelMetadata",
    "Client",
    "ConfigurationEvent",
    "Conflict",
    "Event",
    "Follow",
    "FollowRequestEvent",
    "Follower",
    "Following",
    "Forbidden",
    "FoundChannel",
    "FoundPost",
    "LiveClosed",
    "LiveEvents",
    "Media",
    "NodeDeletedEvent",
    "NotFound",
    "Page",
    "Post",
    "PostEvent",
    "Resync",
    "RetractEvent",
    "Role",
    "SearchResults",
    "ServerError",
    "Subscription",
    "SubscriptionEvent",
    "SyncSummary",
    "Thread",
    "Token",
    "TooManyRequests",
    "Unauthorized",
    "UnexpectedAnswer",
    "UnknownEvent",
]
