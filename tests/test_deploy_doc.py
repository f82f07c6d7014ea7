"""docs/deploy.md's blocks, checked as far as they can be here: each block is preceded by
a comment saying how (`run`, `nginx`, `caddy`, `lua`, `yaml`, `toml`, `dns`) or, starting
with `not here:`, why it cannot run on a test machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from buddycloud import doctor
from buddycloud.config import load_config

DOC = Path(__file__).parent.parent / "docs" / "deploy.md"
BLOCK = re.compile(r"<!-- (?P<how>[^>]*?) -->\n```(?P<lang>[a-z]*)\n(?P<body>.*?)\n```", re.S)
CHECKS = ("run", "nginx", "caddy", "lua", "yaml", "toml", "dns")
# What the environment file of step 3 holds.
ENVIRONMENT = {"BUDDYCLOUD_XMPP_SECRET": "s3cret", "BUDDYCLOUD_XMPP_ADMIN_PASSWORD": "adm1n"}


def blocks(how: str) -> list[str]:
    return [m["body"] for m in BLOCK.finditer(DOC.read_text()) if m["how"] == how]


def test_every_block_says_how_it_is_checked_or_why_not() -> None:
    text = DOC.read_text()
    fences = text.count("\n```") // 2
    found = list(BLOCK.finditer(text))
    assert len(found) == fences, "a block without its <!-- how --> comment"
    for match in found:
        how = match["how"]
        assert how in CHECKS or (how.startswith("not here: ") and len(how) > 20), how
    for how in CHECKS:
        assert blocks(how), f"no block checked by {how}"


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_runnable_blocks_run_in_a_scratch_directory(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    for body in blocks("run"):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (body, done.stderr)
    assert (tmp_path / "buddycloud.service").read_text().startswith("# Printed by")
    assert (tmp_path / "environment").read_text().startswith("BUDDYCLOUD_XMPP_SECRET=")


def test_the_configuration_loads_with_the_secret_from_the_environment(tmp_path: Path) -> None:
    (body,) = blocks("toml")
    path = tmp_path / "buddycloud.toml"
    path.write_text(body)
    config = load_config(path, ENVIRONMENT)
    assert config.xmpp is not None and str(config.xmpp.component_jid) == "channels.capulet.lit"
    assert config.storage.url.startswith("postgresql://buddycloud@/buddycloud")
    assert str(config.xmpp.admin_jid) == "buddycloud@capulet.lit"
    assert config.xmpp.admin_password == "adm1n"


def test_the_dns_records_are_what_the_doctor_prints(tmp_path: Path) -> None:
    (body,) = blocks("dns")
    path = tmp_path / "buddycloud.toml"
    path.write_text(blocks("toml")[0])
    config = load_config(path, ENVIRONMENT)
    expected = [r.zone_line() for r in doctor.records(config, doctor.default_api_url(config))]
    assert body.splitlines() == expected


def test_the_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    (body,) = blocks("nginx")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=buddycloud.capulet.lit", "-keyout", str(key), "-out", str(cert)],
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    site = body.replace(
        "/etc/letsencrypt/live/buddycloud.capulet.lit/fullchain.pem", str(cert)
    ).replace("/etc/letsencrypt/live/buddycloud.capulet.lit/privkey.pem", str(key))
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n{site}\n}}\n"
    )
    checked = run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


def test_the_caddyfile_passes_caddy_validate(tmp_path: Path) -> None:
    (body,) = blocks("caddy")
    path = tmp_path / "Caddyfile"
    path.write_text(body + "\n")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    checked = subprocess.run(
        ["caddy", "validate", "--config", str(path), "--adapter", "caddyfile"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    assert "Valid configuration" in checked.stdout + checked.stderr


def test_the_prosody_lines_are_valid_lua(tmp_path: Path) -> None:
    (body,) = blocks("lua")
    path = tmp_path / "prosody.cfg.lua"
    # Prosody's configuration functions, declared so that luac parses the calls.
    path.write_text(body + "\n")
    checked = run(["luac", "-p", str(path)], tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_the_ejabberd_lines_are_yaml_with_the_component_listener() -> None:
    (body,) = blocks("yaml")
    parsed = yaml.safe_load(body)
    service = [entry for entry in parsed["listen"] if entry["module"] == "ejabberd_service"]
    assert service[0]["port"] == 5347 and "channels.capulet.lit" in service[0]["hosts"]
    assert "mod_multicast" in parsed["modules"]
    assert {"mod_adhoc", "mod_configure"} <= set(parsed["modules"])
    assert parsed["access_rules"]["configure"] == {"allow": "admin"}
    assert parsed["acl"]["admin"]["user"] == ["buddycloud@capulet.lit"]


@pytest.mark.parametrize("page", ["running.md", "deploy.md", "clients.md"])
def test_the_readme_links_the_guides(page: str) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"(docs/{page})" in readme
