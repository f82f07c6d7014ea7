"""End-to-end fixtures: a private XMPP server, the real server as a subprocess, XMPP users.

The suite runs through Prosody 0.12 and again through ejabberd 23.01 (`xmpp_server` is
parametrised). A variant is skipped, with the reason, only when its XMPP server is not
installed (`.ci/run` installs both, so in CI every test runs).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dnsmasq_support import running_dnsmasq
from dnsmasq_support import unavailable_reason as dnsmasq_unavailable
from e2e.ejabberd import PrivateEjabberd
from e2e.ejabberd import unavailable_reason as ejabberd_unavailable
from e2e.federation import TXT_RECORDS, TwoDomains, start_prosody_pair, stop_all
from e2e.harness import (
    ANON_DOMAIN,
    DOMAIN,
    REGISTER,
    SERVICE,
    TOPICS_DOMAIN,
    USERS,
    Client,
    ServerProcess,
    password_of,
)

from buddycloud.prosody import PrivateProsody, ProsodySettings, free_port, is_installed

Connect = Callable[..., Awaitable[Client]]
XMPP_SERVERS = ["prosody", "ejabberd"]
ADMIN = f"admin@{DOMAIN}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


def require_prosody() -> None:
    if not is_installed():
        pytest.skip(
            "end-to-end tests need Prosody 0.12 ('prosody' and 'prosodyctl' on PATH; "
            "Debian: apt-get install -y prosody)"
        )


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@dataclass(frozen=True)
class XmppServer:
    """The running XMPP server the channel server connects to, whichever it is."""

    name: str
    c2s_port: int
    component_port: int
    interface: str
    component_secret: str
    restart: Callable[[], None]
    # The administrator the channel server makes the XMPP twins of its accounts with.
    admin_jid: str = ADMIN
    admin_password: str = password_of("admin")


def _prosody(base_dir: Path) -> Iterator[XmppServer]:
    require_prosody()
    settings = ProsodySettings(
        domain=DOMAIN,
        component_jid=SERVICE,
        component_secret=secrets.token_hex(16),
        base_dir=base_dir,
        c2s_port=free_port(),
        component_port=free_port(),
        anonymous_host=ANON_DOMAIN,
        admins=(ADMIN,),
    )
    instance = PrivateProsody(settings)
    instance.start()
    try:
        for user in (*USERS, "admin"):
            instance.register(user, password_of(user))
        yield XmppServer(
            "prosody",
            settings.c2s_port,
            settings.component_port,
            settings.interface,
            settings.component_secret,
            instance.restart,
        )
    finally:
        instance.stop()


def _ejabberd() -> Iterator[XmppServer]:
    reason = ejabberd_unavailable()
    if reason is not None:
        pytest.skip(f"the ejabberd variant of the end-to-end tests needs ejabberd 23.01: {reason}")
    instance = PrivateEjabberd(
        DOMAIN, SERVICE, secrets.token_hex(16), anonymous_host=ANON_DOMAIN, admins=(ADMIN,)
    )
    try:
        instance.start()
        for user in (*USERS, "admin"):
            instance.register(user, password_of(user))
        yield XmppServer(
            "ejabberd",
            instance.c2s_port,
            instance.component_port,
            instance.interface,
            instance.component_secret,
            instance.restart,
        )
    finally:
        instance.cleanup()


@pytest.fixture(scope="session", params=XMPP_SERVERS)
def xmpp_server(request: pytest.FixtureRequest, e2e_dir: Path) -> Iterator[XmppServer]:
    """A private XMPP server for capulet.lit on free ports, every test user registered.

    Parametrised: the suite runs once through Prosody 0.12 and once through ejabberd 23.01.
    """
    if request.param == "prosody":
        yield from _prosody(e2e_dir / "prosody")
    else:
        yield from _ejabberd()


NO_NAMESERVER = "127.0.0.1:9"  # the discard port: nobody listens there


def write_server_config(directory: Path, xmpp: XmppServer, storage_url: str) -> Path:
    path = directory / "buddycloud.toml"
    path.write_text(
        "\n".join(
            [
                "[server]",
                f'domain = "{DOMAIN}"',
                f'topics_domain = "{TOPICS_DOMAIN}"',
                "[storage]",
                f'url = "{storage_url}"',
                "[xmpp]",
                f'component_jid = "{SERVICE}"',
                f'secret = "{xmpp.component_secret}"',
                f'host = "{xmpp.interface}"',
                f"port = {xmpp.component_port}",
                f"c2s_port = {xmpp.c2s_port}",
                # Built-in accounts get XMPP twins (docs/auth.md).
                f'admin_jid = "{xmpp.admin_jid}"',
                f'admin_password = "{xmpp.admin_password}"',
                "[http]",
                'listen = "127.0.0.1:0"',
                # A request about another domain's channel (any JID a test or the fuzz test
                # makes up) looks that domain up in DNS: here, where nothing answers, never
                # in the machine's resolver, so that no lookup leaves the machine.
                # Users of the XMPP server sign in over HTTP with their XMPP password.
                "[auth]",
                'methods = ["database", "xmpp"]',
                "[federation]",
                f'nameservers = ["{NO_NAMESERVER}"]',
                "dns_timeout = 1",
                "",
            ]
        )
    )
    return path


@pytest.fixture(scope="session")
def server(e2e_dir: Path, xmpp_server: XmppServer) -> Iterator[ServerProcess]:
    """`buddycloud serve` connected to the private XMPP server, on SQLite.

    Tests that kill or restart it leave it running again when they finish.
    """
    workdir = e2e_dir / f"server-{xmpp_server.name}"
    workdir.mkdir()
    config = write_server_config(workdir, xmpp_server, f"sqlite:///{workdir / 'buddycloud.db'}")
    process = ServerProcess(config, workdir, xmpp_server.c2s_port)
    process.start()
    try:
        yield process
    finally:
        status = process.stop()
        # A clean shutdown on SIGTERM is part of what is tested.
        assert status == 0, f"the server exited with {status} on SIGTERM\n{process.log_tail()}"


@pytest.fixture
async def connect(server: ServerProcess, xmpp_server: XmppServer) -> AsyncIterator[Connect]:
    """`await connect("juliet")`: a logged-in user, online for the service; closed after."""
    clients: list[Client] = []

    async def _connect(user: str | None, *, presence: bool = True, resource: str = "e2e") -> Client:
        client = Client(user, xmpp_server.c2s_port, resource=resource)
        clients.append(client)
        await client.connect(presence=presence)
        return client

    try:
        yield _connect
    finally:
        for client in clients:
            await client.disconnect()


@pytest.fixture
async def guest(connect: Connect) -> Client:
    """An anonymous guest (SASL ANONYMOUS on anon.capulet.lit), online for the service."""
    return await connect(None)


async def _registered(connect: Connect, user: str) -> Client:
    client = await connect(user)
    await client.ok("set", REGISTER)
    return client


@pytest.fixture
async def juliet(connect: Connect) -> Client:
    return await _registered(connect, "juliet")


@pytest.fixture
async def romeo(connect: Connect) -> Client:
    return await _registered(connect, "romeo")


@pytest.fixture
async def benvolio(connect: Connect) -> Client:
    return await _registered(connect, "benvolio")


@pytest.fixture
async def tybalt(connect: Connect) -> Client:
    return await _registered(connect, "tybalt")


@pytest.fixture
async def mercutio(connect: Connect) -> Client:
    return await _registered(connect, "mercutio")


@pytest.fixture
async def paris(connect: Connect) -> Client:
    return await _registered(connect, "paris")


@pytest.fixture
def unique() -> str:
    """A fresh name, so tests sharing the session's server never collide."""
    return uuid.uuid4().hex[:10]


# --- two federated domains ----------------------------------------------------------------

FederatedConnect = Callable[..., Awaitable[Client]]


@pytest.fixture(scope="session")
def two_domains(e2e_dir: Path) -> Iterator[TwoDomains]:
    """capulet.lit and montague.lit, each a private Prosody with its own channel server,
    federating over s2s on loopback (tests/e2e/federation.py)."""
    require_prosody()
    reason = dnsmasq_unavailable()
    if reason is not None:
        pytest.skip(reason)
    base = e2e_dir / "federation"
    base.mkdir()
    with running_dnsmasq(TXT_RECORDS, base) as nameserver:
        pair = start_prosody_pair(base, nameserver)
        try:
            for domain in pair:
                domain.start_server()
            yield pair
        finally:
            problems = stop_all(pair)
            assert not problems, "; ".join(problems)


@pytest.fixture
async def federated(two_domains: TwoDomains) -> AsyncIterator[FederatedConnect]:
    """`await federated("romeo@montague.lit")`: a logged-in user of either domain, online
    for their home channel server and registered there; closed after the test."""
    clients: list[Client] = []

    async def _connect(jid: str, *, register: bool = True, resource: str = "e2e") -> Client:
        user, _, domain = jid.partition("@")
        client = two_domains.domain(domain).client(user, resource=resource)
        clients.append(client)
        await client.connect()
        if register:
            await client.ok("set", REGISTER)
        return client

    try:
        yield _connect
    finally:
        for client in clients:
            await client.disconnect()
