"""Built-in accounts with XMPP twins when the XMPP server cannot be reached: 503
`xmpp-server-unavailable` within the timeout, and nothing changed here (the twins
themselves are tested through real XMPP servers in tests/e2e/test_xmpp_twins.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from http_support import PASSWORD, Server, serve


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def twinned(tmp_path: Path) -> AsyncIterator[Server]:
    """A server whose XMPP server (component and client port) is down."""
    async with serve(
        tmp_path,
        BUDDYCLOUD_XMPP_COMPONENT_JID="channels.capulet.lit",
        BUDDYCLOUD_XMPP_SECRET="secret",
        BUDDYCLOUD_XMPP_PORT=str(_dead_port()),
        BUDDYCLOUD_XMPP_C2S_PORT=str(_dead_port()),
        BUDDYCLOUD_XMPP_ADMIN_JID="admin@capulet.lit",
        BUDDYCLOUD_XMPP_ADMIN_PASSWORD="admin-password",
        BUDDYCLOUD_AUTH_REMOTE_TIMEOUT="2",
    ) as server:
        yield server


async def test_registering_while_the_xmpp_server_is_down_is_503_and_makes_nothing(
    twinned: Server,
) -> None:
    async with twinned.client() as anonymous:
        start = time.monotonic()
        refused = await anonymous.post(
            "/api/account",
            json={"username": "juliet", "password": PASSWORD, "email": "juliet@example.org"},
        )
        took = time.monotonic() - start
        channel = await anonymous.get("/api/juliet@capulet.lit/metadata/posts")
    async with twinned.client("juliet") as juliet:
        check = await juliet.get("/api")
    assert refused.status_code == 503
    assert refused.json()["error"] == "xmpp-server-unavailable"
    assert "nothing was changed" in refused.json()["message"]
    assert took < 4
    assert check.status_code == 401
    assert channel.status_code == 404


async def test_a_password_change_or_deletion_while_it_is_down_changes_nothing(
    twinned: Server,
) -> None:
    # An account made before the XMPP server went down (here: made by the engine alone).
    engine = twinned.app.engine
    directory = engine.directory
    engine.directory = None
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")
    engine.directory = directory

    async with twinned.client("juliet") as juliet:
        changed = await juliet.post("/api/account/pw/change", json={"password": "new-password-1"})
        deleted = await juliet.delete("/api/account")
        still = await juliet.get("/api")
    async with twinned.client("juliet", "new-password-1") as impostor:
        new = await impostor.get("/api")
    assert changed.status_code == deleted.status_code == 503
    assert changed.json()["error"] == deleted.json()["error"] == "xmpp-server-unavailable"
    assert still.status_code == 204  # the old password, and the account, are still good
    assert new.status_code == 401
