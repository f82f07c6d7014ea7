"""The `buddycloud` command line: what an operator types and sees."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import types
from pathlib import Path

import pytest

from buddycloud import __version__
from buddycloud.cli import main
from buddycloud.config import Config, load_config
from buddycloud.domain.errors import NodeNotFound
from buddycloud.domain.jid import Jid
from buddycloud.storage.factory import open_storage


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `python -m buddycloud ARGS` in a child process, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "buddycloud", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
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
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("buddycloud: error: ")
    assert "127.0.0.1" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr
