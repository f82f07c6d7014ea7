"""A deployment that cannot start says so in one line naming what and what to do, with exit
status 2 and no traceback: storage through the real PostgreSQL (BUDDYCLOUD_TEST_POSTGRES)
and SQLite, the XMPP server through a real Prosody."""

from __future__ import annotations

import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import _postgres, _run
from sqlalchemy.engine import make_url
from test_cli import run_cli

from buddycloud.prosody import PrivateProsody, ProsodySettings, free_port, is_installed
from buddycloud.storage.factory import migrate

COMMANDS = [("migrate",), ("serve",)]


def assert_one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Status 2, one line on stderr naming each of `fragments`, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("buddycloud: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def run_with(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        *args,
        cwd=cwd,
        env={"BUDDYCLOUD_STORAGE_URL": url, "BUDDYCLOUD_HTTP_LISTEN": "127.0.0.1:0"},
    )


def with_database(admin_url: str, name: str, **changes: str) -> str:
    return make_url(admin_url).set(database=name, **changes).render_as_string(hide_password=False)


@pytest.fixture
def scratch_database(postgres_admin_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    name = f"buddycloud_start_{uuid.uuid4().hex[:12]}"
    _run(_postgres(postgres_admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(postgres_admin_url, name)
    finally:
        _run(_postgres(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_postgresql_database(
    postgres_admin_url: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    name = f"buddycloud_absent_{uuid.uuid4().hex[:8]}"
    url = with_database(postgres_admin_url, name)
    line = assert_one_line(run_with(url, *command, cwd=tmp_path), f"/{name}:", "does not exist")
    assert f"createdb -O {make_url(url).username} {name}" in line
    assert "buddycloud migrate" in line


@pytest.mark.postgres
@pytest.mark.parametrize("command", COMMANDS)
def test_wrong_postgresql_credentials_never_show_the_password(
    postgres_admin_url: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    # A role that does not exist is refused whatever pg_hba.conf trusts.
    role = f"bc_absent_{uuid.uuid4().hex[:8]}"
    url = with_database(postgres_admin_url, "postgres", username=role, password="wrong-password")
    result = run_with(url, *command, cwd=tmp_path)
    line = assert_one_line(result, f"{role}:***@", "refused to sign in", "[storage] url")
    assert "wrong-password" not in result.stderr + result.stdout, line


@pytest.fixture
def role_without_rights(postgres_admin_url: str) -> Iterator[str]:
    """A PostgreSQL role that may sign in and nothing more; its name."""
    role = f"bc_role_{uuid.uuid4().hex[:8]}"
    _run(_postgres(postgres_admin_url, f"CREATE ROLE {role} LOGIN PASSWORD 'its-password'"))
    try:
        yield role
    finally:
        _run(_postgres(postgres_admin_url, f"DROP ROLE IF EXISTS {role}"))


@pytest.mark.postgres
def test_a_role_that_may_not_create_the_schema(
    scratch_database: str, role_without_rights: str, tmp_path: Path
) -> None:
    url = make_url(scratch_database).set(username=role_without_rights, password="its-password")
    shown = url.render_as_string(hide_password=False)
    result = run_with(shown, "migrate", cwd=tmp_path)
    line = assert_one_line(result, "permission denied", "ALTER DATABASE")
    assert "its-password" not in result.stderr, line


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("host", "reason"),
    [("127.0.0.1:1", "Connection refused"), ("host.invalid", "Name or service not known")],
)
def test_an_unreachable_postgresql_host(
    tmp_path: Path, command: tuple[str, ...], host: str, reason: str
) -> None:
    url = f"postgresql://buddycloud:s3cret-pw@{host}/buddycloud"
    result = run_with(url, *command, cwd=tmp_path)
    line = assert_one_line(result, "cannot reach PostgreSQL", reason, "buddycloud:***@")
    assert "s3cret-pw" not in result.stderr, line


@pytest.mark.postgres
def test_a_schema_too_old_is_migrated_by_migrate(scratch_database: str, tmp_path: Path) -> None:
    _run(_postgres(scratch_database, "CREATE TABLE alembic_version (version_num varchar(32))"))
    _run(_postgres(scratch_database, "INSERT INTO alembic_version VALUES ('0001')"))
    # An older schema than 0001 is not made up here: the version alone is what is checked.
    line = assert_one_line(run_with(scratch_database, "serve", cwd=tmp_path), "at version 0001")
    assert "older" in line and "run `buddycloud migrate`" in line


@pytest.mark.postgres
def test_an_empty_database_asks_for_migrate(scratch_database: str, tmp_path: Path) -> None:
    line = assert_one_line(run_with(scratch_database, "serve", cwd=tmp_path), "empty")
    assert "run `buddycloud migrate`" in line
    assert run_with(scratch_database, "migrate", cwd=tmp_path).returncode == 0


@pytest.mark.postgres
@pytest.mark.parametrize("command", COMMANDS)
def test_a_schema_too_new_asks_to_upgrade_the_server(
    scratch_database: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    _run(migrate(scratch_database))
    _run(_postgres(scratch_database, "UPDATE alembic_version SET version_num = '9999'"))
    line = assert_one_line(run_with(scratch_database, *command, cwd=tmp_path), "version 9999")
    assert "upgrade the server" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_sqlite_schema_too_new_asks_to_upgrade_the_server(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = f"sqlite:///{tmp_path}/buddycloud.db"
    _run(migrate(url))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    assert_one_line(run_with(url, *command, cwd=tmp_path), url, "upgrade the server")


def test_a_sqlite_file_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    url = f"sqlite:///{blocker}/buddycloud.db"
    assert_one_line(run_with(url, "migrate", cwd=tmp_path), url, "cannot open the SQLite")


# --- the XMPP server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProsodySettings]:
    if not is_installed():
        pytest.skip("needs Prosody 0.12 (Debian: apt-get install -y prosody)")
    settings = ProsodySettings(
        domain="capulet.lit",
        component_jid="channels.capulet.lit",
        component_secret=secrets.token_hex(16),
        base_dir=tmp_path_factory.mktemp("prosody"),
        c2s_port=free_port(),
        component_port=free_port(),
    )
    instance = PrivateProsody(settings)
    instance.start()
    try:
        yield settings
    finally:
        instance.stop()


def serve_with_xmpp(
    tmp_path: Path, *, jid: str, secret: str, port: int
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "serve",
        cwd=tmp_path,
        env={
            "BUDDYCLOUD_SERVER_DOMAIN": "capulet.lit",
            "BUDDYCLOUD_HTTP_LISTEN": "127.0.0.1:0",
            "BUDDYCLOUD_XMPP_COMPONENT_JID": jid,
            "BUDDYCLOUD_XMPP_SECRET": secret,
            "BUDDYCLOUD_XMPP_PORT": str(port),
        },
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """Status 2, the error on the last line of stderr (the log goes there too)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.splitlines()[-1]
    assert line.startswith("buddycloud: error: "), result.stderr
    return line


def test_a_refused_component_secret(prosody: ProsodySettings, tmp_path: Path) -> None:
    result = serve_with_xmpp(
        tmp_path, jid=prosody.component_jid, secret="not-the-secret", port=prosody.component_port
    )
    line = last_line(result)
    assert f"127.0.0.1:{prosody.component_port}" in line
    assert "not-authorized" in line and "[xmpp] secret" in line
    assert "not-the-secret" not in result.stderr


def test_an_undeclared_component(prosody: ProsodySettings, tmp_path: Path) -> None:
    result = serve_with_xmpp(
        tmp_path,
        jid="pubsub.capulet.lit",
        secret=prosody.component_secret,
        port=prosody.component_port,
    )
    line = last_line(result)
    assert "pubsub.capulet.lit" in line and "[xmpp] component_jid" in line


def test_an_unreachable_xmpp_server(tmp_path: Path) -> None:
    line = last_line(serve_with_xmpp(tmp_path, jid="channels.capulet.lit", secret="x", port=1))
    assert "127.0.0.1:1" in line and "Connection refused" in line and "[xmpp] host" in line
