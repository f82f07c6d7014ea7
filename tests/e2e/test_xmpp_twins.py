"""XMPP twins of the built-in accounts: an account made, given a new password or deleted over
REST or with `buddycloud user` is made, changed or deleted on the XMPP server too, through
XEP-0133 commands of `[xmpp] admin_jid` (docs/auth.md, "XMPP twins of the built-in
accounts"). Checked with real XMPP clients signing in to the private Prosody and ejabberd."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from e2e.conftest import XmppServer
from e2e.harness import DOMAIN, SERVICE, Client, ServerProcess, password_of
from e2e.test_http import api
from http_support import serve

from buddycloud.domain.jid import Jid
from buddycloud.xmpp.c2s import C2sPasswordCheck

NEW_PASSWORD = "a-rose-by-any-other-name"


async def signs_in(xmpp: XmppServer, user: str, password: str) -> bool:
    """Whether an XMPP client signs in to the XMPP server as `user` with `password`."""
    check = C2sPasswordCheck(xmpp.interface, xmpp.c2s_port, timeout=15)
    return await check(Jid.parse(f"{user}@{DOMAIN}"), password)


def _register(user: str) -> dict[str, str]:
    return {"username": user, "password": password_of(user), "email": f"{user}@example.org"}


async def test_an_account_made_over_rest_signs_in_with_an_xmpp_client(
    server: ServerProcess, xmpp_server: XmppServer, unique: str
) -> None:
    user = f"twin{unique}"
    async with httpx.AsyncClient(base_url=await api(server), timeout=30) as http:
        made = await http.post("/api/account", json=_register(user))
    assert made.status_code == 200, made.text

    client = Client(user, xmpp_server.c2s_port)  # signs in with password_of(user)
    await client.connect(presence=False)
    try:
        assert client.bare == f"{user}@{DOMAIN}"
    finally:
        await client.disconnect()


async def test_a_new_password_over_rest_is_the_new_xmpp_password(
    server: ServerProcess, xmpp_server: XmppServer, unique: str
) -> None:
    user = f"twin{unique}"
    async with httpx.AsyncClient(base_url=await api(server), timeout=30) as http:
        assert (await http.post("/api/account", json=_register(user))).status_code == 200
        token = await http.post(
            "/api/auth/token", json={"username": user, "password": password_of(user)}
        )
        bearer = {"Authorization": f"Bearer {token.json()['token']}"}
        changed = await http.post(
            "/api/account/pw/change", json={"password": NEW_PASSWORD}, headers=bearer
        )
    assert changed.status_code == 200, changed.text

    assert not await signs_in(xmpp_server, user, password_of(user))
    assert await signs_in(xmpp_server, user, NEW_PASSWORD)


async def test_a_deleted_account_no_longer_signs_in_with_an_xmpp_client(
    server: ServerProcess, xmpp_server: XmppServer, unique: str
) -> None:
    user = f"twin{unique}"
    async with httpx.AsyncClient(base_url=await api(server), timeout=30) as http:
        assert (await http.post("/api/account", json=_register(user))).status_code == 200
        assert await signs_in(xmpp_server, user, password_of(user))
        gone = await http.delete("/api/account", auth=(user, password_of(user)))
        assert gone.status_code == 200, gone.text
        # The name is free again, here and on the XMPP server.
        again = await http.post("/api/account", json=_register(user) | {"password": NEW_PASSWORD})
    assert again.status_code == 200, again.text
    assert not await signs_in(xmpp_server, user, password_of(user))
    assert await signs_in(xmpp_server, user, NEW_PASSWORD)


async def test_a_name_an_xmpp_user_has_cannot_be_registered_over_rest(
    server: ServerProcess, xmpp_server: XmppServer
) -> None:
    async with httpx.AsyncClient(base_url=await api(server), timeout=30) as http:
        taken = await http.post("/api/account", json=_register("tybalt") | {"password": "x" * 12})
    assert taken.status_code == 409 and taken.json()["error"] == "account-exists"
    assert await signs_in(xmpp_server, "tybalt", password_of("tybalt"))  # untouched


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_xmpp_server_refusing_the_administrator_is_503_and_no_account(
    xmpp_server: XmppServer, tmp_path: Path, unique: str
) -> None:
    user = f"twin{unique}"
    async with serve(
        tmp_path,
        BUDDYCLOUD_XMPP_COMPONENT_JID=SERVICE,
        BUDDYCLOUD_XMPP_SECRET="not-the-component-of-these-tests",
        BUDDYCLOUD_XMPP_PORT=str(_dead_port()),  # only the client port matters here
        BUDDYCLOUD_XMPP_C2S_HOST=xmpp_server.interface,
        BUDDYCLOUD_XMPP_C2S_PORT=str(xmpp_server.c2s_port),
        BUDDYCLOUD_XMPP_ADMIN_JID=xmpp_server.admin_jid,
        BUDDYCLOUD_XMPP_ADMIN_PASSWORD="not-the-admin-password",
        BUDDYCLOUD_AUTH_REMOTE_TIMEOUT="15",
    ) as local:
        async with local.client() as http:
            refused = await http.post("/api/account", json=_register(user))
            check = await http.get("/api", auth=(user, password_of(user)))
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"] == "xmpp-server-unavailable"
    assert "not-the-admin-password" not in refused.text
    assert check.status_code == 401  # no account here
    assert not await signs_in(xmpp_server, user, password_of(user))  # nor there


def _user_command(
    xmpp: XmppServer, workdir: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "buddycloud", "user", *args],
        cwd=workdir,
        env={
            "PATH": "/usr/bin:/bin",
            "BUDDYCLOUD_SERVER_DOMAIN": DOMAIN,
            "BUDDYCLOUD_STORAGE_URL": f"sqlite:///{workdir}/buddycloud.db",
            "BUDDYCLOUD_XMPP_COMPONENT_JID": SERVICE,
            "BUDDYCLOUD_XMPP_SECRET": "unused-by-the-user-command",
            "BUDDYCLOUD_XMPP_C2S_HOST": xmpp.interface,
            "BUDDYCLOUD_XMPP_C2S_PORT": str(xmpp.c2s_port),
            "BUDDYCLOUD_XMPP_ADMIN_JID": xmpp.admin_jid,
            "BUDDYCLOUD_XMPP_ADMIN_PASSWORD": xmpp.admin_password,
            "BUDDYCLOUD_AUTH_REMOTE_TIMEOUT": "15",
        },
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


async def test_the_user_command_keeps_the_xmpp_account_in_step(
    xmpp_server: XmppServer, tmp_path: Path, unique: str
) -> None:
    user = f"cli{unique}"

    def run(*args: str, stdin: str = "") -> None:
        done = _user_command(xmpp_server, tmp_path, *args, stdin=stdin)
        assert done.returncode == 0, done.stderr

    await asyncio.to_thread(
        run, "add", user, "--email", f"{user}@example.org", "--password-stdin",
        stdin=password_of(user) + "\n",
    )  # fmt: skip
    assert await signs_in(xmpp_server, user, password_of(user))

    await asyncio.to_thread(run, "passwd", user, "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert not await signs_in(xmpp_server, user, password_of(user))
    assert await signs_in(xmpp_server, user, NEW_PASSWORD)

    await asyncio.to_thread(run, "delete", user)
    assert not await signs_in(xmpp_server, user, NEW_PASSWORD)
