"""End-to-end fixtures: a private Prosody, the real server as a subprocess, XMPP users.

The whole directory is skipped, with the reason, only when Prosody is not installed
(`.ci/run` installs it, so in CI these tests always run).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from e2e.harness import (
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


@pytest.fixture(scope="session")
def prosody(e2e_dir: Path) -> Iterator[PrivateProsody]:
    """A private Prosody for capulet.lit on free ports, with every test user registered."""
    require_prosody()
    settings = ProsodySettings(
        domain=DOMAIN,
        component_jid=SERVICE,
        component_secret=secrets.token_hex(16),
        base_dir=e2e_dir / "prosody",
        c2s_port=free_port(),
        component_port=free_port(),
    )
    instance = PrivateProsody(settings)
    instance.start()
    try:
        for user in USERS:
            instance.register(user, password_of(user))
        yield instance
    finally:
        instance.stop()


def write_server_config(directory: Path, prosody: PrivateProsody, storage_url: str) -> Path:
    s = prosody.settings
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
                f'component_jid = "{s.component_jid}"',
                f'secret = "{s.component_secret}"',
                f'host = "{s.interface}"',
                f"port = {s.component_port}",
                "",
            ]
        )
    )
    return path


@pytest.fixture(scope="session")
def server(e2e_dir: Path, prosody: PrivateProsody) -> Iterator[ServerProcess]:
    """`buddycloud serve` connected to the private Prosody, on SQLite; one per session.

    Tests that kill or restart it leave it running again when they finish.
    """
    workdir = e2e_dir / "server"
    workdir.mkdir()
    config = write_server_config(workdir, prosody, f"sqlite:///{workdir / 'buddycloud.db'}")
    process = ServerProcess(config, workdir, prosody.settings.c2s_port)
    process.start()
    try:
        yield process
    finally:
        status = process.stop()
        # A clean shutdown on SIGTERM is part of what is tested.
        assert status == 0, f"the server exited with {status} on SIGTERM\n{process.log_tail()}"


@pytest.fixture
async def connect(server: ServerProcess, prosody: PrivateProsody) -> AsyncIterator[Connect]:
    """`await connect("juliet")`: a logged-in user, online for the service; closed after."""
    clients: list[Client] = []

    async def _connect(user: str, *, presence: bool = True, resource: str = "e2e") -> Client:
        client = Client(user, prosody.settings.c2s_port, resource=resource)
        clients.append(client)
        await client.connect(presence=presence)
        return client

    try:
        yield _connect
    finally:
        for client in clients:
            await client.disconnect()


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
