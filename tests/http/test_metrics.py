"""`/metrics`: what Prometheus scrapes from a real server, and who may scrape it."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from http_support import Server, serve
from prometheus_client.parser import text_string_to_metric_families

from buddycloud import __version__
from buddycloud.domain.events import NodeDeleted
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId
from buddycloud.http.metrics import Metrics, may_read_metrics

TOKEN = "s3cr3t-metrics-token-0123456789"


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly these labels, or None."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


# --- units -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "headers", "allowed"),
    [
        ("127.0.0.1", {}, True),
        ("127.8.9.10", {}, True),
        ("::1", {}, True),
        ("::ffff:127.0.0.1", {}, True),
        ("192.0.2.7", {}, False),
        ("::ffff:192.0.2.7", {}, False),
        ("2001:db8::1", {}, False),
        (None, {}, False),
        ("not-an-address", {}, False),
        ("127.0.0.1", {"x-forwarded-for": "127.0.0.1"}, False),
        ("127.0.0.1", {"forwarded": "for=127.0.0.1"}, False),
        ("127.0.0.1", {"x-real-ip": "127.0.0.1"}, False),
    ],
)
def test_without_a_token_metrics_are_for_direct_loopback_callers(
    host: str | None, headers: dict[str, str], allowed: bool
) -> None:
    found = may_read_metrics(token=None, authorization=None, client_host=host, headers=headers)
    assert found is allowed


@pytest.mark.parametrize(
    ("authorization", "allowed"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer  {TOKEN} ", True),
        (None, False),
        ("Bearer", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
    ],
)
def test_with_a_token_only_the_token_counts(authorization: str | None, allowed: bool) -> None:
    for host in ("127.0.0.1", "192.0.2.7"):
        found = may_read_metrics(
            token=TOKEN, authorization=authorization, client_host=host, headers={}
        )
        assert found is allowed


async def test_events_are_counted_by_type_with_their_audience() -> None:
    metrics = Metrics()
    juliet, romeo = Jid.parse("juliet@capulet.lit"), Jid.parse("romeo@capulet.lit")
    await metrics.count_event(NodeDeleted(NodeId(juliet, "status"), (juliet, romeo)))
    await metrics.count_event(NodeDeleted(NodeId(juliet, "geoloc"), ()))
    text = metrics.render().decode()
    assert sample(text, "buddycloud_events_total", type="node_deleted") == 2
    assert sample(text, "buddycloud_event_recipients_total", type="node_deleted") == 2


def test_unknown_methods_share_one_label() -> None:
    metrics = Metrics()
    for method in ("BREW", "PROPFIND", "GET"):
        metrics.observe_request(method, "(unmatched)", 404, 0.001)
    text = metrics.render().decode()
    labels = {"route": "(unmatched)", "status": "4xx"}
    assert sample(text, "buddycloud_http_requests_total", method="other", **labels) == 2
    assert sample(text, "buddycloud_http_requests_total", method="GET", **labels) == 1


def test_the_xmpp_gauge_reads_the_connection_at_each_scrape() -> None:
    metrics = Metrics()
    connected = False
    metrics.watch_xmpp(lambda: connected)
    assert sample(metrics.render().decode(), "buddycloud_xmpp_connected") == 0
    connected = True
    assert sample(metrics.render().decode(), "buddycloud_xmpp_connected") == 1


# --- through a real server ---------------------------------------------------------------


async def scrape(server: Server) -> str:
    async with server.client() as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return answer.text


async def test_requests_are_counted_and_timed_by_route_template_and_status_class(
    server: Server,
) -> None:
    await server.add_user("juliet")
    posts = "/api/{channel}/content/{node}"
    before = await scrape(server)
    assert sample(before, "buddycloud_http_requests_total", method="GET", route=posts) is None

    async with server.client() as anonymous:
        for _ in range(3):
            assert (await anonymous.get("/api/juliet@capulet.lit/content/posts")).is_success
        missing = await anonymous.get("/api/nobody@capulet.lit/content/posts")
        assert missing.status_code == 404
        assert (await anonymous.get("/no/such/page")).status_code == 404
    after = await scrape(server)

    counted = {"method": "GET", "route": posts}
    assert sample(after, "buddycloud_http_requests_total", **counted, status="2xx") == 3
    assert sample(after, "buddycloud_http_requests_total", **counted, status="4xx") == 1
    assert sample(after, "buddycloud_http_request_duration_seconds_count", **counted) == 4
    assert sample(after, "buddycloud_http_request_duration_seconds_sum", **counted) > 0
    inf = sample(after, "buddycloud_http_request_duration_seconds_bucket", **counted, le="+Inf")
    assert inf == 4
    unmatched = {"method": "GET", "route": "(unmatched)", "status": "4xx"}
    assert sample(after, "buddycloud_http_requests_total", **unmatched) == 1
    signups = {"method": "POST", "route": "/api/account", "status": "2xx"}
    assert sample(after, "buddycloud_http_requests_total", **signups) == 1
    # Raw paths never become labels: the number of series stays bounded.
    assert "juliet@capulet.lit" not in after
    assert "/no/such/page" not in after


async def test_events_storage_writes_and_websockets_are_exposed(server: Server) -> None:
    await server.add_user("juliet")
    await server.add_user("romeo")
    before = await scrape(server)
    writes_before = sample(before, "buddycloud_storage_write_duration_seconds_count")
    assert writes_before is not None and writes_before > 0  # two accounts and channels

    juliet, romeo = Jid.parse("juliet@capulet.lit"), Jid.parse("romeo@capulet.lit")
    await server.app.engine.subscribe(romeo, NodeId(juliet, "posts"), romeo)
    after = await scrape(server)

    followed = {"type": "subscription_changed"}
    assert sample(before, "buddycloud_events_total", **followed) is None
    assert sample(after, "buddycloud_events_total", **followed) == 1
    # Juliet, the owner, hears of her new follower.
    assert (sample(after, "buddycloud_event_recipients_total", **followed) or 0) >= 1
    writes_after = sample(after, "buddycloud_storage_write_duration_seconds_count")
    assert writes_after is not None and writes_after > writes_before
    assert sample(after, "buddycloud_websockets_open") == 0
    # No [xmpp]: no connection state to report (tests/e2e/test_operations has one).
    assert sample(after, "buddycloud_xmpp_connected") is None
    assert sample(after, "process_resident_memory_bytes") is not None


async def test_two_servers_in_one_process_count_apart(tmp_path: Path) -> None:
    async with serve(tmp_path / "a") as first, serve(tmp_path / "b") as second:
        async with first.client() as http:
            for _ in range(2):
                await http.get("/health")
        counted = {"method": "GET", "route": "/health", "status": "2xx"}
        assert sample(await scrape(first), "buddycloud_http_requests_total", **counted) == 2
        assert sample(await scrape(second), "buddycloud_http_requests_total", **counted) is None


async def test_without_a_token_a_relayed_request_is_refused(server: Server) -> None:
    """A reverse proxy on the same host connects from loopback; its headers give it away."""
    async with server.client() as http:
        for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
            relayed = await http.get("/metrics", headers={header: "203.0.113.9"})
            assert relayed.status_code == 403, header
            assert relayed.json()["error"] == "forbidden"
            assert "metrics_token" in relayed.json()["message"]
            assert "buddycloud_" not in relayed.text


def _local_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


async def test_without_a_token_only_loopback_callers_read_metrics(tmp_path: Path) -> None:
    address = _local_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    async with serve(tmp_path, BUDDYCLOUD_HTTP_LISTEN=f"{address}:0") as server:
        async with server.client() as from_the_network:
            refused = await from_the_network.get("/metrics")
            served = await from_the_network.get("/health")
    assert refused.status_code == 403
    assert "buddycloud_" not in refused.text
    assert served.status_code == 200  # the same caller, the same listener


async def test_with_a_token_every_caller_needs_it(tmp_path: Path) -> None:
    async with serve(tmp_path, BUDDYCLOUD_HTTP_METRICS_TOKEN=TOKEN) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            bare = await http.get("/metrics")
            wrong = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
            basic = await http.get("/metrics", auth=("metrics", TOKEN))
            right = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    for refused in (bare, wrong, basic):
        assert refused.status_code == 401
        assert refused.json()["error"] == "not-authenticated"
        assert "buddycloud_" not in refused.text
    assert right.status_code == 200
    assert sample(right.text, "buddycloud_info", version=__version__) == 1
