"""The `buddycloud` command line: what an operator types and sees."""

from __future__ import annotations

import os
import select
import sqlite3
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path

import pytest

from buddycloud import __version__
from buddycloud.cli import main
from buddycloud.config import Config, load_config
from buddycloud.domain.errors import NodeNotFound
from buddycloud.domain.jid import Jid
from buddycloud.storage.factory import open_storage


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `python -m buddycloud ARGS` in a child process, as an operator would, with
    `stdin` as its standard input (none at all when None)."""
    return subprocess.run(
        [sys.executable, "-m", "buddycloud", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("buddycloud: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# --- through a child process -----------------------------------------------------------


def test_version_prints_name_and_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"buddycloud {__version__}"


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "serve" in result.stdout
    assert "migrate" in result.stdout
    assert "user" in result.stdout


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    assert_one_line_error(run_cli(cwd=tmp_path), "required", "--help")


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("start", cwd=tmp_path), "invalid choice: 'start'")


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("serve", "--verbose", cwd=tmp_path), "--verbose")


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = run_cli("serve", "--config", str(missing), cwd=tmp_path)
    assert_one_line_error(result, str(missing), "no such configuration file")


def test_bad_config_value_names_file_section_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[xmpp]\ncomponent_jid = "channels.a.lit"\nsecret = "x"\nport = 0\n')
    result = run_cli("migrate", "--config", str(config), cwd=tmp_path)
    assert_one_line_error(result, str(config), "[xmpp] port", "between 1 and 65535")


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    result = run_cli("serve", cwd=tmp_path, env={"BUDDYCLOUD_HTTP_LISTEN": "everywhere"})
    assert_one_line_error(result, "BUDDYCLOUD_HTTP_LISTEN", "[http] listen")


def test_invalid_toml_is_reported_on_one_line(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[server\ndomain = 'a.lit'\n")
    result = run_cli("serve", "--config", str(config), cwd=tmp_path)
    assert_one_line_error(result, str(config), "not valid TOML")


# --- wiring, with the server's entry points replaced by recorders ----------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Stands in for buddycloud.app; records each `run` and awaits like the real one."""
    recorder = Recorder()
    module = types.ModuleType("buddycloud.app")

    async def run(config: Config, *, with_prosody: bool) -> None:
        recorder.calls.append((config, with_prosody))

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "buddycloud.app", module)
    return recorder


@pytest.fixture
def fake_factory(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Stands in for buddycloud.storage.factory; records each `migrate`."""
    recorder = Recorder()
    module = types.ModuleType("buddycloud.storage.factory")

    def migrate(url: str) -> None:
        recorder.calls.append((url,))

    module.migrate = migrate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "buddycloud.storage.factory", module)
    return recorder


def test_serve_without_config_runs_the_embedded_default(fake_app: Recorder) -> None:
    assert main(["serve"], environ={}) == 0
    assert fake_app.calls == [(Config(), False)]


def test_serve_runs_the_configured_server_with_prosody(fake_app: Recorder, tmp_path: Path) -> None:
    config_file = tmp_path / "capulet.toml"
    config_file.write_text(
        '[server]\ndomain = "capulet.lit"\n'
        '[xmpp]\ncomponent_jid = "channels.capulet.lit"\nsecret = "x"\n'
    )
    environ = {"BUDDYCLOUD_HTTP_LISTEN": "127.0.0.1:18080"}
    assert main(["serve", "--config", str(config_file), "--with-prosody"], environ=environ) == 0
    [(config, with_prosody)] = fake_app.calls
    assert config == load_config(config_file, environ)
    assert isinstance(config, Config)
    assert config.server.domain == Jid("", "capulet.lit")
    assert config.http.port == 18080
    assert with_prosody is True


def test_serve_with_a_bad_config_does_not_start(
    fake_app: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "bad.toml"
    config_file.write_text("[http]\nlisten = 'localhost'\n")
    assert main(["serve", "--config", str(config_file)], environ={}) == 2
    assert fake_app.calls == []
    assert capsys.readouterr().err.count("\n") == 1


def test_migrate_migrates_the_configured_storage(fake_factory: Recorder, tmp_path: Path) -> None:
    config_file = tmp_path / "pg.toml"
    config_file.write_text('[storage]\nurl = "postgresql://postgres@127.0.0.1/channels"\n')
    assert main(["migrate", "--config", str(config_file)], environ={}) == 0
    assert fake_factory.calls == [("postgresql://postgres@127.0.0.1/channels",)]


def test_migrate_takes_the_url_from_the_environment(fake_factory: Recorder) -> None:
    environ = {"BUDDYCLOUD_STORAGE_URL": "sqlite:////srv/buddycloud.db"}
    assert main(["migrate"], environ=environ) == 0
    assert fake_factory.calls == [("sqlite:////srv/buddycloud.db",)]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            NodeNotFound("/user/juliet@capulet.lit/posts"),
            "node /user/juliet@capulet.lit/posts does not exist",
        ),
        (PermissionError(13, "Permission denied", "/srv/data"), "Permission denied: /srv/data"),
        (OSError(98, "Address already in use"), "Address already in use"),
    ],
)
def test_a_failure_while_running_is_one_line_and_status_1(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    expected: str,
) -> None:
    module = types.ModuleType("buddycloud.app")

    def run(config: Config, *, with_prosody: bool) -> None:
        raise error

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "buddycloud.app", module)
    assert main(["serve"], environ={}) == 1
    assert capsys.readouterr().err == f"buddycloud: error: {expected}\n"


def test_interrupt_exits_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = types.ModuleType("buddycloud.app")

    def run(config: Config, *, with_prosody: bool) -> None:
        raise KeyboardInterrupt

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "buddycloud.app", module)
    assert main(["serve"], environ={}) == 130
    assert capsys.readouterr().err == ""


# --- the real migration ----------------------------------------------------------------


async def test_migrate_creates_the_default_database_that_the_server_opens(tmp_path: Path) -> None:
    first = run_cli("migrate", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    database = tmp_path / "data" / "buddycloud.db"
    assert database.is_file()
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"channels", "nodes", "memberships", "items"} <= tables

    again = run_cli("migrate", cwd=tmp_path)
    assert again.returncode == 0, again.stderr

    storage = await open_storage(f"sqlite:///{database}")  # refuses an unmigrated schema
    try:
        assert await storage.find_channel(Jid.parse("juliet@localhost")) is None
    finally:
        await storage.close()


def test_migrate_reports_an_unreachable_database_on_one_line(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    result = run_cli(
        "migrate", cwd=tmp_path, env={"BUDDYCLOUD_STORAGE_URL": "postgresql://u@127.0.0.1:1/x"}
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("buddycloud: error: ")
    assert "127.0.0.1" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


# --- buddycloud user: the built-in user database ----------------------------------------

PASSWORD = "balcony-at-midnight"


def user_env(url: str) -> dict[str, str]:
    return {"BUDDYCLOUD_SERVER_DOMAIN": "capulet.lit", "BUDDYCLOUD_STORAGE_URL": url}


def assert_failed(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Status 1 and one line naming what went wrong."""
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("buddycloud: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


async def signs_in(url: str, username: str, password: str) -> bool:
    """Whether the account database at `url` accepts these credentials."""
    from buddycloud.app import open_engine
    from buddycloud.domain.errors import NotAuthenticated

    async with open_engine(load_config(None, user_env(url))) as engine:
        try:
            await engine.authenticate(username, password)
        except NotAuthenticated:
            return False
        return True


async def check_the_account_lifecycle(url: str, name: str, cwd: Path) -> None:
    env = user_env(url)
    jid = f"{name}@capulet.lit"
    added = run_cli(
        "user", "add", name, "--email", f"{name}@example.org", "--password-stdin",
        cwd=cwd, env=env, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout == f"created the account {jid} and its channel\n"
    assert await signs_in(url, name, PASSWORD)

    listed = run_cli("user", "list", cwd=cwd, env=env)
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(f"{jid}\t")]
    address, email, created = line.split("\t")
    assert email == f"{name}@example.org"
    assert created.endswith("Z")

    again = run_cli(
        "user", "add", jid, "--email", "x@example.org", "--password-stdin",
        cwd=cwd, env=env, stdin="another-password\n",
    )  # fmt: skip
    assert_failed(again, f"the account {jid} exists already")
    assert await signs_in(url, name, PASSWORD)

    changed = run_cli(
        "user", "passwd", name, "--password-stdin", cwd=cwd, env=env, stdin="a-new-password\r\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == f"changed the password of {jid}\n"
    assert not await signs_in(url, name, PASSWORD)
    assert await signs_in(url, name, "a-new-password")

    deleted = run_cli("user", "delete", jid, cwd=cwd, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith(f"deleted the account {jid}")
    assert not await signs_in(url, name, "a-new-password")
    assert jid not in run_cli("user", "list", cwd=cwd, env=env).stdout

    for action in (("delete", name), ("passwd", name, "--password-stdin")):
        missing = run_cli("user", *action, cwd=cwd, env=env, stdin="whatever-password\n")
        assert_failed(missing, f"no account {jid}")


async def test_user_add_list_passwd_delete_on_sqlite(tmp_path: Path) -> None:
    await check_the_account_lifecycle(f"sqlite:///{tmp_path}/buddycloud.db", "juliet", tmp_path)


@pytest.mark.postgres
async def test_user_add_list_passwd_delete_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    name = f"juliet{uuid.uuid4().hex[:8]}"
    await check_the_account_lifecycle(postgres_url, name, tmp_path)


def test_user_list_of_an_empty_database_prints_nothing(tmp_path: Path) -> None:
    listed = run_cli("user", "list", cwd=tmp_path, env=user_env(f"sqlite:///{tmp_path}/b.db"))
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("user",), "required: ACTION"),
        (("user", "add", "juliet"), "--email"),
        (("user", "add", "juliet", "--email", "j@e.org", "--password", PASSWORD), "--password-"),
        (("user", "add", "juliet", "--email", "j@e.org", f"--password={PASSWORD}"), "never"),
        (("user", "passwd", "juliet", PASSWORD), "--password-stdin"),
        (("user", "remove", "juliet"), "invalid choice: 'remove'"),
    ],
)
def test_user_command_line_mistakes_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    """A password is never taken from the command line, where `ps` shows it to anyone, nor
    repeated in the error when one was typed there."""
    result = run_cli(*args, cwd=tmp_path, env=user_env(f"sqlite:///{tmp_path}/b.db"))
    assert_one_line_error(result, fragment)
    assert PASSWORD not in result.stderr


async def test_without_a_terminal_the_password_must_come_from_stdin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/buddycloud.db"
    result = run_cli(
        "user", "add", "juliet", "--email", "j@example.org", cwd=tmp_path, env=user_env(url)
    )
    assert_one_line_error(result, "no terminal", "--password-stdin")
    assert accounts_in(tmp_path / "buddycloud.db") == []


@pytest.mark.parametrize(
    ("name", "email", "stdin", "fragment"),
    [
        ("juliet", "j@example.org", "short\n", "at least 8 characters"),
        ("juliet", "j@example.org", "\n", "no password on standard input"),
        ("juliet", "j@example.org", "", "no password on standard input"),
        ("juliet", "not-an-email", PASSWORD + "\n", "not an email address"),
        ("juliet@montague.lit", "j@example.org", PASSWORD + "\n", "of the domain capulet.lit"),
        ("a b", "j@example.org", PASSWORD + "\n", "invalid JID"),
    ],
)
def test_refused_accounts_are_one_line_and_status_1(
    tmp_path: Path, name: str, email: str, stdin: str, fragment: str
) -> None:
    url = f"sqlite:///{tmp_path}/buddycloud.db"
    result = run_cli(
        "user", "add", name, "--email", email, "--password-stdin",
        cwd=tmp_path, env=user_env(url), stdin=stdin,
    )  # fmt: skip
    assert_failed(result, fragment)
    assert accounts_in(tmp_path / "buddycloud.db") == []


def accounts_in(database: Path) -> list[str]:
    """The accounts of an SQLite database, read directly."""
    with sqlite3.connect(database) as connection:
        return [row[0] for row in connection.execute("SELECT jid FROM accounts")]


def run_on_a_terminal(
    *args: str, answers: list[str], cwd: Path, env: dict[str, str]
) -> tuple[int, str]:
    """Runs the command with a pseudo-terminal as stdin, stdout and stderr, typing each
    answer after a prompt that ends in ': '. Returns the exit status and the output."""
    master, slave = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "buddycloud", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60

    def read_some() -> bool:
        nonlocal output
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no output in time; so far: {output!r}"
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            return False
        output += chunk
        return bool(chunk)

    try:
        for count, answer in enumerate(answers, start=1):
            while output.count(b"Password") < count:
                assert read_some(), output
            os.write(master, answer.encode() + b"\n")
        while read_some():
            pass
        status = process.wait(timeout=60)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return status, output.decode(errors="replace")


async def test_the_password_is_asked_twice_on_the_terminal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/buddycloud.db"
    env = user_env(url)
    args = ("user", "add", "juliet", "--email", "j@example.org")

    status, output = run_on_a_terminal(
        *args, answers=[PASSWORD, "balcony-at-noon"], cwd=tmp_path, env=env
    )
    assert status == 1, output
    assert "the two passwords differ" in output
    assert not await signs_in(url, "juliet", PASSWORD)

    status, output = run_on_a_terminal(*args, answers=[PASSWORD, PASSWORD], cwd=tmp_path, env=env)
    assert status == 0, output
    assert "Password: " in output and "Password again: " in output
    assert PASSWORD not in output  # not echoed
    assert "created the account juliet@capulet.lit" in output
    assert await signs_in(url, "juliet", PASSWORD)


# --- buddycloud federation status ------------------------------------------------------------


async def fill_the_outbox(url: str) -> None:
    from datetime import UTC, datetime

    storage = await open_storage(url, migrate=True)
    try:
        t = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
        await storage.enqueue_outbox(["montague.lit", "verona.lit"], "<event/>", t)
        await storage.enqueue_outbox(["montague.lit"], "<event/>", t)
        await storage.record_outbox_failure(
            "montague.lit", at=t, server="channels.montague.lit", error="no answer within 10 s"
        )
        await storage.record_outbox_failure(
            "montague.lit", at=t, server=None, error="no answer within 10 s"
        )
        [verona] = await storage.read_outbox("verona.lit", max_bytes=100, max_rows=1)
        await storage.delete_outbox(
            "verona.lit", [verona.sequence], at=t, server="channels.montague.lit"
        )
        await storage.enqueue_outbox(["padua.lit"], "<event/>", t)
    finally:
        await storage.close()


async def test_federation_status_lists_each_remote_domain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/buddycloud.db"
    await fill_the_outbox(url)
    result = run_cli("federation", "status", cwd=tmp_path, env=user_env(url))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [line.split("\t") for line in result.stdout.splitlines()] == [
        [
            "montague.lit",
            "channels.montague.lit",
            "2",
            "never",
            "2026-12-07T09:00:00.000Z no answer within 10 s "
            "(2 failed tries since the last delivery)",
        ],
        ["padua.lit", "-", "1", "never", "-"],
        ["verona.lit", "channels.montague.lit", "0", "2026-12-07T09:00:00.000Z", "-"],
    ]


def test_federation_status_of_a_new_server_prints_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/b.db"
    listed = run_cli("federation", "status", cwd=tmp_path, env=user_env(url))
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "", "")
    missing = run_cli("federation", cwd=tmp_path, env=user_env(url))
    assert_one_line_error(missing, "required: ACTION")
