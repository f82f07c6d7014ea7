"""Following channels: subscriptions, approvals, invitations and roles (ProtoXEP 5, 7, 8)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

from buddycloud.domain.errors import (
    BadRequest,
    Banned,
    ClosedNode,
    Forbidden,
    JidMismatch,
    NotSubscribed,
    OwnerRequired,
    OwnSubscription,
    Unsupported,
)
from buddycloud.domain.events import AuthorizationRequested, RoleChanged, SubscriptionChanged
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Channel,
    Membership,
    NodeId,
    NodeMembership,
    Page,
    PageRequest,
    Role,
    SubscriptionState,
)
from buddycloud.domain.permissions import Operation, check_invitation, check_role_change
from buddycloud.services.base import READ_BATCH, role_of, state_of
from buddycloud.services.remote import RemoteCacheOps
from buddycloud.storage.base import NodeContext

log = logging.getLogger(__name__)

_STAFF = frozenset({Role.OWNER, Role.MODERATOR})
# Fields of subscriptions-with-configuration filters (ProtoXEP 7.1), wire-neutral names.
FILTER_FIELDS = frozenset(
    {"title", "description", "access_model", "default_role", "channel_type", "creator"}
)


class FollowOps(RemoteCacheOps):
    async def subscribe(
        self, requester: Jid, node: NodeId, subscriber: Jid, *, temporary: bool = False
    ) -> Membership:
        """Follow a channel (all its nodes, ProtoXEP 5.4).

        Open channels (and `local` ones for their home domain) accept at once with the
        channel's default role; closed ones leave the request pending and ask the owner and
        moderators. Following again is harmless.

        A `temporary` subscription (reference row 29, `pubsub#expire=presence`) lasts while
        the user is online (`end_temporary_subscriptions`) and gives no role; only channels
        the user may read without following take one. Following for good replaces it.

        Anonymous users follow only temporarily (reference row 29).

        Raises:
            NodeNotFound, JidMismatch (subscriber is not the requester), Banned,
            ClosedNode (a temporary subscription to a channel closed to the user),
            AnonymousReadOnly (an anonymous user asking to follow for good)
        """
        requester = requester.bare
        if subscriber.bare != requester:
            raise JidMismatch(str(subscriber), "subscribe")
        remote = self._remote_for(requester, node)
        if remote is not None:
            if temporary:
                raise Unsupported(
                    "federation", "temporary subscriptions to other domains' channels"
                )
            answered = await remote.subscribe(requester, node)
            await self._cache_follow(remote, requester, node, answered)
            return answered
        context = await self._context(requester, node)
        channel, current = context.channel, context.membership
        role = role_of(current)
        if role is Role.OUTCAST:
            raise Banned("you are banned from this channel")
        if not temporary:
            self._require(Operation.FOLLOW, requester, context)
        if current is not None and current.subscription in (
            SubscriptionState.SUBSCRIBED,
            SubscriptionState.PENDING,
        ):
            if temporary or not current.temporary:
                return current
        now = self.clock.now()
        if temporary:
            if not self._may(Operation.READ_ITEMS, requester, replace(context, membership=None)):
                raise ClosedNode("temporary subscriptions are for channels open to you")
            visit = Membership(
                channel.jid, requester, role, SubscriptionState.SUBSCRIBED, now, temporary=True
            )
            await self.storage.put_membership(visit)
            await self._emit_subscription(channel, node, visit, previous=current)
            return visit
        if await self._accepts_at_once(requester, context):
            new_role = max(role, channel.config.default_role, key=lambda r: r.rank)
            membership = Membership(
                channel.jid, requester, new_role, SubscriptionState.SUBSCRIBED, now
            )
        else:
            membership = Membership(channel.jid, requester, role, SubscriptionState.PENDING, now)
        await self.storage.put_membership(membership)
        await self._emit_subscription(channel, node, membership, previous=current)
        if membership.subscription is SubscriptionState.PENDING:
            staff = await self._staff(channel.jid)
            await self._emit(AuthorizationRequested(channel, node, requester, staff))
        return membership

    async def _accepts_at_once(self, requester: Jid, context: NodeContext) -> bool:
        config = context.channel.config
        current = context.membership
        if role_of(current).rank >= Role.MEMBER.rank:
            return True  # already given a follower role: pre-approved
        if config.access_model is AccessModel.OPEN:
            return True
        if config.access_model is AccessModel.LOCAL and self._is_local_to(
            requester, context.channel
        ):
            return True
        if current is not None and current.invited_by is not None:
            # An invitation from the owner or a moderator is an approval in advance.
            inviter = await self.storage.find_membership(context.channel.jid, current.invited_by)
            return role_of(inviter) in _STAFF
        return False

    async def unsubscribe(self, requester: Jid, node: NodeId, subscriber: Jid) -> Membership | None:
        """Stop following. The owner cannot leave their own channel, except an ephemeral one,
        which disappears when its last follower leaves.

        Raises:
            NodeNotFound, JidMismatch (subscriber is not the requester), NotSubscribed,
            OwnerRequired
        """
        requester = requester.bare
        if subscriber.bare != requester:
            raise JidMismatch(str(subscriber), "unsubscribe")
        remote = self._remote_for(requester, node)
        if remote is not None:
            await remote.unsubscribe(requester, node)
            await self._cache_unfollow(requester, node)
            return None
        context = await self._context(requester, node)
        channel, current = context.channel, context.membership
        if current is None or current.subscription is SubscriptionState.NONE:
            raise NotSubscribed("you do not follow this channel")
        if current.role is Role.OWNER and not channel.config.ephemeral:
            raise OwnerRequired("the owner cannot unsubscribe from their own channel")
        return await self._leave(channel, current, node)

    async def end_temporary_subscriptions(self, user: Jid) -> None:
        """The user went offline: their temporary subscriptions end, as if unsubscribed."""
        for membership, channel in await self._all_memberships(user.bare, temporary_only=True):
            await self._leave(channel, membership)

    async def _all_memberships(
        self, user: Jid, *, temporary_only: bool = False
    ) -> list[tuple[Membership, Channel]]:
        """Every membership of one user (or only the temporary ones), read in batches."""
        found: list[tuple[Membership, Channel]] = []
        after: str | None = None
        while True:
            page = await self.storage.list_user_memberships(
                user, PageRequest(max=READ_BATCH, after=after), temporary_only=temporary_only
            )
            found.extend(page.items)
            if len(page.items) < READ_BATCH or page.last is None:
                return found
            after = page.last

    async def forget_temporary_subscriptions(self) -> int:
        """At start nobody is online: every temporary subscription left over ends, quietly."""
        return await self.storage.delete_temporary_memberships()

    async def _leave(
        self, channel: Channel, current: Membership, node: NodeId | None = None
    ) -> Membership | None:
        """End a subscription (announced on `node`, else the posts node); an ephemeral
        channel goes with its last follower."""
        result = await self._drop_subscription(channel, current, node)
        if channel.config.ephemeral:
            remaining = await self.storage.list_memberships(
                channel.jid, PageRequest(max=0), states=frozenset({SubscriptionState.SUBSCRIBED})
            )
            if remaining.count == 0:
                await self._delete_channel(channel, ())
        return result

    async def _drop_subscription(
        self, channel: Channel, current: Membership, node: NodeId | None = None
    ) -> Membership | None:
        """End a subscription; the role goes back to none, except a ban, which stays.

        The end of a lasting membership is kept for the inbox sync (`archive`)."""
        role = Role.OUTCAST if current.role is Role.OUTCAST else Role.NONE
        ended = Membership(channel.jid, current.jid, role, SubscriptionState.NONE, self.clock.now())
        if role is Role.NONE:
            await self.storage.delete_membership(
                channel.jid, current.jid, at=None if current.temporary else ended.updated
            )
        else:
            await self.storage.put_membership(ended)
        await self._emit_subscription(channel, node or _posts(channel), ended, previous=current)
        return ended if role is not Role.NONE else None

    def _check_subscription_change(
        self,
        requester: Jid,
        context: NodeContext,
        target: Jid,
        current: Membership | None,
        state: SubscriptionState,
    ) -> bool:
        """Raise what forbids changing `target`'s subscription to `state`; False when the
        change is already in place (nothing to write)."""
        if target == requester:
            raise OwnSubscription()
        subscribed = current is not None and current.subscription is SubscriptionState.SUBSCRIBED
        if state is SubscriptionState.INVITED:
            self._require(Operation.INVITE, requester, context)
            check_invitation(
                target=target,
                target_role=role_of(current),
                target_is_anonymous=self.is_anonymous(target),
            )
            return not subscribed
        if state is SubscriptionState.SUBSCRIBED:
            self._require(Operation.APPROVE_PENDING, requester, context)
            if subscribed:
                return False
            if current is None or current.subscription is not SubscriptionState.PENDING:
                raise NotSubscribed(f"{target} has not asked to follow this channel")
            return True
        if state is SubscriptionState.NONE:
            self._require(Operation.APPROVE_PENDING, requester, context)
            if current is None or current.subscription is SubscriptionState.NONE:
                raise NotSubscribed(f"{target} does not follow this channel")
            if current.role is Role.OWNER:
                raise OwnerRequired("the owner cannot be removed from their channel")
            if role_of(context.membership) is Role.MODERATOR and current.role is Role.MODERATOR:
                raise Forbidden("moderators cannot remove other moderators")
            return True
        raise BadRequest(f"cannot set a subscription to {state.value}")

    async def set_subscription(
        self, requester: Jid, node: NodeId, target: Jid, state: SubscriptionState
    ) -> Membership:
        """Owner interface: approve (subscribed), deny or remove (none), or invite.

        Raises:
            NodeNotFound, Forbidden, OwnSubscription, NotSubscribed, OwnerRequired, BadRequest
        """
        [membership] = await self.set_subscriptions(requester, node, [(target, state)])
        return membership

    async def set_subscriptions(
        self,
        requester: Jid,
        node: NodeId,
        changes: Sequence[tuple[Jid, SubscriptionState]],
    ) -> list[Membership]:
        """Several owner-interface changes at once: all are checked before any is written,
        so a refused change leaves the others undone too.

        Raises:
            BadRequest: a JID appears twice; and what `set_subscription` raises.
        """
        requester = requester.bare
        remote = self._remote_for(requester, node)
        if remote is not None:
            _distinct_targets(changes)
            return await remote.set_subscriptions(requester, node, changes)
        context, targets, currents = await self._load_targets(requester, node, changes)
        channel = context.channel
        needed = [
            self._check_subscription_change(requester, context, target, current, state)
            for target, current, (_, state) in zip(targets, currents, changes, strict=True)
        ]
        results = []
        for target, current, (_, state), write in zip(
            targets, currents, changes, needed, strict=True
        ):
            if not write:
                assert current is not None
                results.append(current)
                continue
            now = self.clock.now()
            if state is SubscriptionState.INVITED:
                invited = Membership(
                    channel.jid,
                    target,
                    role_of(current),
                    SubscriptionState.INVITED,
                    now,
                    invited_by=requester,
                )
                await self.storage.put_membership(invited)
                await self._emit_subscription(channel, node, invited, previous=current)
                results.append(invited)
            elif state is SubscriptionState.SUBSCRIBED:
                assert current is not None
                role = max(current.role, channel.config.default_role, key=lambda r: r.rank)
                approved = Membership(channel.jid, target, role, SubscriptionState.SUBSCRIBED, now)
                await self.storage.put_membership(approved)
                await self._emit_subscription(channel, node, approved, previous=current)
                results.append(approved)
            else:
                assert current is not None
                ended = await self._drop_subscription(channel, current, node)
                results.append(
                    ended or replace(current, subscription=SubscriptionState.NONE, role=Role.NONE)
                )
        return results

    async def authorize(
        self, requester: Jid, node: NodeId, subscriber: Jid, *, allow: bool
    ) -> Membership:
        """Answer a follow request (the pubsub#subscribe_authorization form)."""
        state = SubscriptionState.SUBSCRIBED if allow else SubscriptionState.NONE
        return await self.set_subscription(requester, node, subscriber, state)

    async def set_role(self, requester: Jid, node: NodeId, target: Jid, role: Role) -> Membership:
        """Change a follower's role (table 7). Banning also ends their subscription.

        Raises:
            NodeNotFound, Forbidden, OwnAffiliation, OwnerRequired
        """
        [membership] = await self.set_roles(requester, node, [(target, role)])
        return membership

    async def set_roles(
        self, requester: Jid, node: NodeId, changes: Sequence[tuple[Jid, Role]]
    ) -> list[Membership]:
        """Several role changes at once: all are checked before any is written.

        Raises:
            BadRequest: a JID appears twice; and what `set_role` raises.
        """
        requester = requester.bare
        remote = self._remote_for(requester, node)
        if remote is not None:
            _distinct_targets(changes)
            return await remote.set_roles(requester, node, changes)
        context, targets, currents = await self._load_targets(requester, node, changes)
        channel = context.channel
        for target, current, (_, role) in zip(targets, currents, changes, strict=True):
            check_role_change(
                actor=requester,
                actor_role=role_of(context.membership),
                target=target,
                target_role=role_of(current),
                new_role=role,
                actor_is_anonymous=self.is_anonymous(requester),
                target_is_anonymous=self.is_anonymous(target),
            )
        return [
            await self._apply_role(channel, node, target, current, role)
            for target, current, (_, role) in zip(targets, currents, changes, strict=True)
        ]

    async def _load_targets(
        self, requester: Jid, node: NodeId, changes: Sequence[tuple[Jid, object]]
    ) -> tuple[NodeContext, list[Jid], list[Membership | None]]:
        """The requester's context and each distinct target with its current membership.

        Raises:
            BadRequest: a JID appears twice.
        """
        targets = _distinct_targets(changes)
        context = await self._context(requester, node)
        channel = context.channel.jid
        currents = [await self.storage.find_membership(channel, target) for target in targets]
        return context, targets, currents

    async def _apply_role(
        self, channel: Channel, node: NodeId, target: Jid, current: Membership | None, role: Role
    ) -> Membership:
        state = current.subscription if current is not None else SubscriptionState.NONE
        if role is Role.OUTCAST:
            state = SubscriptionState.NONE
        changed = Membership(
            channel.jid,
            target,
            role,
            state,
            self.clock.now(),
            invited_by=current.invited_by if current is not None else None,
        )
        if role is Role.NONE and state is SubscriptionState.NONE:
            temporary = current is not None and current.temporary
            await self.storage.delete_membership(
                channel.jid, target, at=None if temporary else changed.updated
            )
        else:
            await self.storage.put_membership(changed)
        if current is not None and current.subscription is not state:
            # A ban ended a subscription: one notification tells both.
            await self._emit_subscription(channel, node, changed, previous=current)
            return changed
        audience = self._union(await self._audience(channel, Operation.READ_FOLLOWERS), (target,))
        if role is Role.OUTCAST:
            # Table 5: the banned list is for the owner and moderators only.
            audience = self._union(await self._staff(channel.jid), (target,))
        await self._emit(RoleChanged(channel, node, changed, audience))
        return changed

    async def _emit_subscription(
        self,
        channel: Channel,
        node: NodeId,
        membership: Membership,
        *,
        previous: Membership | None,
    ) -> None:
        """Announce a subscription change on `node`, with the follower's role in the same
        notification when the change gave or took one, or ended the subscription
        (reference section 4, rows 25, 29 and 30).

        Who hears it (reference section 4): the follower concerned always; the owner and
        moderators every change; the other followers allowed to see the channel's followers
        only `subscribed` states, so never a request, an invitation, a removal or a ban
        (ProtoXEP 5.1)."""
        staff = await self._staff(channel.jid)
        if membership.subscription is SubscriptionState.SUBSCRIBED:
            audience = self._union(
                await self._audience(channel, Operation.READ_FOLLOWERS), staff, (membership.jid,)
            )
        else:
            audience = self._union(staff, (membership.jid,))
        ended = (
            membership.subscription is SubscriptionState.NONE
            and state_of(previous) is not SubscriptionState.NONE
        )
        with_role = ended or membership.role is not role_of(previous)
        log.info(
            "%s: the subscription of %s is now %s%s (role %s)",
            channel.jid,
            membership.jid,
            membership.subscription.value,
            ", temporary" if membership.temporary else "",
            membership.role.value,
        )
        await self._emit(SubscriptionChanged(channel, node, membership, audience, with_role))

    # --- lists ----------------------------------------------------------------------------

    async def node_subscriptions(
        self, requester: Jid, node: NodeId, page: PageRequest
    ) -> Page[Membership]:
        """Followers of a channel. Pending requests and invitations only for owner and moderators.

        Raises:
            NodeNotFound, ClosedNode, Banned, Forbidden
        """
        remote = self._remote_for(requester.bare, node)
        if remote is not None:
            return await remote.node_subscriptions(requester.bare, node, page)
        context = await self._context(requester, node)
        self._require(Operation.READ_FOLLOWERS, requester, context)
        if self._may(Operation.READ_PENDING, requester, context):
            states = frozenset(
                {SubscriptionState.SUBSCRIBED, SubscriptionState.PENDING, SubscriptionState.INVITED}
            )
        else:
            states = frozenset({SubscriptionState.SUBSCRIBED})
        return await self.storage.list_memberships(node.channel, page, states=states)

    async def node_affiliations(
        self, requester: Jid, node: NodeId, page: PageRequest
    ) -> Page[Membership]:
        """Roles in a channel; the banned list only for the owner and moderators."""
        remote = self._remote_for(requester.bare, node)
        if remote is not None:
            return await remote.node_affiliations(requester.bare, node, page)
        context = await self._context(requester, node)
        self._require(Operation.READ_FOLLOWERS, requester, context)
        roles = {Role.OWNER, Role.MODERATOR, Role.PUBLISHER, Role.MEMBER}
        if self._may(Operation.READ_BANNED, requester, context):
            roles.add(Role.OUTCAST)
        return await self.storage.list_memberships(node.channel, page, roles=frozenset(roles))

    async def user_subscriptions(
        self, requester: Jid, page: PageRequest, *, ephemeral: bool = False
    ) -> Page[NodeMembership]:
        """The requester's own follows, including pending requests and invitations, once for
        every node of each channel (ProtoXEP 5.4: following a channel follows all its
        nodes): those of lasting channels, or with `ephemeral` only those of ephemeral
        channels (as the original server listed them, reference row 23). Paged over the
        nodes; cursors are node ids.

        Raises:
            InvalidPaging: a cursor that is not a node id.
        """
        return await self.storage.list_user_node_memberships(
            requester.bare,
            page,
            states=frozenset(
                {SubscriptionState.SUBSCRIBED, SubscriptionState.PENDING, SubscriptionState.INVITED}
            ),
            ephemeral=ephemeral,
        )

    async def user_affiliations(
        self, requester: Jid, page: PageRequest, *, ephemeral: bool = False
    ) -> Page[NodeMembership]:
        """The requester's roles in every lasting channel where they have one, or with
        `ephemeral` in every ephemeral one (reference row 26), once for every node of each
        channel (ProtoXEP 5.4). Paged over the nodes; cursors are node ids.

        Raises:
            InvalidPaging: a cursor that is not a node id.
        """
        return await self.storage.list_user_node_memberships(
            requester.bare, page, ephemeral=ephemeral
        )

    async def subscriptions_with_configuration(
        self, requester: Jid, filters: Mapping[str, str], page: PageRequest
    ) -> Page[NodeMembership]:
        """ProtoXEP 7.1: the requester's subscriptions, one for every node of each followed
        channel with that node's configuration, keeping only channels whose configuration
        has every `filters` value.

        Raises:
            BadRequest: a filter names an unknown field.
            InvalidPaging: a cursor that is not a node id.
        """
        unknown = set(filters) - FILTER_FIELDS
        if unknown:
            raise BadRequest(f"unknown configuration field {sorted(unknown)[0]!r} in filter")
        return await self.storage.list_user_node_memberships(
            requester.bare,
            page,
            states=frozenset({SubscriptionState.SUBSCRIBED}),
            config=filters,
        )


def _posts(channel: Channel) -> NodeId:
    """The node a change is announced on when no request named one."""
    return NodeId(channel.jid, "posts")


def _distinct_targets(changes: Sequence[tuple[Jid, object]]) -> list[Jid]:
    targets = [target.bare for target, _ in changes]
    if len(set(targets)) != len(targets):
        raise BadRequest("each JID may appear only once in one request")
    return targets
