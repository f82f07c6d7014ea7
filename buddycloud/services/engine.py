"""The channel engine: the one object the edges (XMPP, HTTP, federation) talk to.

Its parts live beside it: `channels` (registration, creation, configuration, deletion),
`following` (subscriptions, approvals, roles), `items` (publishing, reads, search) and
`accounts` (unregistering) and `users` (the built-in user database).
Every permission is decided by `buddycloud.domain.permissions`.
"""

from __future__ import annotations

from buddycloud.services.users import UserOps


class Engine(UserOps):
    """Every operation of the channel model. Construct with (storage, clock, config)."""
