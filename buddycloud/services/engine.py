"""The channel engine: the one object the edges (XMPP, HTTP, federation) talk to.

Its parts live beside it: `channels` (registration, creation, configuration, deletion),
`following` (subscriptions, approvals, roles), `items` (publishing, reads, search) and
`accounts` (unregistering).
Every permission is decided by `buddycloud.domain.permissions`.
"""

from __future__ import annotations

from buddycloud.services.accounts import AccountOps


class Engine(AccountOps):
    """Every operation of the channel model. Construct with (storage, clock, config)."""
