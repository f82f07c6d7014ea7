"""Two domains' engines joined in-process, as federation joins them over XMPP.

`EngineLink` is montague.lit's `RemoteChannels` port: capulet.lit's engine, asked as
channels.montague.lit acting for the user, so that capulet.lit applies its trust check and
its permission tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    ChannelConfig,
    Item,
    Membership,
    NodeId,
    Page,
    PageRequest,
    RawPayload,
    Role,
    SubscriptionState,
    Thread,
)
from buddycloud.services.config import ConfigUpdate, NodeView
from buddycloud.services.engine import Engine

CAPULET_SERVICE = Jid.parse("channels.capulet.lit")
MONTAGUE_SERVICE = Jid.parse("channels.montague.lit")
JULIET = Jid.parse("juliet@capulet.lit")
ROMEO = Jid.parse("romeo@montague.lit")
BENVOLIO = Jid.parse("benvolio@montague.lit")
JULIETS_POSTS = NodeId.parse("/user/juliet@capulet.lit/posts")


class Directory:
    """Which server serves which domain: discovery's answer, fixed."""

    servers = {"capulet.lit": CAPULET_SERVICE, "montague.lit": MONTAGUE_SERVICE}

    async def is_channel_server(self, domain: str, sender: Jid) -> bool:
        return self.servers.get(domain) == sender


class EngineLink(Directory):
    """montague.lit's RemoteChannels: capulet.lit's engine, asked as channels.montague.lit."""

    def __init__(self, home: Engine, sender: Jid = MONTAGUE_SERVICE) -> None:
        self.home = home
        self.sender = sender
        self.calls = 0

    async def _actor(self, actor: Jid) -> Jid:
        self.calls += 1
        return await self.home.acting_for(self.sender, actor)

    async def get_items(self, actor: Jid, node: NodeId, page: PageRequest) -> Page[Item]:
        return await self.home.get_items(await self._actor(actor), node, page)

    async def get_item(self, actor: Jid, node: NodeId, item_id: str) -> Item:
        return await self.home.get_item(await self._actor(actor), node, item_id)

    async def publish(
        self, actor: Jid, node: NodeId, payload: EntryDraft | RawPayload, item_id: str | None
    ) -> str:
        item = await self.home.publish(await self._actor(actor), node, payload, item_id)
        return item.id

    async def retract(self, actor: Jid, node: NodeId, item_id: str, *, notify: bool) -> None:
        await self.home.retract(await self._actor(actor), node, item_id, notify=notify)

    async def subscribe(self, actor: Jid, node: NodeId) -> Membership:
        actor = await self._actor(actor)
        return await self.home.subscribe(actor, node, actor)

    async def unsubscribe(self, actor: Jid, node: NodeId) -> None:
        actor = await self._actor(actor)
        await self.home.unsubscribe(actor, node, actor)

    async def get_configuration(self, actor: Jid, node: NodeId) -> ChannelConfig:
        view = await self.home.get_node_view(await self._actor(actor), node)
        return view.channel.config

    async def get_replies(
        self, actor: Jid, node: NodeId, item_id: str, page: PageRequest
    ) -> Page[Item]:
        return await self.home.get_replies(await self._actor(actor), node, item_id, page)

    async def get_thread(
        self, actor: Jid, node: NodeId, item_id: str, page: PageRequest
    ) -> Page[Item]:
        return await self.home.get_thread(await self._actor(actor), node, item_id, page)

    async def get_threads(self, actor: Jid, node: NodeId, page: PageRequest) -> Page[Thread]:
        return await self.home.get_threads(await self._actor(actor), node, page)

    async def get_node_view(self, actor: Jid, node: NodeId) -> NodeView:
        return await self.home.get_node_view(await self._actor(actor), node)

    async def configure(self, actor: Jid, node: NodeId, update: ConfigUpdate) -> NodeView:
        return await self.home.configure(await self._actor(actor), node, update)

    async def delete_node(self, actor: Jid, node: NodeId) -> None:
        await self.home.delete_node(await self._actor(actor), node)

    async def node_subscriptions(
        self, actor: Jid, node: NodeId, page: PageRequest
    ) -> Page[Membership]:
        return await self.home.node_subscriptions(await self._actor(actor), node, page)

    async def node_affiliations(
        self, actor: Jid, node: NodeId, page: PageRequest
    ) -> Page[Membership]:
        return await self.home.node_affiliations(await self._actor(actor), node, page)

    async def set_subscriptions(
        self, actor: Jid, node: NodeId, changes: Sequence[tuple[Jid, SubscriptionState]]
    ) -> list[Membership]:
        return await self.home.set_subscriptions(await self._actor(actor), node, changes)

    async def set_roles(
        self, actor: Jid, node: NodeId, changes: Sequence[tuple[Jid, Role]]
    ) -> list[Membership]:
        return await self.home.set_roles(await self._actor(actor), node, changes)
