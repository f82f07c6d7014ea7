"""Accounts: what happens to a user's channels, posts and follows when they leave.

Registration itself (creating the personal channel) lives in `channels`; this is its
reverse (reference op 9, `jabber:iq:register` with `<remove/>`).
"""

from __future__ import annotations

import logging

from buddycloud.domain.errors import ChannelError, NodeNotFound
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    Item,
    NodeId,
    Role,
)
from buddycloud.domain.permissions import Operation
from buddycloud.services.base import READ_BATCH
from buddycloud.services.items import ItemOps

log = logging.getLogger(__name__)


class AccountOps(ItemOps):
    async def unregister(self, requester: Jid) -> None:
        """Remove a user of this server's domain and what they made (reference op 9).

        In this order, each announced as if done one by one:
        1. their posts in channels they do not own become tombstones (retract
           notifications to those channels' readers);
        2. channels they own are deleted (delete notifications to their followers);
           an ephemeral channel is left instead, and goes when nobody is left in it;
        3. their other follows, pending requests and invitations end (subscription
           notifications as for unsubscribing); another domain's channel is told, and
           its cache here left as for unfollowing.
        Bans stay: a ban is the channel's decision, not the user's data, and would
        otherwise be lifted by unregistering and registering again. Harmless when repeated.

        Raises:
            NotLocalUser: the requester is not a user of this server's domain.
        """
        user = requester.bare
        self._require_local_user(user)
        memberships = []
        for membership, channel in await self._all_memberships(user):
            posts = NodeId(channel.jid, "posts")
            if self.is_mine(posts):
                memberships.append((membership, channel))
            else:
                await self._leave_remote(user, posts)
        owned = {
            channel.jid
            for membership, channel in memberships
            if membership.role is Role.OWNER and not channel.config.ephemeral
        }
        await self._retract_authored(user, owned)
        for membership, channel in memberships:
            # A membership with neither a follow nor a role is never stored: every other
            # one but a ban is something the user does here.
            if channel.jid in owned:
                audience = await self._audience(channel, Operation.READ_METADATA)
                await self._delete_channel(channel, audience)
            elif membership.role is not Role.OUTCAST:
                await self._leave(channel, membership)

    async def _leave_remote(self, user: Jid, posts: NodeId) -> None:
        """Stop following another domain's channel, cached here: its server is told
        (whatever it answers, the user is leaving), and the cache left."""
        if self.remote is not None:
            try:
                await self.remote.unsubscribe(user, posts)
            except ChannelError as exc:
                log.info("%s: %s left without its server's answer (%s)", posts, user, exc.message)
        await self._cache_unfollow(user, posts)

    async def _retract_authored(self, user: Jid, skip: set[Jid]) -> None:
        after: tuple[NodeId, str] | None = None
        while True:
            batch = await self.storage.list_items_by_author(user, after=after, limit=READ_BATCH)
            for item in batch:
                # Posts in other domains' channels are their servers' (the cache here
                # only mirrors them, and went with the follow).
                if item.node.channel not in skip and self.is_mine(item.node):
                    await self._retract_for_leaver(item)
            if len(batch) < READ_BATCH:
                return
            after = (batch[-1].node, batch[-1].id)

    async def _retract_for_leaver(self, item: Item) -> None:
        try:
            context = await self._context(item.author, item.node)
        except NodeNotFound:
            return  # the channel went away meanwhile, and the item with it
        await self._replace_with_tombstone(context, item, notify=True)
