"""`/health` and `/metrics` of the real server while its component is connected to the
private XMPP server."""

from __future__ import annotations

import re

import httpx
from e2e.harness import ServerProcess


async def http_url(server: ServerProcess) -> str:
    output = await server.wait_for_log("HTTP API listening on http://")
    # The log holds every start of the session's server; the last one is listening now.
    port = re.findall(r"HTTP API listening on http://127\.0\.0\.1:(\d+)/api", output)[-1]
    return f"http://127.0.0.1:{port}"


async def test_health_and_metrics_report_the_connected_component(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=await http_url(server), timeout=10) as http:
        health = await http.get("/health")
        metrics = await http.get("/metrics")  # from loopback, no proxy: allowed
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "storage": "ok", "xmpp": "connected"}
    assert metrics.status_code == 200
    assert "\nbuddycloud_xmpp_connected 1.0\n" in metrics.text
