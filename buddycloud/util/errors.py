"""The one error the commands report as a deployment that cannot start."""

from __future__ import annotations


class CannotStart(Exception):
    """A part the server needs cannot be used: the storage (missing database, refused
    credentials, unreachable host, a schema too old or too new) or the XMPP server (the
    component secret refused, nothing listening). The message is one line naming the part,
    where it was looked for, and what to do; the commands exit with status 2."""
