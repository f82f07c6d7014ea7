"""The composition root: builds the object graph from the configuration and runs it.

This is the one module that imports concrete implementations from every layer (storage
backends, the engine, the XMPP edge, the private Prosody). Everything else receives its
collaborators through its constructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from buddycloud.config import Config, XmppConfig
from buddycloud.domain.jid import Jid
from buddycloud.federation.client import RemoteServers
from buddycloud.federation.discovery import ServerDiscovery
from buddycloud.federation.dns import DnsTxtLookup
from buddycloud.federation.inbox import INBOX_ROUTE, handle_inbox
from buddycloud.federation.outbox import Outbox
from buddycloud.http.app import create_app
from buddycloud.http.auth import Authenticator, AuthSettings
from buddycloud.http.live import LiveHub
from buddycloud.http.metrics import Metrics
from buddycloud.http.pages import DEFAULT_MAX_BYTES as DEFAULT_PAGE_BYTES
from buddycloud.http.pages import PageCache
from buddycloud.http.remote import RemoteCheck
from buddycloud.http.requests import DEFAULT_MAX_BODY, HttpContext
from buddycloud.http.server import HttpServer
from buddycloud.http.websocket import SocketSettings
from buddycloud.prosody import PrivateProsody, ProsodySettings, ProsodyStartFailed
from buddycloud.services.config import EngineConfig
from buddycloud.services.engine import Engine
from buddycloud.services.ports import Clock, PasswordCheck
from buddycloud.storage.base import Storage, redact_url
from buddycloud.storage.factory import open_storage
from buddycloud.util.clock import SystemClock
from buddycloud.util.mail import SmtpMailer
from buddycloud.xmpp.admin import XmppAccounts
from buddycloud.xmpp.c2s import C2sPasswordCheck
from buddycloud.xmpp.component import ChannelComponent

log = logging.getLogger(__name__)

# How long `run` waits for the first component handshake before saying so in the log; the
# component keeps reconnecting on its own either way.
CONNECT_NOTICE_SECONDS = 10.0
DEFAULT_C2S_PORT = 5222
# Only read by `serve --with-prosody`: the private Prosody's client port.
C2S_PORT_VARIABLE = "BUDDYCLOUD_PROSODY_C2S_PORT"
SECRET_FILE = "component.secret"
ADMIN_SECRET_FILE = "admin.secret"
# The collector's thresholds while serving: a young collection every 10,000 net container
# allocations instead of 700, older generations as rarely as the defaults allow.
SERVING_GC_THRESHOLDS = (10_000, 10, 10)


@dataclass(slots=True)
class App:
    """The running server's parts.

    Attributes:
        config: the configuration it was built from.
        storage: the open storage backend.
        engine: the channel engine over that storage.
        component: the XMPP edge, or None when no [xmpp] section is configured.
        http: the HTTP edge (REST API and websocket), on `[http] listen`.
        metrics: the server's Prometheus collectors, served at `/metrics`.
        outbox: federation's outbound delivery, or None without XMPP.
    """

    config: Config
    storage: Storage
    engine: Engine
    component: ChannelComponent | None
    http: HttpServer
    metrics: Metrics
    closers: list[Callable[[], Awaitable[None]]] = dataclasses.field(default_factory=list)
    outbox: Outbox | None = None

    async def start(self) -> None:
        """Start the edges: the HTTP edge listens before this returns; the XMPP component
        starts connecting and returns at once.

        Raises:
            OSError: `[http] listen` cannot be listened on.
        """
        await self.http.start()
        if self.component is not None:
            # Nobody is online for a component that has just started: temporary
            # subscriptions left over from the last run end now.
            ended = await self.engine.forget_temporary_subscriptions()
            if ended:
                log.info("ended %d temporary subscriptions left from the last run", ended)
            await self.component.start()
        if self.outbox is not None:
            await self.outbox.start()

    async def close(self) -> None:
        """Stop the edges, then close the storage. Safe to call twice."""
        try:
            await self.http.stop()
            if self.outbox is not None:
                await self.outbox.stop()
            if self.component is not None:
                await self.component.stop()
            for close in self.closers:
                await close()
        finally:
            await self.storage.close()


def engine_config(config: Config) -> EngineConfig:
    """The engine's settings from the `[server]` (and `[xmpp]`) configuration.

    Without `[xmpp]` the service JID is `channels.<domain>`, the name `--with-prosody`
    gives the component: item ids built from it (`tag:<service>,...`) stay stable when an
    XMPP edge is added later under that conventional name.
    """
    server = config.server
    service_jid = (
        config.xmpp.component_jid
        if config.xmpp is not None
        else Jid("", f"channels.{server.domain.domain}")
    )
    return EngineConfig(
        domain=server.domain.domain,
        service_jid=service_jid,
        topics_domain=server.topics_domain.domain,
        well_known_nodes=server.well_known_nodes,
        max_payload_bytes=server.max_payload_bytes,
        personal_access_model=server.personal_access_model,
        personal_default_role=server.personal_default_role,
        topic_access_model=server.topic_access_model,
        topic_default_role=server.topic_default_role,
        anonymous_domains=frozenset(server.anonymous_domains),
        backfill=config.federation.backfill,
    )


def federate(config: Config, engine: Engine, component: ChannelComponent, clock: Clock) -> Outbox:
    """Federation from `[federation]`: the engine reaches other domains' channels through
    `component`, and events on its own channels go to the domains that follow them, whose
    users' home servers notify them (so this server's Notifier does not)."""
    remote = remote_servers(config, component, clock)
    engine.use_remote(remote)
    federation = config.federation
    outbox = Outbox(
        engine,
        remote.discovery,
        component.notifier,
        component.request,
        retry_max=federation.retry_max,
        timeout=federation.request_timeout,
    )
    engine.add_listener(outbox)
    component.heard_from = outbox.heard_from
    component.on_connected = outbox.retry_now
    component.notifier.home_delivers = engine.delivered_by_home_server
    return outbox


def remote_servers(config: Config, component: ChannelComponent, clock: Clock) -> RemoteServers:
    """Federation from `[federation]`: other domains' channels, reached through `component`."""
    federation = config.federation
    discovery = ServerDiscovery(
        component.query,
        DnsTxtLookup(federation.nameservers, timeout=federation.dns_timeout),
        own_domain=config.server.domain.domain,
        own_jid=component.jid,
        ttl=federation.discovery_ttl,
        failure_ttl=federation.failure_ttl,
    )
    return RemoteServers(discovery, component.request, clock, timeout=federation.request_timeout)


def _owned_by_this_process(url: str) -> bool:
    """Whether every write to the storage passes through this process's engine: SQLite's
    one writer; a PostgreSQL database may be shared by several processes."""
    return url.startswith("sqlite")


def _migrates_on_open(url: str) -> bool:
    # The embedded default (SQLite) creates its schema on first start, so that
    # `buddycloud serve` works out of the box. A PostgreSQL schema is shared by several
    # processes and is upgraded deliberately with `buddycloud migrate` (docs/config.md).
    return url.startswith("sqlite")


async def build(config: Config) -> App:
    """Open the storage and wire the engine and the configured edges. Nothing starts yet.

    Raises:
        SchemaVersionMismatch: a PostgreSQL database is empty or at another schema version
            (run `buddycloud migrate`).
        ValueError: the storage URL is not usable.
    """
    metrics = Metrics()
    storage = await open_storage(
        config.storage.url,
        migrate=_migrates_on_open(config.storage.url),
        observe_write=metrics.observe_storage_write,
    )
    try:
        clock = SystemClock()
        engine = Engine(storage, clock, engine_config(config))
        engine.add_listener(metrics.count_event)
        component = None
        outbox = None
        xmpp_connected = None
        if config.xmpp is not None:
            component = ChannelComponent(
                engine,
                config.xmpp.component_jid,
                config.xmpp.secret,
                config.xmpp.host,
                config.xmpp.port,
                max_payload_bytes=config.server.max_payload_bytes,
                multicast=config.xmpp.multicast,
                server_domain=config.server.domain.domain,
                max_stanza_bytes=config.xmpp.max_stanza_bytes,
                reconnect_queue_bytes=config.xmpp.reconnect_queue_bytes,
            )
            # The HTTP edge and the metrics read the connection state through this
            # callable: neither knows the XMPP edge.
            xmpp_connected = component.connected.is_set
            metrics.watch_xmpp(xmpp_connected)
            outbox = federate(config, engine, component, clock)
            # Other domains' channel servers send the events of the channels this
            # server's users follow to its inbox.
            component.router.add_route(INBOX_ROUTE, handle_inbox)
        _use_account_directory(engine, config, warn=True)
        if config.mail is not None:
            mail = config.mail
            engine.use_mail(
                SmtpMailer(
                    mail.host, mail.port, mail.sender, mail.starttls, mail.user, mail.password
                ),
                reset_url=mail.reset_url,
                reset_lifetime=timedelta(seconds=mail.reset_lifetime),
            )
        checks: dict[str, PasswordCheck] = {}
        closers: list[Callable[[], Awaitable[None]]] = []
        if config.auth.remote_url is not None and "remote" in config.auth.methods:
            remote = RemoteCheck(config.auth.remote_url, config.auth.remote_timeout)
            checks["remote"] = remote
            closers.append(remote.close)
        if config.xmpp is not None and "xmpp" in config.auth.methods:
            checks["xmpp"] = C2sPasswordCheck(
                config.xmpp.c2s_host, config.xmpp.c2s_port, config.auth.remote_timeout
            )
        http = _http_edge(config, engine, metrics, xmpp_connected, checks)
    except BaseException:
        await storage.close()
        raise
    return App(
        config=config,
        storage=storage,
        engine=engine,
        component=component,
        http=http,
        metrics=metrics,
        closers=closers,
        outbox=outbox,
    )


@contextlib.asynccontextmanager
async def open_engine(config: Config) -> AsyncIterator[Engine]:
    """The engine over the configured storage, without edges (`buddycloud user`).

    The storage opens as `serve` opens it (an SQLite schema is created or upgraded on
    the way) and closes on exit.
    """
    storage = await open_storage(config.storage.url, migrate=_migrates_on_open(config.storage.url))
    try:
        engine = Engine(storage, SystemClock(), engine_config(config))
        _use_account_directory(engine, config, warn=False)
        yield engine
    finally:
        await storage.close()


def account_directory(config: Config) -> XmppAccounts | None:
    """The XMPP twins of the built-in accounts, from `[xmpp] admin_jid` (None without)."""
    xmpp = config.xmpp
    if xmpp is None or xmpp.admin_jid is None or xmpp.admin_password is None:
        return None
    return XmppAccounts(
        xmpp.admin_jid,
        xmpp.admin_password,
        config.server.domain.domain,
        xmpp.c2s_host,
        xmpp.c2s_port,
        config.auth.remote_timeout,
    )


def _use_account_directory(engine: Engine, config: Config, *, warn: bool) -> None:
    directory = account_directory(config)
    if directory is not None:
        engine.use_account_directory(directory)
    elif warn and config.xmpp is not None and "database" in config.auth.methods:
        log.warning(
            "accounts of the built-in user database get no XMPP account, so their "
            "passwords do not work in XMPP clients: set [xmpp] admin_jid and admin_password "
            "(docs/auth.md)"
        )


def _http_edge(
    config: Config,
    engine: Engine,
    metrics: Metrics,
    xmpp_connected: Callable[[], bool] | None,
    checks: Mapping[str, PasswordCheck],
) -> HttpServer:
    """The HTTP edge from `[http]`: the application, its live hub and the server."""
    settings = config.http
    sockets = SocketSettings(
        send_queue=settings.ws_send_queue,
        # A message carries a request body (at most DEFAULT_MAX_BODY) and its envelope.
        max_frame=DEFAULT_MAX_BODY + 64 * 1024,
        ping_seconds=settings.ws_ping_seconds,
    )
    context = HttpContext(
        engine=engine,
        authenticator=Authenticator(engine, auth_settings(config), checks=checks),
        metrics=metrics,
        metrics_token=settings.metrics_token,
        xmpp_connected=xmpp_connected,
        access_log=settings.access_log,
        hub=LiveHub(settings.replay_events),
        pages=PageCache(DEFAULT_PAGE_BYTES if _owned_by_this_process(config.storage.url) else 0),
        sockets=sockets,
        long_poll_seconds=settings.long_poll_seconds,
    )
    return HttpServer(
        create_app(context),
        settings.host,
        settings.port,
        ping_seconds=settings.ws_ping_seconds,
        max_frame=4 * sockets.max_frame,
    )


def auth_settings(config: Config) -> AuthSettings:
    """The HTTP edge's sign-in settings from `[auth]`."""
    auth = config.auth
    return AuthSettings(
        methods=auth.methods,
        secret=auth.secret,
        token_key=auth.token_key,
        token_lifetime=auth.token_lifetime,
        session_lifetime=auth.session_lifetime,
        cache_seconds=auth.cache_seconds,
        max_account_failures=auth.max_account_failures,
        max_address_failures=auth.max_address_failures,
        failure_window=auth.failure_window,
    )


def data_directory(config: Config) -> Path:
    """Where local state lives: the SQLite file's directory, else `./data`."""
    url = config.storage.url
    if url.startswith("sqlite"):
        path = url.partition("://")[2][1:]  # sqlite:///rel -> "rel", sqlite:////abs -> "/abs"
        if path and path != ":memory:":
            return Path(path).parent
    return Path("data")


def _component_secret(directory: Path, name: str = SECRET_FILE) -> str:
    """The secret kept in `directory`/`name`, generated (0600) on first use."""
    path = directory / name
    with contextlib.suppress(FileNotFoundError):
        existing = path.read_text().strip()
        if existing:
            return existing
    directory.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(value + "\n")
    return value


def _c2s_port(environ: Mapping[str, str]) -> int:
    raw = environ.get(C2S_PORT_VARIABLE)
    if raw is None:
        return DEFAULT_C2S_PORT
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"{C2S_PORT_VARIABLE} must be a port number, got {raw!r}")
    return int(raw)


def private_prosody(
    config: Config, *, c2s_port: int = DEFAULT_C2S_PORT
) -> tuple[Config, PrivateProsody]:
    """A private Prosody for the configured domain, and the configuration wired to it.

    The Prosody lives in `<data directory>/prosody`. The component JID, host and port come
    from `[xmpp]` when present, else `channels.<domain>` on 127.0.0.1:5347; the secret from
    `[xmpp]`, else one generated once and kept in that directory.
    """
    domain = config.server.domain.domain
    base_dir = (data_directory(config) / "prosody").resolve()
    if config.xmpp is not None:
        xmpp = config.xmpp
    else:
        xmpp = XmppConfig(
            component_jid=Jid("", f"channels.{domain}"),
            secret=_component_secret(base_dir),
        )
    # The XMPP twins of the built-in accounts are made by an administrator of this
    # Prosody: the configured one, else one of its own host, registered at every start.
    if xmpp.admin_jid is None or xmpp.admin_password is None:
        xmpp = dataclasses.replace(
            xmpp,
            admin_jid=Jid("buddycloud", f"admin.{domain}"),
            admin_password=_component_secret(base_dir, ADMIN_SECRET_FILE),
        )
    assert xmpp.admin_jid is not None
    admin_host = xmpp.admin_jid.domain if xmpp.admin_jid.domain != domain else None
    # The `xmpp` sign-in method and XMPP accounts go to this Prosody's client port.
    xmpp = dataclasses.replace(xmpp, c2s_host=xmpp.host, c2s_port=c2s_port)
    settings = ProsodySettings(
        domain=domain,
        component_jid=str(xmpp.component_jid),
        component_secret=xmpp.secret,
        base_dir=base_dir,
        c2s_port=c2s_port,
        component_port=xmpp.port,
        interface=xmpp.host,
        anonymous_host=f"anon.{domain}",
        admins=(str(xmpp.admin_jid),),
        admin_host=admin_host,
    )
    return dataclasses.replace(config, xmpp=xmpp), PrivateProsody(settings)


def start_private_prosody(prosody: PrivateProsody, config: Config) -> None:
    """Start the private Prosody and (re)register the administrator `private_prosody`
    configured, with its password. Blocks.

    Raises:
        ProsodyError: see `PrivateProsody.start` and `PrivateProsody.register`.
    """
    prosody.start()
    xmpp = config.xmpp
    if xmpp is not None and xmpp.admin_jid is not None and xmpp.admin_password is not None:
        prosody.register(xmpp.admin_jid.local, xmpp.admin_password, xmpp.admin_jid.domain)


def connection_help(prosody: PrivateProsody) -> str:
    """What a person needs to connect an XMPP client to the private Prosody."""
    s = prosody.settings
    lines = [
        f"Private Prosody for {s.domain} is running (log: {s.log_path}).",
        f"  XMPP clients: connect to {s.interface}:{s.c2s_port} as <user>@{s.domain}; "
        "no TLS, plain password authentication.",
        "  Create a user: POST /api/account or `buddycloud user add` (the same name and "
        "password work here too), in-band registration from the client, or",
        f"    prosodyctl --config {s.config_path} register <user> {s.domain} <password>",
        f"  Channel server: {s.component_jid} (send it <query xmlns='jabber:iq:register'/> "
        "once to create your channel).",
    ]
    if s.anonymous_host is not None:
        lines.append(
            f"  Guests: SASL ANONYMOUS on {s.anonymous_host}; they read, and follow while "
            "online (a temporary subscription)."
        )
    return "\n".join(lines)


async def run(
    config: Config,
    *,
    with_prosody: bool = False,
    stop: asyncio.Event | None = None,
    out: TextIO | None = None,
) -> None:
    """Run the server until SIGINT or SIGTERM (or until `stop` is set), then shut down.

    Args:
        config: the validated configuration.
        with_prosody: also run a private Prosody for the configured domain and connect the
            component to it; it is stopped on exit.
        stop: an event that ends the run when set (tests); signals always do.
        out: where the connection instructions are printed; stdout by default.
    """
    stop = stop if stop is not None else asyncio.Event()
    out = out if out is not None else sys.stdout
    loop = asyncio.get_running_loop()
    installed = _install_signal_handlers(loop, stop.set)
    prosody: PrivateProsody | None = None
    try:
        if with_prosody:
            config, prosody = private_prosody(config, c2s_port=_c2s_port(os.environ))
            try:
                await asyncio.to_thread(start_private_prosody, prosody, config)
            except ProsodyStartFailed as exc:
                if exc.log_tail:
                    log.error("the private Prosody failed; its log ends with:\n%s", exc.log_tail)
                raise
        app = await build(config)
        try:
            await app.start()
            _announce(app, prosody, out)
            with _settled_garbage_collector():
                if app.component is not None:
                    await _notice_connection(app.component, stop)
                await stop.wait()
            log.info("shutting down")
        finally:
            await app.close()
    finally:
        if prosody is not None:
            await asyncio.to_thread(prosody.stop)
        for signum in installed:
            loop.remove_signal_handler(signum)


@contextlib.contextmanager
def _settled_garbage_collector() -> Iterator[None]:
    """Serve with everything built at start-up out of the cyclic collector's sight.

    After start-up the process holds ~85,000 long-lived objects (modules, the storage
    layer's compiled statements, the XMPP library); every full collection walked them all
    (~60 ms), and at the default threshold young collections ran every few publishes. The
    server's own garbage is nearly all freed by reference counting, so this costs no memory
    growth worth naming. Measured with bench/component_cpu.py (docs/benchmarks.md): the
    collector took ~40 us of CPU per publish before, ~0 after. Restored on exit, since tests
    run servers inside their own process.
    """
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _announce(app: App, prosody: PrivateProsody | None, out: TextIO) -> None:
    log.info("storage open: %s", redact_url(app.config.storage.url))
    if app.config.xmpp is None:
        log.info("no XMPP: add an [xmpp] section or run with --with-prosody to serve XMPP clients")
    else:
        log.info(
            "XMPP component %s connecting to %s:%s",
            app.config.xmpp.component_jid,
            app.config.xmpp.host,
            app.config.xmpp.port,
        )
    if prosody is not None:
        print(connection_help(prosody), file=out, flush=True)


async def _notice_connection(component: ChannelComponent, stop: asyncio.Event) -> None:
    """Wait for the first handshake (or a stop); log once if it is slow.

    Raises:
        ComponentRefused: the XMPP server refused the component or could not be reached
            on the first attempt: the server does not start (later outages are retried).
    """
    first = asyncio.ensure_future(component.first_connection())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {first, stopped}, timeout=CONNECT_NOTICE_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            log.warning(
                "the XMPP component has not connected after %.0f s; still waiting",
                CONNECT_NOTICE_SECONDS,
            )
            done, _ = await asyncio.wait({first, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if first in done:
            first.result()  # raises ComponentRefused
    finally:
        for task in (first, stopped):
            task.cancel()


def _install_signal_handlers(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
) -> list[signal.Signals]:
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, callback)
        except (NotImplementedError, RuntimeError):
            # Not the main thread (or not Unix): the caller stops us through `stop`.
            continue
        installed.append(signum)
    return installed
