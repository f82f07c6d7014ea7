"""What the engine needs from the outside world, as protocols."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.events import Event
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


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC. Never returns the same instant twice."""


class EventListener(Protocol):
    async def __call__(self, event: Event) -> None: ...


class PasswordCheck(Protocol):
    """One sign-in method that checks a user's password somewhere else than the built-in
    user database: the app's own API (`remote`), the XMPP server (`xmpp`)."""

    async def __call__(self, user: Jid, password: str) -> bool:
        """Whether the password is the user's (a bare JID of this server's domain).

        Raises:
            SignInUnavailable: the answer could not be had in time, or made no sense.
        """


class AccountDirectory(Protocol):
    """The accounts of the XMPP server, kept in step with the built-in user database, so
    that a user's credentials work in any XMPP client too (docs/auth.md, "XMPP twins").

    Implemented by `buddycloud.xmpp.admin.XmppAccounts` with XEP-0133 service
    administration commands. Every method either did what it says, or raises and did
    nothing.
    """

    async def add(self, user: Jid, password: str) -> None:
        """Create the account `user` (a bare JID of this server's domain).

        Raises:
            AccountExists: the XMPP server has an account of that name already.
            AccountDirectoryUnavailable: it could not be asked, or refused.
        """

    async def change_password(self, user: Jid, password: str) -> None:
        """Set the password of the existing account `user`.

        Raises:
            AccountNotFound: the XMPP server has no such account (or cannot say whether
                it has, and refused the change of a password it may not have).
            AccountDirectoryUnavailable: it could not be asked, or refused.
        """

    async def remove(self, user: Jid) -> None:
        """Delete the account `user`.

        Raises:
            AccountNotFound: the XMPP server has no such account (or cannot say whether
                it has, and refused to delete it).
            AccountDirectoryUnavailable: it could not be asked, or refused.
        """


class MailSender(Protocol):
    """Sends one plain-text mail (password resets); `buddycloud.util.mail.SmtpMailer`."""

    async def __call__(self, to: str, subject: str, body: str) -> None:
        """Raises OSError (or a subclass) when the mail could not be handed over."""


class RemoteChannels(Protocol):
    """The channels of other domains, as their authoritative channel servers answer.

    The engine hands every request about a channel whose domain it does not serve to this
    port, acting for `actor`, a user of this server's domain; the port answers with domain
    values, or raises domain errors (never a remote server's own error text). Implemented
    by `buddycloud.federation.client.RemoteServers`.
    """

    async def get_items(self, actor: Jid, node: NodeId, page: PageRequest) -> Page[Item]:
        """Raises: NodeNotFound, ClosedNode, Forbidden, RemoteError and its subclasses."""

    async def get_item(self, actor: Jid, node: NodeId, item_id: str) -> Item:
        """Raises: ItemNotFound, and what `get_items` raises."""

    async def publish(
        self, actor: Jid, node: NodeId, payload: EntryDraft | RawPayload, item_id: str | None
    ) -> str:
        """Publish; the id the channel's server gave the item."""

    async def retract(self, actor: Jid, node: NodeId, item_id: str, *, notify: bool) -> None: ...

    async def subscribe(self, actor: Jid, node: NodeId) -> Membership:
        """Follow the channel: the new membership (subscribed, or pending approval)."""

    async def unsubscribe(self, actor: Jid, node: NodeId) -> None: ...

    async def get_configuration(self, actor: Jid, node: NodeId) -> ChannelConfig:
        """The channel's configuration (ProtoXEP table 1), to cache it here.

        Raises: NodeNotFound, RemoteError and its subclasses."""

    async def get_replies(
        self, actor: Jid, node: NodeId, item_id: str, page: PageRequest
    ) -> Page[Item]:
        """Replies to one item. Raises: ItemNotFound, and what `get_items` raises."""

    async def get_thread(
        self, actor: Jid, node: NodeId, item_id: str, page: PageRequest
    ) -> Page[Item]:
        """A parent item and its replies. Raises: what `get_replies` raises."""

    async def get_threads(self, actor: Jid, node: NodeId, page: PageRequest) -> Page[Thread]:
        """A node's threads. Raises: what `get_items` raises."""

    async def get_node_view(self, actor: Jid, node: NodeId) -> NodeView:
        """The node and its channel's metadata. Raises: NodeNotFound, RemoteError…"""

    async def configure(self, actor: Jid, node: NodeId, update: ConfigUpdate) -> NodeView:
        """Change the configuration; the node as it is now. Raises: Forbidden,
        InvalidConfiguration, and what `get_node_view` raises."""

    async def delete_node(self, actor: Jid, node: NodeId) -> None:
        """Raises: Forbidden, and what `get_node_view` raises."""

    async def node_subscriptions(
        self, actor: Jid, node: NodeId, page: PageRequest
    ) -> Page[Membership]:
        """The followers' subscription states (their roles are not in this list: none).
        Raises: ClosedNode, Forbidden, and what `get_node_view` raises."""

    async def node_affiliations(
        self, actor: Jid, node: NodeId, page: PageRequest
    ) -> Page[Membership]:
        """The roles in the channel (the subscription states are not in this list: none).
        Raises: what `node_subscriptions` raises."""

    async def set_subscriptions(
        self, actor: Jid, node: NodeId, changes: Sequence[tuple[Jid, SubscriptionState]]
    ) -> list[Membership]:
        """Approve, refuse, remove or invite, all or none; the new states (roles: none,
        the answer does not tell them). Raises: Forbidden, NotSubscribed, OwnSubscription,
        OwnerRequired, BadRequest, and what `get_node_view` raises."""

    async def set_roles(
        self, actor: Jid, node: NodeId, changes: Sequence[tuple[Jid, Role]]
    ) -> list[Membership]:
        """Change roles, all or none; the new roles (states: none, the answer does not
        tell them). Raises: Forbidden, OwnAffiliation, OwnerRequired, BadRequest, and what
        `get_node_view` raises."""

    async def is_channel_server(self, domain: str, sender: Jid) -> bool:
        """Whether `sender` is the channel server of `domain` (ProtoXEP 10.1)."""
