"""Who may do what: ProtoXEP tables 5 (read) and 6 (write), and the role rules of table 7.

This module is the one place where permissions are decided. Each table is transcribed as
data; the functions only look it up. Columns map to roles as: producer = owner,
moderator = moderator, follower+post = publisher, follower = member,
anonymous = none (not following), banned = outcast.

One cell differs from table 5 as printed: banned users read neither the posts nor the
followers of an `open` channel (table 7, the seed's "cannot access the channel" and both
original servers agree; docs/permissions.md, "Banned users and open channels").

An anonymous requester (a guest session of a web client, reference section 5.3) is the
tables' "Anonymous" column whatever role it might hold: it may read what that column
allows, follow for the time it is online (a temporary subscription), and write nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from buddycloud.domain.errors import (
    AnonymousReadOnly,
    Banned,
    ClosedNode,
    Forbidden,
    OwnAffiliation,
    OwnerRequired,
    SubscriptionPending,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, Role, SubscriptionState


class Operation(enum.Enum):
    # Table 5, reads.
    READ_METADATA = "read channel name, title and description"
    READ_BANNED = "read the banned user list"
    READ_PENDING = "read the pending subscription list"
    READ_ITEMS = "read channel posts"
    READ_FOLLOWERS = "read followers, moderators and owner"
    # Table 6, writes.
    CONFIGURE_TITLE = "change the channel title"
    CONFIGURE_DESCRIPTION = "change the channel description"
    MANAGE_BANNED = "change the banned user list"
    APPROVE_PENDING = "approve pending subscriptions"
    PUBLISH = "create posts"
    RETRACT_ANY = "delete any post"
    RETRACT_OWN = "delete own posts"
    # Beyond the tables (documented in docs/permissions.md).
    CONFIGURE_DEFAULT_ROLE = "change the default role of new followers"  # table 1 note
    CONFIGURE_OWNER_ONLY = "change the access model and other settings"
    MANAGE_ROLES = "change followers' roles"
    INVITE = "invite someone to follow"
    DELETE_CHANNEL = "delete the channel or one of its nodes"
    CREATE_NODE = "add a node to the channel"
    FOLLOW = "follow a channel for good"


_ALL = frozenset(Role)
_STAFF = frozenset({Role.OWNER, Role.MODERATOR})
_FOLLOWERS = frozenset({Role.OWNER, Role.MODERATOR, Role.PUBLISHER, Role.MEMBER})
_POSTERS = frozenset({Role.OWNER, Role.MODERATOR, Role.PUBLISHER})
_OWNER = frozenset({Role.OWNER})
_NOT_BANNED = _ALL - {Role.OUTCAST}

# Table 5. Reads that depend on the access model map each model to the roles allowed.
# For `local`, the "anonymous" column is an outside user; a user of the channel's home
# domain who does not follow is treated as under `open` (table 3), see `may`.
# `open` leaves banned users out, where table 5 prints "yes": table 7's outcast "cannot
# view any posts or replies" wins (module docstring).
_BY_MODEL_FOLLOWERS_ONLY = {
    AccessModel.OPEN: _NOT_BANNED,
    AccessModel.AUTHORIZE: _FOLLOWERS,
    AccessModel.LOCAL: _FOLLOWERS,
}
READ_TABLE: dict[Operation, dict[AccessModel, frozenset[Role]]] = {
    Operation.READ_METADATA: dict.fromkeys(AccessModel, _ALL),
    Operation.READ_BANNED: dict.fromkeys(AccessModel, _STAFF),
    Operation.READ_PENDING: dict.fromkeys(AccessModel, _STAFF),
    Operation.READ_ITEMS: _BY_MODEL_FOLLOWERS_ONLY,
    Operation.READ_FOLLOWERS: _BY_MODEL_FOLLOWERS_ONLY,
}

# Table 6, and the rules this server adds for operations the tables do not list.
WRITE_TABLE: dict[Operation, frozenset[Role]] = {
    Operation.CONFIGURE_TITLE: _STAFF,
    Operation.CONFIGURE_DESCRIPTION: _STAFF,
    Operation.MANAGE_BANNED: _STAFF,
    Operation.APPROVE_PENDING: _STAFF,
    Operation.PUBLISH: _POSTERS,
    Operation.RETRACT_ANY: _STAFF,
    Operation.RETRACT_OWN: _POSTERS,
    Operation.CONFIGURE_DEFAULT_ROLE: _STAFF,
    Operation.CONFIGURE_OWNER_ONLY: _OWNER,
    Operation.MANAGE_ROLES: _STAFF,
    Operation.INVITE: _FOLLOWERS,
    Operation.DELETE_CHANNEL: _OWNER,
    Operation.CREATE_NODE: _OWNER,
    Operation.FOLLOW: _NOT_BANNED,
}


def may(
    operation: Operation,
    role: Role,
    access_model: AccessModel,
    *,
    requester_is_local: bool,
    requester_is_anonymous: bool = False,
) -> bool:
    """Whether a requester with `role` may perform `operation` on a channel.

    Args:
        requester_is_local: the requester's domain is the channel's home domain.
        requester_is_anonymous: the requester is an anonymous guest (read-only, never
            local, and holding no role but a ban).
    """
    if requester_is_anonymous:
        if operation not in READ_TABLE:
            return False
        requester_is_local = False
        role = Role.OUTCAST if role is Role.OUTCAST else Role.NONE
    by_model = READ_TABLE.get(operation)
    if by_model is None:
        return role in WRITE_TABLE[operation]
    if (
        access_model is AccessModel.LOCAL
        and requester_is_local
        and role is not Role.OUTCAST
        and by_model is _BY_MODEL_FOLLOWERS_ONLY
    ):
        return True
    return role in by_model[access_model]


def require(
    operation: Operation,
    role: Role,
    access_model: AccessModel,
    *,
    requester_is_local: bool,
    requester_is_anonymous: bool = False,
    subscription: SubscriptionState = SubscriptionState.NONE,
) -> None:
    """Raise the error a requester should see when `may` says no.

    Raises:
        Banned: the requester is an outcast.
        AnonymousReadOnly: an anonymous requester asked for anything but a read.
        SubscriptionPending: the requester waits for approval of a closed channel.
        ClosedNode: the channel is closed to non-followers.
        Forbidden: the requester's role does not allow the operation.
    """
    if may(
        operation,
        role,
        access_model,
        requester_is_local=requester_is_local,
        requester_is_anonymous=requester_is_anonymous,
    ):
        return
    if role is Role.OUTCAST:
        raise Banned(f"banned users may not {operation.value}")
    if requester_is_anonymous:
        if operation not in READ_TABLE:
            raise AnonymousReadOnly(operation.value)
        role = Role.NONE
    if operation in READ_TABLE and role is Role.NONE:
        if subscription is SubscriptionState.PENDING:
            raise SubscriptionPending(f"your subscription is pending: cannot {operation.value}")
        if operation in (Operation.READ_ITEMS, Operation.READ_FOLLOWERS):
            raise ClosedNode(f"the channel is closed: follow it to {operation.value}")
    raise Forbidden(f"role {role.value} may not {operation.value}")


def check_role_change(
    *,
    actor: Jid,
    actor_role: Role,
    target: Jid,
    target_role: Role,
    new_role: Role,
    actor_is_anonymous: bool = False,
    target_is_anonymous: bool = False,
) -> None:
    """Table 7 and section 4.3: who may change whose role.

    The owner is never demoted, nobody changes their own role, moderators may neither
    make moderators or owners nor change another moderator's role, and an anonymous guest
    may be banned but given no other role.

    Raises:
        OwnAffiliation, OwnerRequired, Forbidden
    """
    if actor.bare == target.bare:
        raise OwnAffiliation()
    if actor_is_anonymous:
        raise AnonymousReadOnly(Operation.MANAGE_ROLES.value)
    if not may(Operation.MANAGE_ROLES, actor_role, AccessModel.OPEN, requester_is_local=True):
        raise Forbidden(f"role {actor_role.value} may not change roles")
    if new_role is Role.OUTCAST:
        require(Operation.MANAGE_BANNED, actor_role, AccessModel.OPEN, requester_is_local=True)
    if target_role is Role.OWNER and new_role is not Role.OWNER:
        raise OwnerRequired("the owner of a channel cannot be demoted")
    if actor_role is Role.MODERATOR:
        if new_role in (Role.MODERATOR, Role.OWNER):
            raise Forbidden("moderators cannot make moderators or owners")
        if target_role in (Role.MODERATOR, Role.OWNER):
            raise Forbidden("moderators cannot change the role of moderators or owners")
    if target_is_anonymous and new_role not in (Role.NONE, Role.OUTCAST):
        raise Forbidden("anonymous users can be banned, but given no other role")


def check_invitation(*, target: Jid, target_role: Role, target_is_anonymous: bool) -> None:
    """Who may be invited to follow (the inviter's own right is `Operation.INVITE`).

    Raises:
        Banned: the target is banned from the channel.
        Forbidden: the target is an anonymous guest, who follows only while online.
    """
    if target_role is Role.OUTCAST:
        raise Banned(f"{target} is banned from this channel")
    if target_is_anonymous:
        raise Forbidden(f"{target} is an anonymous guest: guests follow only while online")


@dataclass(frozen=True, slots=True)
class ReadScope:
    """Which channels a requester may read items of, for queries across channels.

    Storage turns this into one query: a channel is readable when its access model maps to
    a set that holds the requester's role there (`none` when the requester has no role).
    """

    requester: Jid
    roles_by_model: dict[AccessModel, frozenset[Role]]


def read_scope(requester: Jid, *, requester_is_local: bool) -> ReadScope:
    """The channels whose items `requester` may read, derived from table 5."""
    roles_by_model = {
        model: frozenset(
            role
            for role in Role
            if may(Operation.READ_ITEMS, role, model, requester_is_local=requester_is_local)
        )
        for model in AccessModel
    }
    return ReadScope(requester.bare, roles_by_model)


def public_models(*, requester_is_local: bool) -> frozenset[AccessModel]:
    """The access models whose channels anyone may read without following them (table 5
    with role `none`)."""
    return frozenset(
        model
        for model in AccessModel
        if may(Operation.READ_ITEMS, Role.NONE, model, requester_is_local=requester_is_local)
    )


def public_scope(requester: Jid, *, requester_is_local: bool) -> ReadScope:
    """What the firehose shows `requester`: the channels of `public_models`, less those
    where the requester's own role forbids reading (a ban)."""
    scope = read_scope(requester, requester_is_local=requester_is_local)
    public = public_models(requester_is_local=requester_is_local)
    return ReadScope(
        scope.requester,
        {model: roles for model, roles in scope.roles_by_model.items() if model in public},
    )
