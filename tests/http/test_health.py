"""`/health`: what a load balancer sees from a real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from http_support import Server, serve

from buddycloud.http.requests import HEALTH_TIMEOUT
from buddycloud.prosody import free_port


async def test_a_serving_server_is_healthy_to_anyone(server: Server) -> None:
    async with server.client() as anonymous:
        answer = await anonymous.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "storage": "ok", "xmpp": "off"}
    assert answer.headers["cache-control"] == "no-store"


async def test_health_needs_no_credentials_and_ignores_wrong_ones(server: Server) -> None:
    async with server.client("nobody", "not-a-password") as stranger:
        answer = await stranger.get("/health")
    assert answer.status_code == 200


async def test_a_closed_storage_is_503(server: Server) -> None:
    await server.app.storage.close()
    async with server.client() as anonymous:
        answer = await anonymous.get("/health")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "storage": "unavailable", "xmpp": "off"}


async def test_a_storage_that_does_not_answer_is_503_after_the_timeout(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = asyncio.Event()

    async def never_answers() -> None:
        await stuck.wait()

    monkeypatch.setattr(server.app.storage, "ping", never_answers)
    async with server.client() as anonymous:
        started = asyncio.get_running_loop().time()
        answer = await anonymous.get("/health")
        waited = asyncio.get_running_loop().time() - started
    assert answer.status_code == 503
    assert answer.json()["storage"] == "timeout"
    assert HEALTH_TIMEOUT <= waited < HEALTH_TIMEOUT + 3


async def test_a_component_that_cannot_connect_is_reported_but_keeps_the_server_up(
    tmp_path: Path,
) -> None:
    """The HTTP API serves without XMPP: a load balancer must keep sending it requests."""
    nobody_listens = free_port()
    async with serve(
        tmp_path,
        BUDDYCLOUD_XMPP_COMPONENT_JID="channels.capulet.lit",
        BUDDYCLOUD_XMPP_SECRET="balcony",
        BUDDYCLOUD_XMPP_PORT=str(nobody_listens),
    ) as server:
        async with server.client() as anonymous:
            health = await anonymous.get("/health")
            metrics = await anonymous.get("/metrics")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "storage": "ok", "xmpp": "disconnected"}
    assert "\nbuddycloud_xmpp_connected 0.0\n" in metrics.text
