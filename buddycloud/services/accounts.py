"""Accounts: what happens to a user's channels, posts and follows when they leave.

Registration itself (creating the personal channel) lives in `channels`; this is its
reverse (reference op 9, `jabber:iq:register` with `<remove/>`).
"""

from __future__ import annotations

from buddycloud.domain.errors import NodeNotFound
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    Item,
    NodeId,
    Role,
)
from buddycloud.domain.permissions import Operation
from buddycloud.services.base import READ_BATCH
from buddycloud.services.items import ItemOps


class AccountOps(ItemOps):
    async def unregister(self, requester: Jid) -> None:
        """Remove a user of this server's domain and what they made (reference op 9).

        In this order, each announced as if done one by one:
        1. their posts in channels they do not own become tombstones (retract
           notifications to those channels' readers);
        2. channels they own are deleted (delete notifications to their followers);
           an ephemeral channel is left instead, and goes when nobody is left in it;
        3. their other follows, pending requests and invitations end (subscription
           notifications as for unsubscribing).
        Bans stay: a ban is the channel's decision, not the user's data, and would
        otherwise be lifted by unregistering and registering again. Harmless when repeated.

        Raises:
            NotLocalUser: the requester is not a user of this server's domain.
        """
        user = requester.bare
        self._require_local_user(user)
        memberships = await self._all_memberships(user)
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

    async def _retract_authored(self, user: Jid, skip: set[Jid]) -> None:
        after: tuple[NodeId, str] | None = None
        while True:
            batch = await self.storage.list_items_by_author(user, after=after, limit=READ_BATCH)
            for item in batch:
                if item.node.channel not in skip:
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
