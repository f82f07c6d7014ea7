"""XmppAccounts when the XMPP server is silent: unavailable within the timeout, never a
hang (its commands are tested through real XMPP servers in tests/e2e/test_xmpp_twins.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from buddycloud.domain.errors import AccountDirectoryUnavailable
from buddycloud.domain.jid import Jid
from buddycloud.xmpp.admin import XmppAccounts

PASSWORD = "balcony-at-midnight"


async def test_a_silent_xmpp_server_is_unavailable_within_the_timeout() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept the connection, and never say a word

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    accounts = XmppAccounts(
        Jid.parse("admin@capulet.lit"), "pw", "capulet.lit", "127.0.0.1", port, timeout=1
    )
    try:
        start = time.monotonic()
        with pytest.raises(AccountDirectoryUnavailable, match="did not answer within 1 s"):
            await accounts.add(Jid.parse("juliet@capulet.lit"), PASSWORD)
        took = time.monotonic() - start
    finally:
        for writer in accepted:
            writer.close()
        listener.close()
        await listener.wait_closed()
    assert 0.9 < took < 3
    assert accepted
