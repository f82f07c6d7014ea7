"""`buddycloud systemd-unit`: a unit systemd accepts (`systemd-analyze verify`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import run_cli


def verify(unit_text: str, directory: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (Debian: apt-get install -y systemd)")
    path = directory / "buddycloud.service"
    path.write_text(unit_text)
    return subprocess.run(
        ["systemd-analyze", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_printed_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    printed = run_cli("systemd-unit", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    command = Path(sys.executable).parent / "buddycloud"
    assert f"ExecStart={command} serve --config /etc/buddycloud/buddycloud.toml" in printed.stdout
    assert "User=buddycloud" in printed.stdout and "Restart=on-failure" in printed.stdout
    checked = verify(printed.stdout, tmp_path)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")


def test_the_unit_names_the_given_user_config_and_command(tmp_path: Path) -> None:
    printed = run_cli(
        "systemd-unit",
        "--user",
        "channels",
        "--config",
        "/srv/bc/buddycloud.toml",
        "--command",
        sys.executable + " -m buddycloud",
        cwd=tmp_path,
    )
    assert printed.returncode == 0, printed.stderr
    assert "User=channels\nGroup=channels\n" in printed.stdout
    assert f"ExecStart={sys.executable} -m buddycloud serve --config /srv/bc/buddycloud.toml" in (
        printed.stdout
    )
    checked = verify(printed.stdout, tmp_path)
    assert (checked.returncode, checked.stderr) == (0, "")


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit naming a missing command does not verify."""
    printed = run_cli("systemd-unit", "--command", "/nowhere/buddycloud", cwd=tmp_path)
    assert printed.returncode == 0
    assert verify(printed.stdout, tmp_path).returncode != 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--config", "buddycloud.toml"), "must be an absolute path"),
        (("--command", "buddycloud"), "must be an absolute path"),
        (("--user", "bad user"), "not a user name"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    result = run_cli("systemd-unit", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr
