"""State and helpers shared by the engine's parts (channels, following, items)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from buddycloud.domain.errors import BadRequest, NotLocalUser, Unsupported, UntrustedServer
from buddycloud.domain.events import Event
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Channel,
    Membership,
    NodeId,
    Role,
    SubscriptionState,
)
from buddycloud.domain.permissions import READ_TABLE, Operation, may, require
from buddycloud.services.config import EngineConfig
from buddycloud.services.ports import (
    AccountDirectory,
    Clock,
    EventListener,
    MailSender,
    RemoteChannels,
)
from buddycloud.storage.base import NodeContext, Storage

logger = logging.getLogger(__name__)


def role_of(membership: Membership | None) -> Role:
    return membership.role if membership is not None else Role.NONE


def state_of(membership: Membership | None) -> SubscriptionState:
    return membership.subscription if membership is not None else SubscriptionState.NONE


READ_BATCH = 500  # rows read at a time when an operation walks a long list
MAX_SEARCH_WORDS = 16


def search_words(words: Iterable[str], *, required: bool) -> tuple[str, ...]:
    """The words of a full-text search, blanks dropped.

    Raises:
        BadRequest: no words when `required`, or more than `MAX_SEARCH_WORDS`.
    """
    cleaned = tuple(w for w in (word.strip() for word in words) if w)
    if required and not cleaned:
        raise BadRequest("search needs at least one word")
    if len(cleaned) > MAX_SEARCH_WORDS:
        raise BadRequest(f"search takes at most {MAX_SEARCH_WORDS} words")
    return cleaned


class EngineBase:
    """Holds the engine's collaborators; see `buddycloud.services.engine.Engine`."""

    def __init__(self, storage: Storage, clock: Clock, config: EngineConfig) -> None:
        self.storage = storage
        self.clock = clock
        self.config = config
        self._listeners: list[EventListener] = []
        self.remote: RemoteChannels | None = None
        self.mailer: MailSender | None = None
        self.reset_url: str | None = None
        self.reset_lifetime = timedelta(hours=1)
        self.directory: AccountDirectory | None = None

    def use_mail(
        self, mailer: MailSender, *, reset_url: str | None, reset_lifetime: timedelta
    ) -> None:
        """Send password reset mails through `mailer`; `reset_url` is the link they hold,
        with `{token}` where the token goes (None: the mail holds the token alone)."""
        self.mailer = mailer
        self.reset_url = reset_url
        self.reset_lifetime = reset_lifetime

    def use_account_directory(self, directory: AccountDirectory) -> None:
        """Keep every built-in account's twin on the XMPP server through `directory`:
        created, given each new password, and deleted with it (`UserOps`). Without it the
        built-in accounts are this server's alone."""
        self.directory = directory

    def use_remote(self, remote: RemoteChannels) -> None:
        """Reach the channels of other domains through `remote` (federation). Without
        it, a channel of another domain is looked for here, like any other."""
        self.remote = remote

    # --- events -----------------------------------------------------------------------

    def add_listener(self, listener: EventListener) -> None:
        """Deliver every domain event to `listener`, after its change has committed."""
        self._listeners.append(listener)

    async def _emit(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                await listener(event)
            except Exception:
                # The change is committed; a failing listener must not turn it into an error.
                logger.exception("event listener %r failed on %s", listener, type(event).__name__)

    # --- operations -------------------------------------------------------------------

    async def check_storage(self) -> None:
        """Return when the storage answers a query; raise what it raises when it cannot."""
        await self.storage.ping()

    # --- identity ---------------------------------------------------------------------

    def is_local_user(self, jid: Jid) -> bool:
        return jid.domain == self.config.domain and not self.is_anonymous(jid)

    def is_anonymous(self, jid: Jid) -> bool:
        """Anonymous guests read and follow while online, and change nothing (permissions)."""
        return self.config.is_anonymous(jid)

    def _require_local_user(self, jid: Jid) -> None:
        if not self.is_local_user(jid):
            raise NotLocalUser(f"only users of {self.config.domain} may do this")

    # --- other domains ----------------------------------------------------------------

    def is_mine(self, node: NodeId) -> bool:
        """Whether this server is the channel's home: THE one place that decides it.

        Channels of `[server] domain` and of the topics domain are served here; every other
        channel by its own domain's channel server.
        """
        return node.channel.domain in (self.config.domain, self.config.topics_domain)

    def _remote_for(self, requester: Jid, node: NodeId) -> RemoteChannels | None:
        """The port to ask about `node` when it is another domain's, None when it is ours.

        Only this server's own users are acted for: it is their home server, not anyone's.

        Raises:
            NotLocalUser: someone else asks about another domain's channel.
        """
        if self.remote is None or self.is_mine(node):
            return None
        if not self.is_local_user(requester):
            raise NotLocalUser(
                f"only users of {self.config.domain} reach other domains' channels here"
            )
        return self.remote

    async def acting_for(self, sender: Jid, actor: Jid) -> Jid:
        """The requester of a request `sender` makes on behalf of `actor` (`<actor>`,
        reference 5.2): the actor, once `sender` is known to be the channel server of the
        actor's domain (ProtoXEP 10.1). A domain-suffix check is not enough: discovery
        must name exactly `sender`.

        Raises:
            UntrustedServer: `sender` is not that server, or the actor is a user of this
                server's own domain, or this server does not federate.
        """
        actor = actor.bare
        trusted = (
            self.remote is not None
            and actor.domain not in (self.config.domain, self.config.topics_domain)
            and not sender.local
            and sender.is_bare
            and await self.remote.is_channel_server(actor.domain, sender)
        )
        if not trusted:
            logger.warning("refused a request from %s acting for %s", sender, actor)
            raise UntrustedServer(f"{sender} is not the channel server of {actor.domain}")
        return actor

    # --- permissions --------------------------------------------------------------------

    def _is_local_to(self, requester: Jid, channel: Channel) -> bool:
        """Whether `requester` belongs to the channel's home domain (access model `local`)."""
        return requester.domain in {
            self.config.domain,
            channel.jid.domain,
        } and not self.is_anonymous(requester)

    def _may(self, operation: Operation, requester: Jid, context: NodeContext) -> bool:
        return may(
            operation,
            role_of(context.membership),
            context.channel.config.access_model,
            requester_is_local=self._is_local_to(requester, context.channel),
            requester_is_anonymous=self.is_anonymous(requester),
        )

    def _require(self, operation: Operation, requester: Jid, context: NodeContext) -> None:
        require(
            operation,
            role_of(context.membership),
            context.channel.config.access_model,
            requester_is_local=self._is_local_to(requester, context.channel),
            requester_is_anonymous=self.is_anonymous(requester),
            subscription=state_of(context.membership),
        )

    async def _context(self, requester: Jid, node: NodeId) -> NodeContext:
        if self.remote is not None and not self.is_mine(node):
            # The operations that reach other domains ask `_remote_for` first; the few
            # others (archives, replacing the current item, `require_readable`) do not
            # yet, and must not answer from a local lookup as if the channel were missing.
            raise Unsupported(
                "federation", "this operation is not yet available on other domains' channels"
            )
        return await self.storage.get_node_context(node, requester.bare)

    async def _audience(self, channel: Channel, operation: Operation) -> tuple[Jid, ...]:
        """Subscribed followers allowed `operation` (a read of table 5): who is notified.

        Storage's own tuple when it is the whole answer: kept in memory, it is the same
        object from post to post, and listeners that derive something from it (the live
        hub's set) can keep that too."""
        model = channel.config.access_model
        roles = READ_TABLE[operation][model]
        jids = await self.storage.list_audience(channel.jid, roles)
        if model is AccessModel.LOCAL and Role.NONE not in roles:
            # Table 3: a `local` channel is open to users of its home domain.
            extra = await self.storage.list_audience(channel.jid, frozenset({Role.NONE}))
            jids += tuple(jid for jid in extra if self._is_local_to(jid, channel))
        return jids

    async def _staff(self, channel: Jid) -> tuple[Jid, ...]:
        return tuple(
            await self.storage.list_audience(channel, frozenset({Role.OWNER, Role.MODERATOR}))
        )

    @staticmethod
    def _union(*groups: Iterable[Jid]) -> tuple[Jid, ...]:
        return tuple(dict.fromkeys(jid for group in groups for jid in group))
