"""Other domains' channels, cached here for this server's own followers (issue 13).

This server is the home server of its users. When one of them follows a channel of another
domain, the follow goes to that channel's own server (the `RemoteChannels` port); once it
answers, the channel is kept here, in the same storage as this server's own channels:

- its configuration (never advertised here: the cache is not this server's directory), the
  node followed and the posts node, the owner, and the memberships of this server's users
  as the channel's server answered them (subscribed, or pending approval);
- on the first follow from this domain (no other local user was reading it), the
  `backfill` most recent items of the node, so the follower sees posts from before;
- then whatever the channel's server sends to this server's inbox (`receive_inbox`):
  items published and retracted, subscriptions and roles, configuration, deletion.
  Each event is applied only when the server that sent it is, exactly, the channel
  server of the node's domain (ProtoXEP 10.1), and then announced as a local event to
  this server's own users who may see it, so the XMPP notifier, the websocket and the
  long-poll deliver it from this server.

A local user whose cached membership is `subscribed` reads the channel from the cache; any
other user is forwarded to the channel's server, which decides. When the last local user
leaves, the cached channel goes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from buddycloud.domain.entries import tombstone
from buddycloud.domain.errors import ChannelError, NodeExists, NodeNotFound, UntrustedServer
from buddycloud.domain.events import (
    ConfigurationChanged,
    ItemPublished,
    ItemRetracted,
    NodeDeleted,
    RoleChanged,
    SubscriptionChanged,
)
from buddycloud.domain.ids import local_item_id
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    NODE_PAYLOAD_TYPES,
    NS_ATOM,
    SINGLE_ITEM_NODES,
    AccessModel,
    Channel,
    ChannelConfig,
    Entry,
    Item,
    Membership,
    Node,
    NodeId,
    PageRequest,
    RawPayload,
    Role,
    SubscriptionState,
)
from buddycloud.domain.permissions import Operation
from buddycloud.services.base import READ_BATCH, role_of, state_of
from buddycloud.services.channels import MAX_DESCRIPTION, MAX_TITLE, ChannelOps
from buddycloud.services.ports import RemoteChannels
from buddycloud.storage.base import NodeContext

log = logging.getLogger(__name__)

_MEMBER_STATES = frozenset(
    {SubscriptionState.SUBSCRIBED, SubscriptionState.PENDING, SubscriptionState.INVITED}
)
_SUBSCRIBED = frozenset({SubscriptionState.SUBSCRIBED})


# --- what the inbox carries, read by the edge into these values ----------------------------


@dataclass(frozen=True, slots=True)
class RemotePublished:
    """An item published, or updated, on a remote channel."""

    item: Item

    @property
    def node(self) -> NodeId:
        return self.item.node


@dataclass(frozen=True, slots=True)
class RemoteRetracted:
    node: NodeId
    item_id: str


@dataclass(frozen=True, slots=True)
class RemoteSubscription:
    """Someone's subscription changed; `role` when the event told the role too."""

    node: NodeId
    jid: Jid
    subscription: SubscriptionState
    role: Role | None = None
    invited_by: Jid | None = None


@dataclass(frozen=True, slots=True)
class RemoteRole:
    node: NodeId
    jid: Jid
    role: Role


@dataclass(frozen=True, slots=True)
class RemoteConfiguration:
    """The channel's configuration as the event shows it (title, description, access
    model and default role are taken; the rest stays as cached)."""

    node: NodeId
    config: ChannelConfig


@dataclass(frozen=True, slots=True)
class RemoteDeletion:
    node: NodeId


@dataclass(frozen=True, slots=True)
class UnreadableEvent:
    """An event the edge could not read; refused, with why."""

    reason: str


InboxEvent = (
    RemotePublished
    | RemoteRetracted
    | RemoteSubscription
    | RemoteRole
    | RemoteConfiguration
    | RemoteDeletion
    | UnreadableEvent
)


class RemoteCacheOps(ChannelOps):
    # --- who reads from the cache -----------------------------------------------------------

    async def _cached_context(self, requester: Jid, node: NodeId) -> NodeContext | None:
        """The cached node's context when `requester`, a local user, is a subscribed
        follower of that remote channel here; None otherwise (ask the channel's server)."""
        if self.remote is None or self.is_mine(node) or not self.is_local_user(requester):
            return None
        try:
            context = await self.storage.get_node_context(node, requester.bare)
        except NodeNotFound:
            return None
        membership = context.membership
        if (
            membership is None
            or membership.subscription is not SubscriptionState.SUBSCRIBED
            or membership.temporary
            or membership.role is Role.OUTCAST
        ):
            return None
        return context

    async def _reader_remote(self, requester: Jid, node: NodeId) -> RemoteChannels | None:
        """The port to forward a read to: None when the node is this server's own, or
        cached here for `requester`.

        Raises:
            NotLocalUser: someone else asks about another domain's channel.
        """
        remote = self._remote_for(requester, node)
        if remote is None or await self._cached_context(requester, node) is not None:
            return None
        return remote

    async def _read_context(self, requester: Jid, node: NodeId) -> NodeContext:
        """`_context` for reads: another domain's channel is read from the cache by its
        subscribed local followers."""
        if self.remote is not None and not self.is_mine(node):
            cached = await self._cached_context(requester, node)
            if cached is not None:
                return cached
        return await self._context(requester, node)

    # --- follows through this server --------------------------------------------------------

    async def _cache_follow(
        self, remote: RemoteChannels, user: Jid, node: NodeId, answered: Membership
    ) -> None:
        """Keep the remote channel `user` now follows, with their membership as the channel's
        server answered it; back-fill when they are its first local reader. The follow
        stands even when caching fails: reads are then forwarded."""
        try:
            await self._ensure_cached(remote, user, node)
        except ChannelError as exc:
            log.info("%s: not cached here (%s); its reads are forwarded", node, exc.message)
            return
        previous = await self.storage.find_membership(node.channel, user)
        membership = Membership(
            node.channel, user, answered.role, answered.subscription, self.clock.now()
        )
        await self.storage.put_membership(membership)
        log.info(
            "%s: %s follows it from here (%s)", node.channel, user, membership.subscription.value
        )
        await self._after_local_change(node, user, previous, membership)

    async def _ensure_cached(self, remote: RemoteChannels, user: Jid, node: NodeId) -> None:
        """The channel and the node cached, fetching the configuration if new.

        Raises:
            ChannelError: the channel's server did not give its configuration.
        """
        channel = await self.storage.find_channel(node.channel)
        now = self.clock.now()
        if channel is None:
            config = _as_seen_here(await remote.get_configuration(user, node))
            names = ("posts",) if node.name == "posts" else ("posts", node.name)
            nodes = [_cached_node(NodeId(node.channel, name), now) for name in names]
            owner = Membership(
                node.channel, config.creator, Role.OWNER, SubscriptionState.SUBSCRIBED, now
            )
            try:
                await self.storage.create_channel(Channel(node.channel, config), nodes, owner)
                log.info("%s: cached here for this server's followers", node.channel)
                return
            except NodeExists:
                pass  # a concurrent follow cached it
        if await self.storage.find_node(node) is None:
            try:
                await self.storage.add_nodes([_cached_node(node, now)])
            except NodeExists:
                pass

    async def _after_local_change(
        self, node: NodeId, user: Jid, previous: Membership | None, current: Membership | None
    ) -> None:
        """What a local user's new membership of a cached channel brings: a back-fill when
        they are its first local reader, the end of the cache when nobody is left."""
        now_subscribed = state_of(current) is SubscriptionState.SUBSCRIBED
        if now_subscribed and state_of(previous) is not SubscriptionState.SUBSCRIBED:
            others = await self._local_members(node.channel, _SUBSCRIBED, but=user)
            if not others:
                await self._backfill(user, node)
        elif not now_subscribed:
            await self._purge_if_unfollowed(node.channel)

    async def _backfill(self, user: Jid, node: NodeId) -> None:
        """Copy the node's most recent items into the cache, quietly (they are old news)."""
        remote = self.remote
        if remote is None or self.config.backfill <= 0:
            return
        cached = await self.storage.find_node(node)
        if cached is None:
            return
        try:
            page = await remote.get_items(user, node, PageRequest(max=self.config.backfill))
        except ChannelError as exc:
            log.info("%s: no back-fill (%s)", node, exc.message)
            return
        stored = 0
        for item in reversed(page.items[: self.config.backfill]):
            normalised = self._cacheable(item, node)
            if normalised is None:
                continue
            await self.storage.put_item(normalised, max_items=cached.max_items)
            stored += 1
        log.info("%s: back-filled %d items into the cache", node, stored)

    def _cacheable(self, item: Item, node: NodeId) -> Item | None:
        """`item` as the cache keeps it, or None (logged) when it cannot be kept."""
        if item.node != node:
            return None
        try:
            item_id = local_item_id(item.id)
            parent = local_item_id(item.in_reply_to) if item.in_reply_to else None
        except ChannelError as exc:
            log.warning("%s: not caching item %r: %s", node, item.id[:100], exc.message)
            return None
        size = _payload_size(item)
        if size > self.config.max_payload_bytes:
            log.warning(
                "%s: not caching item %s: %d bytes, more than max_payload_bytes",
                node,
                item_id,
                size,
            )
            return None
        return replace(item, id=item_id, in_reply_to=parent)

    async def _cache_unfollow(self, user: Jid, node: NodeId) -> None:
        """After the channel's server let `user` go: their cached membership goes, and the
        cached channel with the last local member."""
        if await self.storage.find_channel(node.channel) is None:
            return
        await self.storage.delete_membership(node.channel, user, at=self.clock.now())
        await self._purge_if_unfollowed(node.channel)

    async def _purge_if_unfollowed(self, channel: Jid) -> None:
        if await self._local_members(channel, _MEMBER_STATES):
            return
        try:
            await self.storage.delete_channel(channel)
        except NodeNotFound:
            return
        log.info("%s: no follower here any more; its cache is gone", channel)

    async def _local_members(
        self, channel: Jid, states: frozenset[SubscriptionState], *, but: Jid | None = None
    ) -> list[Jid]:
        """This server's users with a membership in `states` of a cached channel."""
        found: list[Jid] = []
        after: str | None = None
        while True:
            page = await self.storage.list_memberships(
                channel, PageRequest(max=READ_BATCH, after=after), states=states
            )
            found.extend(m.jid for m in page.items if self.is_local_user(m.jid) and m.jid != but)
            if len(page.items) < READ_BATCH or page.last is None:
                return found
            after = page.last

    # --- the inbox ----------------------------------------------------------------------------

    async def receive_inbox(self, sender: Jid, events: Sequence[InboxEvent]) -> int:
        """Apply the events another domain's channel server sent to this server's inbox,
        oldest first; how many were applied.

        An event is applied only when `sender` is, exactly, the channel server discovery
        names for its node's domain (ProtoXEP 10.1), never for this server's own domains;
        other events, and unreadable ones, are refused one by one with a warning naming
        the sender and why. An event about a channel nobody here follows is dropped.

        Raises:
            UntrustedServer: `sender` is the channel server of none of the domains its
                events are about (nothing was applied).
            Exception: what storage raises (the sender retries the whole batch; applying
                an event twice changes nothing more).
        """
        trusted: dict[str, bool] = {}
        applied = 0
        spoken_for = False
        refused_domains: list[str] = []
        for event in events:
            if isinstance(event, UnreadableEvent):
                log.warning("refused an inbox event from %s: %s", sender, event.reason)
                continue
            domain = event.node.channel.domain
            if domain not in trusted:
                trusted[domain] = await self._speaks_for(sender, domain)
            if not trusted[domain]:
                log.warning(
                    "refused an inbox event from %s about %s: not the channel server of %s",
                    sender,
                    event.node,
                    domain,
                )
                refused_domains.append(domain)
                continue
            spoken_for = True
            if await self._apply(sender, event):
                applied += 1
        if refused_domains and not spoken_for:
            raise UntrustedServer(
                f"{sender} is not the channel server of {', '.join(sorted(set(refused_domains)))}"
            )
        return applied

    async def _speaks_for(self, sender: Jid, domain: str) -> bool:
        return (
            self.remote is not None
            and domain not in (self.config.domain, self.config.topics_domain)
            and not sender.local
            and sender.is_bare
            and await self.remote.is_channel_server(domain, sender)
        )

    async def _apply(self, sender: Jid, event: InboxEvent) -> bool:
        """Apply one trusted event to the cache and announce it here; False when the
        channel is not cached (nobody here follows it) or the event was refused."""
        if isinstance(event, UnreadableEvent):
            return False
        channel = await self.storage.find_channel(event.node.channel)
        if channel is None:
            log.debug("%s: not cached here; an event from %s dropped", event.node, sender)
            return False
        match event:
            case RemotePublished(item=item):
                return await self._apply_item(sender, channel, item)
            case RemoteRetracted(node=node, item_id=item_id):
                return await self._apply_retraction(channel, node, item_id)
            case RemoteSubscription():
                await self._apply_subscription(channel, event)
                return True
            case RemoteRole(node=node, jid=jid, role=role):
                await self._apply_role_change(channel, node, jid, role)
                return True
            case RemoteConfiguration(node=node, config=config):
                await self._apply_configuration(channel, config)
                return True
            case RemoteDeletion(node=node):
                await self._apply_deletion(channel, node)
                return True
        return False

    def _local(self, jids: Iterable[Jid]) -> tuple[Jid, ...]:
        return tuple(jid for jid in jids if self.is_local_user(jid))

    async def _apply_item(self, sender: Jid, channel: Channel, item: Item) -> bool:
        node = await self.storage.find_node(item.node)
        if node is None:
            node = _cached_node(item.node, self.clock.now())
            try:
                await self.storage.add_nodes([node])
            except NodeExists:
                node = await self.storage.get_node(item.node)
        cacheable = self._cacheable(item, item.node)
        if cacheable is None:
            log.warning("refused an inbox item from %s on %s", sender, item.node)
            return False
        previous = await self.storage.find_item(item.node, cacheable.id)
        await self.storage.put_item(cacheable, max_items=node.max_items)
        audience = self._local(await self._audience(channel, Operation.READ_ITEMS))
        await self._emit(ItemPublished(node, cacheable, audience, is_update=previous is not None))
        return True

    async def _apply_retraction(self, channel: Channel, node_id: NodeId, item_id: str) -> bool:
        node = await self.storage.find_node(node_id)
        try:
            local_id = local_item_id(item_id)
        except ChannelError:
            return False
        item = await self.storage.find_item(node_id, local_id) if node is not None else None
        if node is None or item is None or item.deleted:
            return False
        dead = tombstone(item, self.clock.now())
        await self.storage.put_item(dead)
        audience = self._local(await self._audience(channel, Operation.READ_ITEMS))
        await self._emit(ItemRetracted(node, dead, audience))
        return True

    async def _apply_subscription(self, channel: Channel, event: RemoteSubscription) -> None:
        jid = event.jid.bare
        current = await self.storage.find_membership(channel.jid, jid)
        role = event.role if event.role is not None else role_of(current)
        if event.subscription is SubscriptionState.NONE and role is Role.NONE:
            membership = Membership(
                channel.jid, jid, Role.NONE, event.subscription, self.clock.now()
            )
            await self.storage.delete_membership(channel.jid, jid, at=membership.updated)
        else:
            membership = Membership(
                channel.jid,
                jid,
                role,
                event.subscription,
                self.clock.now(),
                invited_by=event.invited_by,
            )
            await self.storage.put_membership(membership)
        staff = await self._staff(channel.jid)
        if membership.subscription is SubscriptionState.SUBSCRIBED:
            followers = await self._audience(channel, Operation.READ_FOLLOWERS)
            audience = self._union(followers, staff, (jid,))
        else:
            audience = self._union(staff, (jid,))
        local = self._local(audience)
        if self.is_local_user(jid):
            # Back-filled (or purged) before the user is told: a follower let in reads the
            # channel's recent posts as soon as they hear of it.
            await self._after_local_change(event.node, jid, current, membership)
        await self._emit(
            SubscriptionChanged(channel, event.node, membership, local, event.role is not None)
        )

    async def _apply_role_change(
        self, channel: Channel, node: NodeId, jid: Jid, role: Role
    ) -> None:
        jid = jid.bare
        current = await self.storage.find_membership(channel.jid, jid)
        state = state_of(current)
        if role is Role.OUTCAST:
            state = SubscriptionState.NONE
        changed = Membership(channel.jid, jid, role, state, self.clock.now())
        if role is Role.NONE and state is SubscriptionState.NONE:
            await self.storage.delete_membership(channel.jid, jid, at=changed.updated)
        else:
            await self.storage.put_membership(changed)
        if role is Role.OUTCAST:
            audience = self._union(await self._staff(channel.jid), (jid,))
        else:
            audience = self._union(await self._audience(channel, Operation.READ_FOLLOWERS), (jid,))
        await self._emit(RoleChanged(channel, node, changed, self._local(audience)))
        if self.is_local_user(jid) and state is not state_of(current):
            await self._after_local_change(node, jid, current, changed)

    async def _apply_configuration(self, channel: Channel, config: ChannelConfig) -> None:
        old = channel.config
        new = _as_seen_here(
            replace(
                old,
                title=config.title,
                description=config.description,
                access_model=config.access_model,
                default_role=config.default_role,
                updated=self.clock.now(),
            )
        )
        await self.storage.update_channel_config(channel.jid, new)
        updated = Channel(channel.jid, new)
        nodes = tuple(n.id for n in await self.storage.list_nodes(channel.jid))
        audience = self._local(await self._audience(updated, Operation.READ_METADATA))
        await self._emit(ConfigurationChanged(updated, old, nodes, audience))

    async def _apply_deletion(self, channel: Channel, node: NodeId) -> None:
        audience = self._local(await self._audience(channel, Operation.READ_METADATA))
        if node.name == "posts":
            nodes = [n.id for n in await self.storage.list_nodes(channel.jid)]
            try:
                await self.storage.delete_channel(channel.jid)
            except NodeNotFound:
                return
        else:
            nodes = [node]
            try:
                await self.storage.delete_node(node)
            except NodeNotFound:
                return
        for deleted in nodes:
            await self._emit(NodeDeleted(deleted, audience))


def _as_seen_here(config: ChannelConfig) -> ChannelConfig:
    """A remote channel's configuration as the cache keeps it: never advertised here (the
    cache is not this server's directory), a `local` channel, open to its own domain
    only, is `authorize` for this server's users (reference 2.4), so that only those its
    server approved read it here, and its title and description are cut to what a channel
    of this server may hold."""
    access_model = config.access_model
    if access_model is AccessModel.LOCAL:
        access_model = AccessModel.AUTHORIZE
    return replace(
        config,
        title=config.title[:MAX_TITLE],
        description=config.description[:MAX_DESCRIPTION],
        advertised=False,
        access_model=access_model,
    )


def _payload_size(item: Item) -> int:
    """The bytes of an item's payload: its XML, or the text of its entry."""
    payload = item.payload
    if isinstance(payload, RawPayload):
        return len(payload.xml.encode())
    if isinstance(payload, Entry):
        parts = (payload.title, payload.content, *payload.extensions)
        return sum(len(part.encode()) for part in parts)
    return 0


def _cached_node(node: NodeId, now: datetime) -> Node:
    """A node of a remote channel as cached here: the well-known payload type of its name
    (Atom otherwise), one item for single-item nodes."""
    max_items = 1 if node.name in SINGLE_ITEM_NODES else None
    return Node(node, NODE_PAYLOAD_TYPES.get(node.name, NS_ATOM), max_items, now)
