"""The channel engine: the one object the edges (XMPP, HTTP, federation) talk to.

Its parts live beside it: `channels` (registration, creation, configuration, deletion),
`following` (subscriptions, approvals, roles), `items` (publishing, reads, search),
`accounts` (unregistering), `users` (the built-in user database), `archive` (archives
and the inbox sync) and `outbox` (what goes to other domains' channel servers).
Every permission is decided by `buddycloud.domain.permissions`.
"""

from __future__ import annotations

from buddycloud.services.outbox import OutboxOps


class Engine(OutboxOps):
    """Every operation of the channel model. Construct with (storage, clock, config)."""
