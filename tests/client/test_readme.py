"""The README's Python example runs as written against a real server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import serve

from buddycloud.client import Client

README = Path(__file__).parents[2] / "README.md"


async def open_websockets(url: str) -> float:
    async with httpx.AsyncClient(base_url=url) as http:
        metrics = (await http.get("/metrics")).text
    found = re.search(r"^buddycloud_websockets_open (\S+)$", metrics, re.MULTILINE)
    assert found is not None, "the server counts its websockets"
    return float(found.group(1))


def python_example() -> str:
    text = README.read_text()
    section = text[text.index("### Python") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "the README's SDK section has a Python example"
    return found.group(1)


async def test_the_readme_example_follows_posts_reads_and_hears_live_posts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = python_example()
    assert source.rstrip().endswith("asyncio.run(main())")
    async with serve(tmp_path, BUDDYCLOUD_SERVER_DOMAIN="localhost") as server:
        await server.add_user("juliet", "balcony-at-midnight")
        await server.add_user("romeo", "wherefore-art-thou")
        namespace: dict[str, Any] = {}
        exec(  # the example, with the test server's address and without asyncio.run
            source.replace("http://127.0.0.1:8080", server.url).replace("asyncio.run(main())", ""),
            namespace,
        )
        running = asyncio.create_task(namespace["main"]())
        async with Client(server.url, username="juliet", password="balcony-at-midnight") as juliet:
            # Romeo's post appears on the page he prints once he is listening.
            deadline = asyncio.get_running_loop().time() + 20
            while "Did my heart love till now?" not in capsys.readouterr().out:
                assert asyncio.get_running_loop().time() < deadline, "the example printed nothing"
                await asyncio.sleep(0.05)
            # Once its live connection is open (the server's /metrics counts it), a post
            # of Juliet's reaches the example's loop.
            while await open_websockets(server.url) < 1:
                assert not running.done(), running
                assert asyncio.get_running_loop().time() < deadline, "no live connection"
                await asyncio.sleep(0.05)
            await juliet.publish("juliet@localhost", "It is the east")
            live = ""
            while "It is the east" not in live:
                assert not running.done(), running
                assert asyncio.get_running_loop().time() < deadline, "no live post printed"
                await asyncio.sleep(0.05)
                live += capsys.readouterr().out
        running.cancel()
    assert "juliet@localhost It is the east" in live
