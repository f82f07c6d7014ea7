"""`buddycloud serve` as a user runs it: the embedded default, and `--with-prosody`."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from e2e.conftest import require_prosody
from e2e.harness import (
    NS_DISCO_INFO,
    REGISTER,
    SERVICE,
    Client,
    ServerProcess,
    entry,
    items_request,
    password_of,
    publish,
)
from e2e.test_http import api

from buddycloud.app import C2S_PORT_VARIABLE, private_prosody
from buddycloud.config import load_config
from buddycloud.prosody import PrivateProsody, ProsodyNotInstalled, ProsodySettings, free_port


async def test_the_embedded_default_creates_its_database_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """No config, no XMPP: SQLite under ./data, the HTTP API answering at once (on a free
    port here instead of 8080), up until a signal, then a clean exit."""
    port = free_port()
    server = ServerProcess(
        None, tmp_path, c2s_port=0, env={"BUDDYCLOUD_HTTP_LISTEN": f"127.0.0.1:{port}"}
    )
    server.spawn()
    try:
        output = await server.wait_for_log(f"HTTP API listening on http://127.0.0.1:{port}/api")
        assert (tmp_path / "data" / "buddycloud.db").is_file(), output
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            made = await http.post(
                "/api/account",
                json={"username": "juliet", "password": "balcony-at-midnight", "email": "j@e.org"},
            )
            assert made.status_code == 200, made.text
            signed_in = await http.get("/api", auth=("juliet", "balcony-at-midnight"))
            assert signed_in.status_code == 204
            posts = await http.get("/api/juliet@localhost/content/posts")
            assert posts.status_code == 200 and posts.json() == []
    finally:
        status = server.stop()
    assert status == 0, server.log_tail()


async def test_serve_with_prosody_is_a_complete_server(tmp_path: Path) -> None:
    """The printed instructions are enough to register a user and use channels."""
    require_prosody()
    c2s_port, component_port = free_port(), free_port()
    config = tmp_path / "buddycloud.toml"
    config.write_text(
        "[server]\n"
        'domain = "capulet.lit"\n'
        "[xmpp]\n"
        f'component_jid = "{SERVICE}"\n'
        'secret = "balcony"\n'
        f"port = {component_port}\n"
        "[http]\n"
        'listen = "127.0.0.1:0"\n'
    )
    server = ServerProcess(
        config,
        tmp_path,
        c2s_port,
        args=("--with-prosody",),
        env={C2S_PORT_VARIABLE: str(c2s_port)},
    )
    server.spawn()
    try:
        output = await server.wait_for_log("register <user>")
        assert f"127.0.0.1:{c2s_port}" in output
        command = re.search(r"^\s*(prosodyctl .*register <user> .*)$", output, re.MULTILINE)
        assert command is not None, output
        for user in ("juliet", "probe"):
            argv = shlex.split(
                command.group(1).replace("<user>", user).replace("<password>", f"{user}pass")
            )
            subprocess.run(argv, check=True, capture_output=True, timeout=30)

        assert "Guests: SASL ANONYMOUS on anon.capulet.lit" in output
        await server.wait_ready()
        juliet = Client("juliet", c2s_port)
        await juliet.connect()
        try:
            await juliet.ok("set", REGISTER)
            await juliet.ok(
                "get", f"<query xmlns='{NS_DISCO_INFO}' node='/user/juliet@capulet.lit/posts'/>"
            )
        finally:
            await juliet.disconnect()
        guest = Client(None, c2s_port)  # a web visitor: no account, read-only
        await guest.connect()
        try:
            await guest.ok("get", items_request("/user/juliet@capulet.lit/posts"))
            refused = await guest.iq("set", publish("/user/juliet@capulet.lit/posts", entry("x")))
            assert refused.condition == "forbidden", refused
        finally:
            await guest.disconnect()
        # An account made over REST is an XMPP account too: the same name and password.
        async with httpx.AsyncClient(base_url=await api(server), timeout=30) as http:
            made = await http.post(
                "/api/account",
                json={"username": "nurse", "password": password_of("nurse"), "email": "n@e.org"},
            )
        assert made.status_code == 200, made.text
        nurse = Client("nurse", c2s_port)
        await nurse.connect(presence=False)
        await nurse.disconnect()
        pid = int((tmp_path / "data" / "prosody" / "prosody.pid").read_text())
    finally:
        status = server.stop()
    assert status == 0, server.log_tail()
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), "Prosody outlived the server"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False


def test_with_prosody_generates_one_secret_and_keeps_it(tmp_path: Path) -> None:
    """Without [xmpp], the component secret is generated once, private, and reused."""
    config = load_config(
        None,
        {
            "BUDDYCLOUD_SERVER_DOMAIN": "capulet.lit",
            "BUDDYCLOUD_STORAGE_URL": f"sqlite:///{tmp_path}/db/buddycloud.db",
        },
    )
    wired, prosody = private_prosody(config)
    again, _ = private_prosody(config)
    assert wired.xmpp is not None and again.xmpp is not None
    assert str(wired.xmpp.component_jid) == "channels.capulet.lit"
    assert wired.xmpp.secret == again.xmpp.secret and len(wired.xmpp.secret) >= 24
    secret_file = tmp_path / "db" / "prosody" / "component.secret"
    assert secret_file.stat().st_mode & 0o077 == 0
    assert prosody.settings.base_dir == (tmp_path / "db" / "prosody").resolve()
    rendered = prosody.write_config().read_text()
    assert 'Component "channels.capulet.lit"' in rendered
    assert wired.xmpp.secret in rendered
    # The administrator of the XMPP twins: on a host of its own, its password kept too.
    assert str(wired.xmpp.admin_jid) == "buddycloud@admin.capulet.lit"
    assert wired.xmpp.admin_password == again.xmpp.admin_password
    assert wired.xmpp.admin_password is not None and len(wired.xmpp.admin_password) >= 24
    assert (tmp_path / "db" / "prosody" / "admin.secret").stat().st_mode & 0o077 == 0
    assert 'admins = { "buddycloud@admin.capulet.lit" }' in rendered
    assert 'VirtualHost "admin.capulet.lit"\n  allow_registration = false' in rendered


def test_a_missing_prosody_is_reported_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ProsodySettings(
        domain="capulet.lit",
        component_jid=SERVICE,
        component_secret="s",
        base_dir=tmp_path,
        c2s_port=free_port(),
        component_port=free_port(),
    )
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ProsodyNotInstalled, match="apt-get install -y prosody"):
        PrivateProsody(settings).start()


def test_serve_with_prosody_without_prosody_installed_fails_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "buddycloud", "serve", "--with-prosody"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "buddycloud: error: 'prosody' is not installed or not on PATH; "
        "install Prosody 0.12 (Debian: apt-get install -y prosody)"
    )
    assert "Traceback" not in result.stderr
