"""The server's Prometheus metrics: one registry per server, and the collectors in it.

`Metrics` is built once per server by the composition root (`buddycloud.app.build`) and
reaches the HTTP edge through `HttpContext.metrics`; nothing uses prometheus_client's
global registry, so several servers can run in one process (tests do). What feeds it:

- `buddycloud_http_requests_total{method, route, status}` and
  `buddycloud_http_request_duration_seconds{method, route}`: every HTTP request, counted
  by `buddycloud.http.observe` under its route template (`/api/{channel}/content/{node}`,
  never the raw path, so the number of series stays bounded) and its status class (`2xx`).
- `buddycloud_websockets_open`: the websocket code moves it, e.g.
  `with context(websocket).metrics.websockets_open.track_inprogress(): ...`.
- `buddycloud_events_total{type}` and `buddycloud_event_recipients_total{type}`: the
  engine's events, counted by `count_event`, an engine listener, and the size of their
  audiences.
- `buddycloud_xmpp_connected`: 1 while the XMPP component's stream is up; present only when
  `[xmpp]` is configured (`watch_xmpp`, given a callable so that this package needs no XMPP).
- `buddycloud_storage_write_duration_seconds`: each storage write, from the call until its
  commit is acknowledged (`observe_storage_write`, handed to the storage as a plain hook).
- `buddycloud_info{version}`, and the process and Python collectors of prometheus_client
  (`process_*`, `python_*`).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from buddycloud import __version__
from buddycloud.domain.events import Event

# No `*_created` series beside each counter and histogram: Prometheus does not read them
# from the text format, and they doubled the size of every scrape. (Process-wide setting.)
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Route label of a request that matched no route (404s, CORS preflights).
UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Latency buckets, in seconds: from a cached read (~1 ms) to a slow write under load.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A storage write waits for its batch's commit and fsync: sub-millisecond to seconds.
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Headers a reverse proxy adds: a request carrying one was relayed, whatever its address.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


class Metrics:
    """The collectors of one server, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        Info("buddycloud", "The running server.", registry=registry).info({"version": __version__})
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.http_requests = Counter(
            "buddycloud_http_requests",
            "HTTP requests answered, by method, route template and status class.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "buddycloud_http_request_duration_seconds",
            "Time from a request's arrival until its answer was sent, by method and route.",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.websockets_open = Gauge(
            "buddycloud_websockets_open",
            "Websocket connections open now.",
            registry=registry,
        )
        self.events = Counter(
            "buddycloud_events",
            "Events of the channel engine handed to its listeners, by type.",
            ["type"],
            registry=registry,
        )
        self.event_recipients = Counter(
            "buddycloud_event_recipients",
            "Recipients the engine's events were addressed to (the sum of their audiences).",
            ["type"],
            registry=registry,
        )
        self.storage_write_duration = Histogram(
            "buddycloud_storage_write_duration_seconds",
            "Time from a storage write's call until its commit was acknowledged.",
            buckets=WRITE_BUCKETS,
            registry=registry,
        )
        self.xmpp_connected: Gauge | None = None
        # Labelled children by label values: looked up once, not on every request.
        self._requests: dict[tuple[str, str, str], Counter] = {}
        self._durations: dict[tuple[str, str], Histogram] = {}

    # --- what feeds it ------------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request. `route` is the route's template."""
        method = method if method in METHODS else "other"
        status_class = f"{status // 100}xx"
        counter = self._requests.get((method, route, status_class))
        if counter is None:
            counter = self.http_requests.labels(method, route, status_class)
            self._requests[(method, route, status_class)] = counter
        counter.inc()
        duration = self._durations.get((method, route))
        if duration is None:
            duration = self.http_request_duration.labels(method, route)
            self._durations[(method, route)] = duration
        duration.observe(seconds)

    async def count_event(self, event: Event) -> None:
        """An engine listener (`Engine.add_listener`): counts each event and its audience."""
        kind = _event_type(type(event))
        self.events.labels(kind).inc()
        self.event_recipients.labels(kind).inc(len(event.audience))

    def observe_storage_write(self, seconds: float) -> None:
        """The storage's write hook: one write took `seconds` until its commit."""
        self.storage_write_duration.observe(seconds)

    def watch_xmpp(self, connected: Callable[[], bool]) -> None:
        """Expose `buddycloud_xmpp_connected`, read from `connected` at each scrape."""
        if self.xmpp_connected is None:
            self.xmpp_connected = Gauge(
                "buddycloud_xmpp_connected",
                "1 while the XMPP component's stream to the XMPP server is up, else 0.",
                registry=self.registry,
            )
        self.xmpp_connected.set_function(lambda: 1.0 if connected() else 0.0)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


def _event_type(cls: type[Event]) -> str:
    found = _EVENT_TYPES.get(cls)
    if found is None:
        found = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        _EVENT_TYPES[cls] = found
    return found


_EVENT_TYPES: dict[type[Event], str] = {}


# --- who may read them ----------------------------------------------------------------


def may_read_metrics(
    *,
    token: str | None,
    authorization: str | None,
    client_host: str | None,
    headers: Mapping[str, str],
) -> bool:
    """Whether a request may read `/metrics`.

    With `[http] metrics_token` set: only with `Authorization: Bearer <that token>`, from
    anywhere. Without it: only a caller on a loopback address whose request carries no
    proxy header (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`): a request a reverse proxy
    on the same host relays is not a local caller.
    """
    if token is not None:
        if authorization is None:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        return scheme.lower() == "bearer" and _same(value.strip(), token)
    if any(name in headers for name in PROXY_HEADERS):
        return False
    return is_loopback(client_host)


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
