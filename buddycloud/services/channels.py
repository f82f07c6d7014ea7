"""Channels and nodes: registration, creation, configuration, deletion (ProtoXEP 3-4)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from buddycloud.domain.errors import (
    AnonymousReadOnly,
    Forbidden,
    InvalidConfiguration,
    NodeExists,
    NodeNotFound,
)
from buddycloud.domain.events import ConfigurationChanged, NodeDeleted
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    NODE_PAYLOAD_TYPES,
    NS_ATOM,
    SINGLE_ITEM_NODES,
    AccessModel,
    Channel,
    ChannelConfig,
    ChannelType,
    Membership,
    Node,
    NodeId,
    Page,
    PageRequest,
    Role,
    SubscriptionState,
)
from buddycloud.domain.permissions import Operation, public_models
from buddycloud.services.base import EngineBase, role_of, search_words
from buddycloud.services.config import ConfigUpdate, NodeView

log = logging.getLogger(__name__)

TOP_WINDOW = timedelta(days=7)  # how far back the top channels are counted

MAX_TITLE = 128
MAX_DESCRIPTION = 1024
MAX_PAYLOAD_TYPE = 256
MAX_ITEMS_LIMIT = 1_000_000
# Each configuration field needs one of these (table 6 and docs/permissions.md).
CONFIGURE_OPERATIONS = (
    Operation.CONFIGURE_TITLE,
    Operation.CONFIGURE_DESCRIPTION,
    Operation.CONFIGURE_DEFAULT_ROLE,
    Operation.CONFIGURE_OWNER_ONLY,
)
# Roles a new follower may be given by default. Higher roles are granted one by one.
DEFAULT_ROLE_CHOICES = frozenset({Role.MEMBER, Role.PUBLISHER})


class ChannelOps(EngineBase):
    # --- creation -----------------------------------------------------------------------

    def _new_node(
        self, channel: Jid, name: str, now: datetime, update: ConfigUpdate | None
    ) -> Node:
        payload_type = NODE_PAYLOAD_TYPES.get(name, NS_ATOM)
        max_items: int | None = 1 if name in SINGLE_ITEM_NODES else None
        if update is not None:
            if update.payload_type is not None:
                payload_type = _checked_payload_type(update.payload_type)
            if update.max_items is not None:
                max_items = _checked_max_items(update.max_items)
        return Node(NodeId(channel, name), payload_type, max_items, now)

    def _new_config(
        self,
        channel: Jid,
        creator: Jid,
        channel_type: ChannelType,
        now: datetime,
        update: ConfigUpdate | None,
    ) -> ChannelConfig:
        if channel_type is ChannelType.PERSONAL:
            access, role = self.config.personal_access_model, self.config.personal_default_role
        else:
            access, role = self.config.topic_access_model, self.config.topic_default_role
        config = ChannelConfig(
            title=f"{channel}'s Buddycloud channel",
            description="",
            access_model=access,
            default_role=role,
            creator=creator.bare,
            channel_type=channel_type,
            created=now,
            updated=now,
        )
        if update is None:
            return config
        if update.channel_type is not None and update.channel_type is not channel_type:
            raise InvalidConfiguration(
                "buddycloud#channel_type", f"this channel is a {channel_type.value} channel"
            )
        config = _apply_shared(config, update)
        if update.ephemeral:
            # Everyone who joins an ephemeral channel helps run it (ProtoXEP 1.3).
            config = replace(config, ephemeral=True, default_role=Role.MODERATOR)
        return config

    async def _create_channel(
        self,
        owner: Jid,
        channel: Jid,
        channel_type: ChannelType,
        node_names: tuple[str, ...],
        update: ConfigUpdate | None,
    ) -> Channel:
        now = self.clock.now()
        config = self._new_config(channel, owner, channel_type, now, update)
        created = Channel(channel, config)
        nodes = [
            self._new_node(channel, name, now, update if name != "posts" else None)
            for name in node_names
        ]
        owner_membership = Membership(
            channel, owner.bare, Role.OWNER, SubscriptionState.SUBSCRIBED, now
        )
        await self.storage.create_channel(created, nodes, owner_membership)
        log.info("channel %s created (%s, owner %s)", channel, channel_type.value, owner.bare)
        return created

    async def register(self, requester: Jid) -> Channel:
        """Create the requester's personal channel, or add the well-known nodes it lacks.

        ProtoXEP 3: registering again is harmless and picks up nodes added since.

        Raises:
            NotLocalUser: the requester is not a user of this server's domain.
        """
        user = requester.bare
        self._require_local_user(user)
        existing = await self.storage.find_channel(user)
        if existing is None:
            try:
                return await self._create_channel(
                    user, user, ChannelType.PERSONAL, self.config.well_known_nodes, None
                )
            except NodeExists:
                existing = await self.storage.get_channel(user)  # a concurrent registration won
        have = {node.id.name for node in await self.storage.list_nodes(user)}
        missing = [name for name in self.config.well_known_nodes if name not in have]
        if missing:
            now = self.clock.now()
            try:
                await self.storage.add_nodes([self._new_node(user, n, now, None) for n in missing])
            except NodeExists:
                pass  # a concurrent registration added them
        return existing

    async def create_node(
        self, requester: Jid, node: NodeId, update: ConfigUpdate | None = None
    ) -> Node:
        """Create a node: a new topic or ephemeral channel, or a node of an existing channel.

        Raises:
            NotLocalUser: only local users create channels.
            NodeExists: the node exists already.
            Forbidden: the requester does not own the channel, or may not create it here.
        """
        requester = requester.bare
        self._require_local_user(requester)
        if not self.is_mine(node):
            # Another domain's channel may be cached here: never one to add nodes to.
            raise Forbidden(f"channels of {node.channel.domain} are not hosted here")
        channel = await self.storage.find_channel(node.channel)
        if channel is None:
            channel_type = self._type_for_new_channel(requester, node.channel, update)
            names = ("posts",) if node.name == "posts" else ("posts", node.name)
            await self._create_channel(requester, node.channel, channel_type, names, update)
            return await self.storage.get_node(node)
        membership = await self.storage.find_membership(node.channel, requester)
        if membership is None or membership.role is not Role.OWNER:
            if await self.storage.find_node(node) is not None:
                raise NodeExists(str(node))
            raise Forbidden("only the owner may add nodes to a channel")
        if update is not None and update.ephemeral not in (None, channel.config.ephemeral):
            # Channel-wide settings are fixed when the channel is created.
            raise InvalidConfiguration("buddycloud#ephemeral", "set only at creation")
        new = self._new_node(node.channel, node.name, self.clock.now(), update)
        await self.storage.add_nodes([new])
        return new

    def _type_for_new_channel(
        self, requester: Jid, channel: Jid, update: ConfigUpdate | None
    ) -> ChannelType:
        if self.config.topics_domain and channel.domain == self.config.topics_domain:
            return ChannelType.TOPIC
        if channel.domain == self.config.domain:
            if channel == requester:
                return ChannelType.PERSONAL
            if update is not None and update.ephemeral:
                return ChannelType.TOPIC
            raise Forbidden(f"{channel} is another user's channel")
        raise Forbidden(f"channels of {channel.domain} are not hosted here")

    # --- reading configuration ------------------------------------------------------------

    async def get_node_view(self, requester: Jid, node: NodeId) -> NodeView:
        """A node and its channel's metadata (table 5: readable by everyone).

        Raises:
            NodeNotFound
        """
        remote = self._remote_for(requester.bare, node)
        if remote is not None:
            return await remote.get_node_view(requester.bare, node)
        context = await self._context(requester, node)
        self._require(Operation.READ_METADATA, requester, context)
        followers = await self.storage.list_memberships(
            node.channel, PageRequest(max=0), states=frozenset({SubscriptionState.SUBSCRIBED})
        )
        return NodeView(context.channel, context.node, followers.count)

    async def list_channels(self, requester: Jid, page: PageRequest) -> Page[Channel]:
        """Every advertised channel of this server; names, titles and descriptions are
        public. A channel configured not to be advertised is reached by its name only."""
        return await self.storage.list_channels(page, advertised_only=True)

    async def search_channels(
        self, requester: Jid, *, words: Sequence[str], page: PageRequest, offset: int = 0
    ) -> Page[Channel]:
        """Advertised channels whose title or description holds every word, by JID; names,
        titles and descriptions are public (table 5), as in `list_channels`. `offset`
        skips that many results before the page.

        Raises:
            BadRequest: no words, or too many.
            InvalidPaging: a negative offset.
        """
        cleaned = search_words(words, required=True)
        return await self.storage.search_channels(cleaned, page, offset=offset)

    async def top_channels(
        self, requester: Jid, *, by: Literal["followers", "posts"], limit: int = 10
    ) -> list[Channel]:
        """The channels with most new followers, or most new posts, in the last seven days,
        among those the requester may read without following (reference op 6:
        `/top-followed-nodes`, `/top-published-nodes`)."""
        models = public_models(requester_is_local=self.is_local_user(requester.bare))
        since = self.clock.now() - TOP_WINDOW
        ranked = await self.storage.top_channels(by=by, since=since, models=models, limit=limit)
        return [channel for channel, _ in ranked]

    async def list_nodes(self, requester: Jid, channel: Jid) -> list[Node]:
        """Raises ChannelNotFound."""
        await self.storage.get_channel(channel)
        return await self.storage.list_nodes(channel)

    # --- configuration ----------------------------------------------------------------------

    async def configure(self, requester: Jid, node: NodeId, update: ConfigUpdate) -> NodeView:
        """Change a channel's configuration (shared by all its nodes) and this node's own.

        Each field needs its own permission (table 6 and docs/permissions.md); a request,
        even one that changes nothing, comes only from someone who may change some field
        (XEP-0060 §8.2.3.2): every change is announced to the channel's followers.

        Raises:
            NodeNotFound, Forbidden, AnonymousReadOnly, InvalidConfiguration
        """
        remote = self._remote_for(requester.bare, node)
        if remote is not None:
            return await remote.configure(requester.bare, node, update)
        context = await self._context(requester, node)
        if not any(self._may(op, requester, context) for op in CONFIGURE_OPERATIONS):
            if self.is_anonymous(requester):
                raise AnonymousReadOnly("configure a channel")
            role = role_of(context.membership).value
            raise Forbidden(f"role {role} may not configure this channel")
        channel = context.channel
        old = channel.config
        checks = [
            (update.title, old.title, Operation.CONFIGURE_TITLE),
            (update.description, old.description, Operation.CONFIGURE_DESCRIPTION),
            (update.default_role, old.default_role, Operation.CONFIGURE_DEFAULT_ROLE),
            (update.access_model, old.access_model, Operation.CONFIGURE_OWNER_ONLY),
            (update.advertised, old.advertised, Operation.CONFIGURE_OWNER_ONLY),
            (update.payload_type, context.node.payload_type, Operation.CONFIGURE_OWNER_ONLY),
            (update.max_items, context.node.max_items, Operation.CONFIGURE_OWNER_ONLY),
        ]
        for new_value, old_value, operation in checks:
            if new_value is not None and new_value != old_value:
                self._require(operation, requester, context)
        if update.channel_type is not None and update.channel_type is not old.channel_type:
            raise InvalidConfiguration("buddycloud#channel_type", "set only at creation")
        if update.ephemeral is not None and update.ephemeral != old.ephemeral:
            raise InvalidConfiguration("buddycloud#ephemeral", "set only at creation")
        if old.ephemeral and update.default_role not in (None, old.default_role):
            raise InvalidConfiguration(
                "buddycloud#default_affiliation", "every follower of an ephemeral channel moderates"
            )
        new_config = replace(_apply_shared(old, update), updated=self.clock.now())
        new_node = context.node
        if update.payload_type is not None or update.max_items is not None:
            new_node = replace(
                new_node,
                payload_type=_checked_payload_type(update.payload_type)
                if update.payload_type is not None
                else new_node.payload_type,
                max_items=_checked_max_items(update.max_items)
                if update.max_items is not None
                else new_node.max_items,
            )
        await self.storage.update_channel_config(channel.jid, new_config)
        if new_node != context.node:
            await self.storage.update_node(new_node)
        updated = Channel(channel.jid, new_config)
        nodes = tuple(n.id for n in await self.storage.list_nodes(channel.jid))
        audience = await self._audience(updated, Operation.READ_METADATA)
        await self._emit(ConfigurationChanged(updated, old, nodes, audience))
        return await self.get_node_view(requester, node)

    # --- deletion -----------------------------------------------------------------------

    async def delete_node(self, requester: Jid, node: NodeId) -> None:
        """Delete a node; deleting `posts` deletes the whole channel (its metadata lives there).

        Raises:
            NodeNotFound, Forbidden
        """
        remote = self._remote_for(requester.bare, node)
        if remote is not None:
            await remote.delete_node(requester.bare, node)
            return
        context = await self._context(requester, node)
        self._require(Operation.DELETE_CHANNEL, requester, context)
        audience = await self._audience(context.channel, Operation.READ_METADATA)
        if node.name == "posts":
            nodes = [n.id for n in await self.storage.list_nodes(node.channel)]
            await self.storage.delete_channel(node.channel)
        else:
            nodes = [node]
            await self.storage.delete_node(node)
        for deleted in nodes:
            await self._emit(NodeDeleted(deleted, audience))

    async def _delete_channel(self, channel: Channel, audience: tuple[Jid, ...]) -> None:
        """Remove a whole channel and tell `audience` of each node; gone already is fine."""
        nodes = [n.id for n in await self.storage.list_nodes(channel.jid)]
        try:
            await self.storage.delete_channel(channel.jid)
        except NodeNotFound:
            return
        for deleted in nodes:
            await self._emit(NodeDeleted(deleted, audience))


def _apply_shared(config: ChannelConfig, update: ConfigUpdate) -> ChannelConfig:
    """Apply the channel-wide fields of `update`, validating each."""
    if update.title is not None:
        if len(update.title) > MAX_TITLE:
            raise InvalidConfiguration("pubsub#title", f"longer than {MAX_TITLE} characters")
        config = replace(config, title=update.title)
    if update.description is not None:
        if len(update.description) > MAX_DESCRIPTION:
            raise InvalidConfiguration(
                "pubsub#description", f"longer than {MAX_DESCRIPTION} characters"
            )
        config = replace(config, description=update.description)
    if update.access_model is not None:
        config = replace(config, access_model=AccessModel(update.access_model))
    if update.default_role is not None:
        if update.default_role not in DEFAULT_ROLE_CHOICES:
            raise InvalidConfiguration(
                "buddycloud#default_affiliation", "must be member or publisher"
            )
        config = replace(config, default_role=update.default_role)
    if update.advertised is not None:
        config = replace(config, advertised=update.advertised)
    return config


def _checked_payload_type(value: str) -> str:
    if not value or len(value) > MAX_PAYLOAD_TYPE or any(c.isspace() for c in value):
        raise InvalidConfiguration("pubsub#type", "must be a namespace URI without spaces")
    return value


def _checked_max_items(value: int) -> int | None:
    if value < 0 or value > MAX_ITEMS_LIMIT:
        raise InvalidConfiguration("pubsub#max_items", f"must be 0 to {MAX_ITEMS_LIMIT}")
    return value or None
