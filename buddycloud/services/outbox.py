"""Federation's outbox, the engine's side: which remote domains an event goes to, and the
durable queue of what waits for each (docs/federation.md).

Each event on a channel this server serves goes once to each other domain whose users are
in its audience: their home server notifies them (the inbox model, reference section 5).
Anonymous guests are no home server's users: this server notifies them itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from buddycloud.domain.events import (
    AuthorizationRequested,
    ConfigurationChanged,
    Event,
    ItemPublished,
    ItemRetracted,
    NodeDeleted,
    RoleChanged,
    SubscriptionChanged,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId
from buddycloud.services.archive import ArchiveOps
from buddycloud.storage.base import OutboxEntry, OutboxStatus


def _node_of(event: Event) -> NodeId | None:
    match event:
        case ItemPublished(node=node) | ItemRetracted(node=node):
            return node.id
        case SubscriptionChanged(node=node_id) | RoleChanged(node=node_id):
            return node_id
        case NodeDeleted(node=node_id):
            return node_id
        case ConfigurationChanged(nodes=nodes):
            return nodes[0] if nodes else None
    return None


class OutboxOps(ArchiveOps):
    def _is_other_domain(self, domain: str) -> bool:
        config = self.config
        return (
            domain != config.domain
            and domain != config.topics_domain
            and not config.is_anonymous(Jid("", domain))
        )

    def delivered_by_home_server(self, jid: Jid) -> bool:
        """Whether events reach `jid` through its home server (the outbox) rather than
        from this server: a user of another domain, when this server federates."""
        return self.remote is not None and self._is_other_domain(jid.domain)

    def following_domains(self, event: Event) -> tuple[str, ...]:
        """The other domains `event` goes to, by name: those of its audience's users of
        other domains, for an event on a channel this server serves. Authorization
        prompts go to no domain (the owner or moderator is asked directly)."""
        if self.remote is None or isinstance(event, AuthorizationRequested):
            return ()
        node = _node_of(event)
        if node is None or not self.is_mine(node):
            return ()
        domains = {jid.domain for jid in event.audience}
        return tuple(sorted(domain for domain in domains if self._is_other_domain(domain)))

    async def enqueue_outbox(self, domains: Sequence[str], body: str) -> None:
        """Queue `body` (serialised `<event>` elements) for each of `domains`: durable on
        return."""
        await self.storage.enqueue_outbox(domains, body, self.clock.now())

    async def outbox_batch(
        self, domain: str, *, max_bytes: int, max_rows: int
    ) -> list[OutboxEntry]:
        """The oldest events queued for `domain` (see `Storage.read_outbox`)."""
        return await self.storage.read_outbox(domain, max_bytes=max_bytes, max_rows=max_rows)

    async def outbox_delivered(self, domain: str, sequences: Sequence[int], server: str) -> None:
        await self.storage.delete_outbox(domain, sequences, at=self.clock.now(), server=server)

    async def outbox_refused(
        self, domain: str, sequences: Sequence[int], server: str, error: str
    ) -> None:
        """Drop a batch `server` refused for good, keeping `error` as the domain's last."""
        await self.storage.delete_outbox(
            domain, sequences, at=self.clock.now(), server=server, error=error
        )

    async def outbox_failed(self, domain: str, server: str | None, error: str) -> None:
        await self.storage.record_outbox_failure(
            domain, at=self.clock.now(), server=server, error=error
        )

    async def outbox_status(self) -> list[OutboxStatus]:
        """How delivery to every known remote domain stands, by domain name."""
        return await self.storage.list_outbox_status()
