"""`buddycloud user add`, run beside a real server on the same database: the account
signs in over HTTP at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from http_support import DOMAIN, PASSWORD, Server


def user_command(*args: str, cwd: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "buddycloud", "user", *args],
        cwd=cwd,
        env={
            "PATH": "/usr/bin:/bin",
            "BUDDYCLOUD_SERVER_DOMAIN": DOMAIN,
            "BUDDYCLOUD_STORAGE_URL": f"sqlite:///{cwd}/buddycloud.db",
        },
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_an_account_added_by_the_command_signs_in_over_http(
    server: Server, tmp_path: Path
) -> None:
    async with server.client("juliet") as juliet:
        assert (await juliet.get("/api")).status_code == 401

    # The server shares the event loop with this test: the command runs beside it.
    added = await asyncio.to_thread(
        user_command,
        "add", "juliet", "--email", "juliet@example.org", "--password-stdin",
        cwd=tmp_path, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    async with server.client("juliet") as juliet:
        assert (await juliet.get("/api")).status_code == 204
        posts = await juliet.get("/api/juliet@capulet.lit/content/posts")
    assert posts.status_code == 200 and posts.json() == []
    async with server.client("juliet", "not-her-password") as impostor:
        assert (await impostor.get("/api")).status_code == 401
